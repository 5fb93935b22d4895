"""The pusher: transports, DNS failover, challenge handling, payloads."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from phonecast.credentials import Secret
from phonecast.net.endpoint import ServerHandle, SipEndpoint
from phonecast.net.limits import StreamLimits
from phonecast.net.locate import make_resolver
from phonecast.net.transport import Flow
from phonecast.phone.config import LineConfig, PhoneConfig, PhoneSettings
from phonecast.phone.emulator import PhoneHost
from phonecast.push.payload import (
    PayloadError,
    action_payload,
    execute_payload,
    url_payload,
)
from phonecast.push.profiles import UnsupportedAction, get_profile
from phonecast.push.pusher import Destination, Outcome, Pusher, PushOptions
from phonecast.sip import Request, SipUri, make_response
from tests.dnsmasq import dnsmasq, free_udp_port
from tests.ports import free_ports
from tests.tls import LoopbackPki
from tests.waiting import until

#: Transports are where asyncio's loop and uvloop differ: run on both.
pytestmark = pytest.mark.both_loops


@pytest.fixture
async def phone() -> AsyncIterator[int]:
    host = PhoneHost()
    await host.start()
    port = free_udp_port()
    await host.add_phone(
        PhoneConfig(
            "p", "127.0.0.1", (LineConfig("1001", Secret("pw"), port),), PhoneSettings(tcp=True)
        )
    )
    yield port
    await host.close()


async def _pusher(**kw: object) -> Pusher:
    ep = SipEndpoint(**kw)  # type: ignore[arg-type]
    await ep.listen_udp("127.0.0.1", 0)
    return Pusher(ep)


@contextlib.asynccontextmanager
async def _pusher_and_peer(
    handler: Callable[[Request, ServerHandle | None, Flow], None],
) -> AsyncIterator[tuple[Pusher, int]]:
    """A pusher, and a peer answering with ``handler`` on a UDP port of
    127.0.0.1 (a phone or a proxy); both closed after the block."""
    peer = SipEndpoint(handler=handler)
    _, port = await peer.listen_udp("127.0.0.1", 0)
    pusher = await _pusher()
    try:
        yield pusher, port
    finally:
        await pusher.endpoint.close()
        await peer.close()


async def test_tcp_push_with_challenge(phone: int) -> None:
    pusher = await _pusher()
    try:
        out = await pusher.push(
            SipUri("127.0.0.1", "1001", port=phone),
            Secret("pw"),
            url_payload("http://127.0.0.1:9/a.xml"),
            options=PushOptions(transport="tcp"),
        )
        assert out.delivered and out.challenged and out.target == f"tcp:127.0.0.1:{phone}"
    finally:
        await pusher.endpoint.close()


async def test_tcp_pushes_to_more_phones_than_the_connection_cap() -> None:
    """A campaign over TCP reaches more phones than it may hold connections
    to: a connection whose push is over makes room for the next phone's (a
    campaign to 3,000 TCP phones once ran out of files at 1,024).  A push
    past the cap while every connection is in use waits for a place: it is
    delivered once a connection comes free, and fails naming the limit if
    none does within its timeout."""
    host = PhoneHost()
    await host.start()
    ports = free_ports(13)  # distinct: thirteen single picks may repeat one
    for n, port in enumerate(ports):
        line = LineConfig(str(1001 + n), Secret(f"pw{n}"), port)
        await host.add_phone(PhoneConfig(f"p{n}", "127.0.0.1", (line,), PhoneSettings(tcp=True)))
    pusher = await _pusher(stream_limits=StreamLimits(max_connections=4))
    tcp = PushOptions(transport="tcp")

    async def push(n: int, options: PushOptions = tcp) -> Outcome:
        target = SipUri("127.0.0.1", str(1001 + n), port=ports[n])
        return await pusher.push(
            target, Secret(f"pw{n}"), url_payload("http://127.0.0.1:9/a.xml"), options=options
        )

    try:
        for batch in range(3):
            outcomes = await asyncio.gather(*(push(4 * batch + i) for i in range(4)))
            assert all(out.delivered and out.challenged for out in outcomes), outcomes
        streams = pusher.endpoint._streams["tcp"]
        assert len(streams._recent) == 4 and streams.counters.evicted == 8

        # Four pushes to phones that never answer hold all four
        # connections while they wait; a fifth push waits for room.
        async def never_answer(reader: asyncio.StreamReader, _w: asyncio.StreamWriter) -> None:
            await reader.read()

        silent = [await asyncio.start_server(never_answer, "127.0.0.1", 0) for _ in range(4)]
        waiting = PushOptions(transport="tcp", timeout=30)
        held = [
            asyncio.ensure_future(
                pusher.push(
                    SipUri("127.0.0.1", "900", port=server.sockets[0].getsockname()[1]),
                    Secret("pw"),
                    url_payload("http://127.0.0.1:9/a.xml"),
                    options=waiting,
                )
            )
            for server in silent
        ]
        try:
            await until(lambda: len(pusher.endpoint._on_stream) == 4)
            refused = await push(12, PushOptions(transport="tcp", timeout=0.3))
            assert not refused.delivered
            assert "no room for another tcp connection" in refused.detail, refused
            assert streams.counters.refused == 1
            waiting_push = asyncio.ensure_future(push(12))
            await asyncio.sleep(0.3)
            assert not waiting_push.done()  # waiting for a place, not failed
            # One silent phone's connection drops: its push ends, and the
            # waiting one takes the place.
            gone = silent[0].sockets[0].getsockname()[1]
            (lost,) = [c for c in streams._recent if c.flow and c.flow.remote[1] == gone]
            lost.abort()
            delivered = await asyncio.wait_for(waiting_push, 5)
            assert delivered.delivered, delivered
        finally:
            for task in held:
                task.cancel()
            await asyncio.gather(*held, return_exceptions=True)
            for server in silent:
                server.close()
    finally:
        await pusher.endpoint.close()
        await host.close()


async def test_tls_push_verifies_the_server(pki: LoopbackPki) -> None:
    def answer(request: Request, handle: ServerHandle | None, flow: Flow) -> None:
        assert handle is not None and flow.transport == "tls"
        handle.respond(make_response(request, 200, to_tag="tls"))

    server = SipEndpoint(handler=answer, server_ssl=pki.server_context())
    _, port = await server.listen_stream("tls", "127.0.0.1", 0)
    good = await _pusher(client_ssl=pki.client_context())
    untrusted = await _pusher()
    target = SipUri("127.0.0.1", "1001", port=port, scheme="sips")
    try:
        ok = await good.push(target, Secret("pw"), url_payload("http://127.0.0.1/a.xml"))
        assert ok.delivered and ok.target == f"tls:127.0.0.1:{port}"
        refused = await untrusted.push(target, Secret("pw"), url_payload("http://x/a.xml"))
        assert refused.status == "unreachable"
        assert "CERTIFICATE_VERIFY_FAILED" in refused.tried[0].result or refused.detail
    finally:
        for ep in (good.endpoint, untrusted.endpoint, server):
            await ep.close()


async def test_dns_failover_to_the_second_srv_target(phone: int, tmp_path: Path) -> None:
    dead = free_udp_port()
    records = [
        "--host-record=dead.fail.test,127.0.0.1",
        "--host-record=live.fail.test,127.0.0.1",
        f"--srv-host=_sip._udp.fail.test,dead.fail.test,{dead},0,1",
        f"--srv-host=_sip._udp.fail.test,live.fail.test,{phone},1,1",
    ]
    with dnsmasq(tmp_path, records) as server:
        pusher = Pusher((await _pusher()).endpoint, resolver=make_resolver(server))
        try:
            out = await pusher.push(
                parse_target("sip:1001@fail.test"),
                Secret("pw"),
                url_payload("http://127.0.0.1:9/a.xml"),
                options=PushOptions(timeout=1.0),
            )
        finally:
            await pusher.endpoint.close()
    assert out.delivered
    assert [a.target for a in out.tried] == [f"udp:127.0.0.1:{dead}", f"udp:127.0.0.1:{phone}"]
    # The dead target's ICMP port unreachable is its transport error (RFC
    # 3261 18.4), so the failover comes at once, not after the timeout.
    assert out.tried[0].result == "transport" and out.tried[0].elapsed_ms < 500


async def test_a_closed_port_fails_at_once_by_its_icmp_unreachable() -> None:
    """No failover here: the push is unreachable in milliseconds, not after
    its 10 s timeout (or Timer F's 32 s), and the endpoint counts it."""
    pusher = await _pusher()
    dead = free_udp_port()
    try:
        out = await asyncio.wait_for(
            pusher.push(
                SipUri("127.0.0.1", "1001", port=dead),
                Secret("pw"),
                url_payload("http://127.0.0.1:9/a"),
                options=PushOptions(timeout=10.0),
            ),
            5,
        )
        assert out.status == "unreachable" and [a.result for a in out.tried] == ["transport"]
        assert out.elapsed_ms < 1000
        stats = pusher.endpoint.stats
        assert stats.unreachable >= 1 and stats.unreachable_ended == 1
        assert stats.transactions == 0
    finally:
        await pusher.endpoint.close()


def parse_target(text: str) -> SipUri:
    from phonecast.sip import parse_uri

    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    return uri


async def test_503_moves_on_other_codes_stop(phone: int) -> None:
    def unavailable(request: Request, handle: ServerHandle | None, flow: Flow) -> None:
        assert handle is not None
        handle.respond(make_response(request, 503, to_tag="x"))

    async with _pusher_and_peer(unavailable) as (pusher, busy_port):
        dests = [Destination("udp", "127.0.0.1", busy_port), Destination("udp", "127.0.0.1", phone)]
        out = await pusher.push(
            SipUri("127.0.0.1", "1001", port=phone),
            Secret("pw"),
            url_payload("http://127.0.0.1:9/a"),
            destinations=dests,
        )
        assert out.delivered and [a.code for a in out.tried] == [503, 200]


async def test_proxy_route_header(phone: int) -> None:
    seen: list[Request] = []

    def proxy(request: Request, handle: ServerHandle | None, flow: Flow) -> None:
        seen.append(request)
        assert handle is not None
        handle.respond(make_response(request, 200, to_tag="p"))

    async with _pusher_and_peer(proxy) as (pusher, pport):
        out = await pusher.push(
            parse_target("sip:1001@pbx.example.com"),
            Secret("pw"),
            url_payload("http://x/a"),
            options=PushOptions(proxy=f"127.0.0.1:{pport}"),
        )
        assert out.delivered
        request = seen[0]
        assert str(request.uri) == "sip:1001@pbx.example.com"
        assert str(request.route[0].uri) == f"sip:127.0.0.1:{pport};lr"


async def test_a_password_in_the_target_is_never_sent() -> None:
    """RFC 3261 19.1.1: ``sip:1001:pw@host`` names the line 1001; the password
    would travel in clear in the Request-URI and the To.  The pusher sends
    the URI without it."""
    seen: list[bytes] = []

    def phone(request: Request, handle: ServerHandle | None, flow: Flow) -> None:
        seen.append(bytes(request))
        assert handle is not None
        handle.respond(make_response(request, 200, to_tag="p"))

    async with _pusher_and_peer(phone) as (pusher, port):
        out = await pusher.push(
            parse_target(f"sip:1001:Hunter2secret@127.0.0.1:{port}"),
            Secret("pw"),
            url_payload("http://x/a"),
        )
        assert out.delivered, out
        assert len(seen) == 1
        assert b"Hunter2secret" not in seen[0]
        assert seen[0].startswith(f"NOTIFY sip:1001@127.0.0.1:{port} SIP/2.0".encode())
        assert "Hunter2secret" not in repr(out.as_dict())


def test_payloads_and_profiles() -> None:
    url = url_payload("http://10.0.0.2/alert.xml")
    assert url.body == b"http://10.0.0.2/alert.xml" and url.content_type == "text/html"
    assert not url.body.endswith(b"\r\n")
    exe = execute_payload(["http://10.0.0.2/a.xml", "Key:Services"], priority=1)
    assert exe.content_type == "text/xml" and b'Priority="1"' in exe.body
    with pytest.raises(PayloadError, match=r"4 ExecuteItem"):
        execute_payload(["Key:A", "Key:B", "Key:C", "Key:D"])
    with pytest.raises(PayloadError):
        url_payload("ftp://x/y")
    assert action_payload("reboot").event == "reboot_now"
    assert action_payload("reboot", "yealink").event == "check-sync;reboot=true"
    with pytest.raises(UnsupportedAction, match="report"):
        action_payload("report", "polycom")
    with pytest.raises(UnsupportedAction, match="known"):
        get_profile("nokia")


async def test_stale_challenge_is_retried_once_and_never_loops() -> None:
    from phonecast.sip.digest import DigestServer

    digest = DigestServer("phone")
    stale_answers = {"left": 1}

    def phone(request: Request, handle: ServerHandle | None, flow: Flow) -> None:
        assert handle is not None
        creds = request.authorization
        now = asyncio.get_running_loop().time()  # the endpoint's clock
        if creds is not None and digest.verify(creds, method="NOTIFY", now=now, password="pw").ok:
            if stale_answers["left"] == 0:
                handle.respond(make_response(request, 200, to_tag="s"))
                return
            stale_answers["left"] -= 1
        challenge = digest.challenge(now, stale=creds is not None)
        handle.respond(
            make_response(request, 401, to_tag="s", headers=[("WWW-Authenticate", str(challenge))])
        )

    async with _pusher_and_peer(phone) as (pusher, port):
        target = SipUri("127.0.0.1", "1001", port=port)
        once = await pusher.push(target, Secret("pw"), url_payload("http://x/a"))
        assert once.delivered and once.requests == 3  # plain, stale, fresh
        stale_answers["left"] = 5  # stale forever: one retry, then give up
        looping = await pusher.push(target, Secret("pw"), url_payload("http://x/a"))
        assert looping.status == "auth_rejected" and looping.requests == 3


async def test_push_over_ipv6_loopback() -> None:
    host = PhoneHost()
    await host.start()
    port = free_udp_port()
    try:
        await host.add_phone(
            PhoneConfig(
                "v6", "::1", (LineConfig("1001", Secret("pw"), port),), PhoneSettings(tcp=False)
            )
        )
    except OSError:
        await host.close()
        pytest.skip("no IPv6 loopback on this machine")
    ep = SipEndpoint()
    await ep.listen_udp("::1", 0)
    try:
        out = await Pusher(ep).push(
            parse_target(f"sip:1001@[::1]:{port}"),
            Secret("pw"),
            url_payload("http://[::1]:9/a.xml"),
        )
        assert out.delivered and out.challenged and out.target == f"udp:[::1]:{port}"
    finally:
        await ep.close()
        await host.close()


async def test_a_sips_push_goes_to_its_proxy_over_tls() -> None:
    """RFC 3261 26.2.2: TLS on every hop.  The host list's default, UDP,
    sent a sips: push in clear to the outbound proxy."""
    pusher = Pusher(SipEndpoint())
    target = SipUri("phone.invalid", "1001", scheme="sips")
    found = await pusher.locate(target, PushOptions(proxy="127.0.0.9"))
    assert found == [Destination("tls", "127.0.0.9", 5061, "127.0.0.9")]
    found = await pusher.locate(target, PushOptions(proxy="127.0.0.9", transport="tcp"))
    assert [d.transport for d in found] == ["tls"]
    outcome = await pusher.push(
        target, Secret("x"), url_payload("http://127.0.0.1:9/x"),
        options=PushOptions(proxy="127.0.0.9", transport="udp"),
    )  # fmt: skip
    assert outcome.status == "unreachable"
    assert "a sips: URI needs TLS, which udp cannot carry" in (outcome.detail or "")


async def test_a_proxys_407_then_the_phones_401_are_both_answered() -> None:
    """RFC 3261 22.3: challenged by an outbound proxy (407) and then by the
    phone (401), a UAC sends both credentials.  The 401 after a 407 was
    reported as the phone refusing the credentials, and the retry would
    have dropped the Proxy-Authorization.  One endpoint plays both."""
    from phonecast.sip.digest import DigestServer, parse_credentials

    proxy_auth = DigestServer("proxy.example", secret=b"p" * 32)
    phone_auth = DigestServer("phone", secret=b"f" * 32)
    seen: list[tuple[int, int]] = []

    def handler(request: Request, handle: ServerHandle, flow: Flow) -> None:
        now = asyncio.get_running_loop().time()  # the endpoint's clock
        proxy = request.get_all("Proxy-Authorization")
        phone = request.get_all("Authorization")
        seen.append((len(proxy), len(phone)))
        if not proxy or not proxy_auth.verify(
            parse_credentials(proxy[0], "Proxy-Authorization"),
            method="NOTIFY", now=now, password="pw",
        ).ok:  # fmt: skip
            challenge = ("Proxy-Authenticate", str(proxy_auth.challenge(now)))
            handle.respond(make_response(request, 407, to_tag="x", headers=[challenge]))
        elif (
            not phone
            or not phone_auth.verify(
                parse_credentials(phone[0]), method="NOTIFY", now=now, password="pw"
            ).ok
        ):
            challenge = ("WWW-Authenticate", str(phone_auth.challenge(now)))
            handle.respond(make_response(request, 401, to_tag="x", headers=[challenge]))
        else:
            handle.respond(make_response(request, 200, to_tag="x"))

    async with _pusher_and_peer(handler) as (pusher, port):
        out = await pusher.push(
            SipUri("phone.invalid", "1001"), Secret("pw"), url_payload("http://127.0.0.1:9/a"),
            options=PushOptions(proxy=f"127.0.0.1:{port}", timeout=2),
        )  # fmt: skip
        assert out.delivered and out.requests == 3, out
        assert seen == [(0, 0), (1, 0), (1, 1)]
        seen.clear()
        # A proxy refusing its credentials says so, not "the phone".
        out = await pusher.push(
            SipUri("phone.invalid", "1001"), Secret("wrong"), url_payload("http://127.0.0.1:9/a"),
            options=PushOptions(proxy=f"127.0.0.1:{port}", timeout=2),
        )  # fmt: skip
        assert (out.status, out.code, out.detail) == (
            "auth_rejected",
            407,
            "the proxy refused the credentials",
        ), out
        assert seen == [(0, 0), (1, 0)]
