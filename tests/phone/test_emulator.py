"""The emulated SPA phone: challenge, verify, fetch, show; replays; UPDATE."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from phonecast.ciscoxml import Text, to_xml
from phonecast.content import ContentServer
from phonecast.credentials import Secret
from phonecast.net.endpoint import SipEndpoint
from phonecast.net.transport import Flow
from phonecast.phone.config import LineConfig, PhoneConfig
from phonecast.phone.emulator import PhoneHost
from phonecast.phone.events import EventLog
from phonecast.phone.fetcher import Fetcher
from phonecast.push.payload import Payload, execute_payload, url_payload
from phonecast.push.pusher import Destination, Outcome, Pusher
from phonecast.sip import Request, Response, SipUri, parse_message
from phonecast.sip.digest import DigestClient, authorize
from tests.phone.test_update_network import _request
from tests.ports import free_ports
from tests.waiting import until


@dataclass
class Rig:
    host: PhoneHost
    events: list[dict[str, Any]]
    content: ContentServer
    pusher: Pusher
    ports: tuple[int, int]

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind]

    async def push(self, line: int, password: str, payload: Payload) -> Outcome:
        """Push ``payload`` over UDP to line ``line`` (0: 1001, 1: 1002)."""
        port = self.ports[line]
        return await self.pusher.push(
            SipUri("127.0.0.1", f"100{line + 1}", port=port),
            Secret(password),
            payload,
            destinations=_dest(port),
        )


def _free_ports(n: int) -> list[int]:
    return free_ports(n)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    events: list[dict[str, Any]] = []
    log = EventLog()
    log.subscribe(events.append)
    host = PhoneHost(events=log)
    await host.start()
    p1, p2 = _free_ports(2)
    await host.add_phone(
        PhoneConfig(
            "desk",
            "127.0.0.1",
            (LineConfig("1001", Secret("secret"), p1), LineConfig("1002", Secret("other"), p2)),
        )
    )
    content = ContentServer()
    await content.start()
    ep = SipEndpoint()
    await ep.listen_udp("127.0.0.1", 0)
    yield Rig(host, events, content, Pusher(ep), (p1, p2))
    await ep.close()
    await content.stop()
    await host.close()


def _dest(port: int) -> list[Destination]:
    return [Destination("udp", "127.0.0.1", port)]


async def _settle() -> None:
    await asyncio.sleep(0.3)


async def test_push_is_challenged_verified_fetched_and_shown(rig: Rig) -> None:
    url = rig.content.publish("desk", to_xml(Text("Facilities", None, (), "Fire drill")))
    outcome = await rig.push(0, "secret", url_payload(url))
    assert outcome.delivered and outcome.challenged and outcome.requests == 2
    await _settle()
    assert [e["reason"] for e in rig.kinds("auth")] == ["no-credentials", "ok"]
    assert len(rig.kinds("fetch_finished")) == 1 and rig.content.fetches == 1
    assert rig.kinds("screen"), rig.events
    screen = rig.kinds("screen")[0]
    assert screen["title"] == "Facilities" and screen["text"] == "Fire drill"
    assert rig.host.phones["desk"].screen.render().count("Fire drill") == 1


async def test_a_page_not_served_as_text_xml_is_fetched_but_not_shown(rig: Rig) -> None:
    """The phone shows pages served as text/xml (the media type compared
    without regard to case or parameters); the fetch_finished event says
    what type came, and why a page was not shown."""
    page = to_xml(Text("Facilities", None, (), "Fire drill"))
    plain = rig.content.publish("desk", page, "text/plain; charset=utf-8")
    xml = rig.content.publish("desk", page, "Text/XML; Charset=UTF-8")
    assert (await rig.push(0, "secret", url_payload(plain))).delivered
    await until(lambda: rig.kinds("fetch_finished"), what="the text/plain page's fetch_finished")
    (refused,) = rig.kinds("fetch_finished")
    assert refused["status"] == 200 and not refused["ok"]
    assert refused["content_type"] == "text/plain; charset=utf-8"
    assert "'text/plain' is not text/xml" in refused["error"]
    assert rig.kinds("screen") == [] and rig.host.phones["desk"].screen.kind == "idle"
    assert (await rig.push(0, "secret", url_payload(xml))).delivered
    await until(lambda: rig.kinds("screen"), what="the text/xml page shown")
    shown = rig.kinds("fetch_finished")[1]
    assert shown["ok"] and shown["error"] is None
    assert shown["content_type"] == "Text/XML; Charset=UTF-8"
    assert [e["title"] for e in rig.kinds("screen")] == ["Facilities"]


async def test_wrong_password_and_other_line(rig: Rig) -> None:
    bad = await rig.push(0, "nope", url_payload("http://127.0.0.1:9/x"))
    assert bad.status == "auth_rejected" and bad.code == 401
    other = await rig.push(1, "secret", url_payload("http://127.0.0.1:9/x"))
    assert other.status == "auth_rejected"
    assert {e["reason"] for e in rig.kinds("auth") if not e["ok"]} >= {"bad-response"}


def _notify(port: int, user: str, branch: str, local_port: int, cseq: int = 1) -> Request:
    req = Request(
        "NOTIFY",
        SipUri("127.0.0.1", user, port=port),
        [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:{local_port};branch={branch}"),
            ("From", "<sip:tester@127.0.0.1>;tag=t1"),
            ("To", f"<sip:{user}@127.0.0.1:{port}>"),
            ("Call-ID", "replay-test@127.0.0.1"),
            ("CSeq", f"{cseq} NOTIFY"),
            ("Max-Forwards", "70"),
            ("Event", "XML-Service"),
        ],
    )
    return req.with_body(b"http://127.0.0.1:9/never", "text/html")


async def _exchange(sock: socket.socket, data: bytes, port: int) -> Response:
    loop = asyncio.get_running_loop()
    sock.sendto(data, ("127.0.0.1", port))
    reply = parse_message(await asyncio.wait_for(loop.sock_recv(sock, 65535), 2))
    assert isinstance(reply, Response)
    return reply


async def test_replay_retransmission_and_cross_line(rig: Rig) -> None:
    p1, p2 = rig.ports
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    me = sock.getsockname()[1]
    try:
        first = _notify(p1, "1001", "z9hG4bKa1", me)
        challenge = await _exchange(sock, bytes(first), p1)
        assert challenge.status_code == 401
        signed = _notify(p1, "1001", "z9hG4bKa2", me, 2)
        signed = signed.with_header(*authorize(challenge, signed, "1001", "secret"))
        wire = bytes(signed)
        assert (await _exchange(sock, wire, p1)).status_code == 200
        # Same datagram again: a retransmission, answered from the transaction.
        assert (await _exchange(sock, wire, p1)).status_code == 200
        # Same credentials, new transaction (new branch): a replay, refused.
        replay = bytes(
            signed.with_first_header_replaced("Via", f"SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKa3")
        )
        assert (await _exchange(sock, replay, p1)).status_code == 401
        # Credentials computed for line 1001 do not open line 1002.
        cross = signed.with_uri(SipUri("127.0.0.1", "1002", port=p2)).with_first_header_replaced(
            "Via", f"SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKa4"
        )
        assert (await _exchange(sock, bytes(cross), p2)).status_code == 401
        await _settle()
        accepted = [e for e in rig.kinds("auth") if e["ok"]]
        assert len(accepted) == 1  # only one NOTIFY was ever acted on
        assert len(rig.kinds("fetch_started")) == 1
        assert "replay" in {e["reason"] for e in rig.kinds("auth")}
    finally:
        sock.close()


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<CiscoIPPhoneExecute><ExecuteItem URL='&e;'/></CiscoIPPhoneExecute>",
        b'<!DOCTYPE l [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;">]><CiscoIPPhoneExecute>'
        b"<ExecuteItem URL='&b;'/></CiscoIPPhoneExecute>",
        b"<CiscoIPPhoneExecute>" + b"<x>" * 1000 + b"</x>" * 1000 + b"</CiscoIPPhoneExecute>",
        b"<CiscoIPPhoneExecute>" + b"<ExecuteItem URL='Key:A'/>" * 4 + b"</CiscoIPPhoneExecute>",
    ],
)
async def test_hostile_execute_bodies_are_answered_then_reported(rig: Rig, body: bytes) -> None:
    outcome = await rig.push(0, "secret", Payload("XML-Service", body, "text/xml", "execute"))
    assert outcome.delivered  # the phone says 200, then reports CiscoIPPhoneError 1
    await _settle()
    assert rig.kinds("xml_error") and rig.kinds("xml_error")[0]["number"] == 1
    assert rig.kinds("fetch_started") == []
    again = await rig.push(0, "secret", execute_payload(["Key:Services"]))
    assert again.delivered


@pytest.mark.parametrize(
    "body", [b"hello world", b"", b"ftp://x", b"Key:Services", b"http://", b"http://h/a b"]
)
async def test_a_body_neither_url_nor_xml_is_answered_then_reported_never_fetched(
    rig: Rig, body: bytes
) -> None:
    outcome = await rig.push(0, "secret", Payload("XML-Service", body, "text/plain"))
    assert outcome.delivered and outcome.code == 200
    await _settle()
    errors = rig.kinds("xml_error")
    assert [e["number"] for e in errors] == [1]
    assert "neither an http(s) URL nor a CiscoIPPhoneExecute" in errors[0]["detail"]
    assert rig.kinds("fetch_started") == [] and rig.kinds("action") == []


@pytest.mark.parametrize("uri", ["RTPRx:127.0.0.1:20480", "Display:On:10", "SendDigits:1234"])
async def test_an_execute_with_a_uri_the_spa_does_not_run_is_reported_never_fetched(
    rig: Rig, uri: str
) -> None:
    """Before, such an item passed the parser and was then fetched as if it
    were a URL; the phone cannot run it, and reports the object as
    CiscoIPPhoneError 1 (its other items are not run either)."""
    body = (
        f'<CiscoIPPhoneExecute><ExecuteItem URL="Key:Services"/><ExecuteItem URL="{uri}"/>'
        "</CiscoIPPhoneExecute>"
    ).encode()
    outcome = await rig.push(0, "secret", Payload("XML-Service", body, "text/xml", "execute"))
    assert outcome.delivered and outcome.code == 200
    await _settle()
    errors = rig.kinds("xml_error")
    assert [e["number"] for e in errors] == [1] and uri in errors[0]["detail"]
    assert rig.kinds("fetch_started") == [] and rig.kinds("action") == []


async def test_big_body_refused_and_unknown_event(rig: Rig) -> None:
    from phonecast.push.payload import Payload

    big = await rig.pusher.push(
        SipUri("127.0.0.1", "1001", port=rig.ports[0]),
        Secret("secret"),
        Payload("XML-Service", b"x" * 20_000, "text/plain"),
        destinations=[Destination("tcp", "127.0.0.1", rig.ports[0])],
    )
    # Over TCP (a UDP datagram that size would not be sent): the size bound,
    # 413, not a transport failure.
    assert big.status == "rejected" and big.code == 413, big
    odd = await rig.push(0, "secret", Payload("presence"))
    assert odd.status == "rejected" and odd.code == 489


async def test_execute_priorities_and_dial_makes_busy(rig: Rig) -> None:
    url = rig.content.publish("desk", to_xml(Text("Later", None, (), "deferred")))
    phone = rig.host.phones["desk"]
    settings = dataclasses.replace(phone.config.settings, dial_seconds=2.0)
    phone.config = dataclasses.replace(phone.config, settings=settings)
    loop = asyncio.get_running_loop()
    dialled = loop.time()
    outcome = await rig.push(0, "secret", execute_payload(["Dial:1234"]))
    assert outcome.delivered
    await _settle()
    assert phone.calls.busy and "Dial:1234" in phone.actions
    for priority, expected in ((2, "dropped"), (1, "deferred")):
        await rig.push(0, "secret", execute_payload([url], priority=priority))
        await _settle()
        assert rig.kinds(expected), expected
    assert rig.kinds("fetch_started") == []
    # Dial's timer hangs up (not before its 2 s), and the deferred push runs.
    await until(lambda: not phone.calls.busy, timeout=2.0 + 5.0, what="Dial's hang-up")
    assert loop.time() - dialled >= 2.0 - 0.01
    await until(lambda: phone.screen.title == "Later", what="the deferred page shown")
    assert len(rig.kinds("fetch_finished")) == 1


async def test_deferred_pushes_run_one_at_a_time_when_a_call_ends_by_bye(rig: Rig) -> None:
    """A priority-1 push to a phone in a call waits; the BYE that ends the
    call makes the phone idle, and the deferred pages are then fetched one
    after the other (a fault showing the first does not hold up the second)."""
    first = rig.content.publish("desk", to_xml(Text("First", None, (), "after the call")))
    second = rig.content.publish("desk", to_xml(Text("Second", None, (), "after the call")))
    phone = rig.host.phones["desk"]
    port = rig.ports[0]
    dest = ("127.0.0.1", port)
    call_id = f"deferred-{port}@127.0.0.1"
    ep = SipEndpoint()
    await ep.listen_udp("127.0.0.1", 0)
    assert ep.udp is not None

    def fail_first_screen(event: dict[str, Any]) -> None:
        if event["event"] == "screen" and event["title"] == "First":
            raise RuntimeError("screen listener")

    rig.host.events.subscribe(fail_first_screen)
    try:
        ok, _ = await ep.request(_request(ep, "INVITE", port, 1, call_id=call_id), "udp", dest)
        assert ok is not None and ok.status_code == 200 and phone.calls.busy
        tag = ok.to.tag or ""
        ep.udp.sendto(bytes(_request(ep, "ACK", port, 1, tag, call_id=call_id)), dest)
        for url in (first, second):
            assert (await rig.push(0, "secret", execute_payload([url], priority=1))).delivered
        await _settle()
        assert [e["url"] for e in rig.kinds("deferred")] == [first, second]
        assert rig.kinds("fetch_started") == []
        bye, _ = await ep.request(_request(ep, "BYE", port, 2, tag, call_id=call_id), "udp", dest)
        assert bye is not None and bye.status_code == 200 and not phone.calls.busy
        await until(
            lambda: len(rig.kinds("fetch_finished")) == 2, what="both deferred pages fetched"
        )
    finally:
        await ep.close()
    fetches = [(e["event"], e["url"]) for e in rig.events if e["event"].startswith("fetch_")]
    assert fetches == [
        ("fetch_started", first),
        ("fetch_finished", first),
        ("fetch_started", second),
        ("fetch_finished", second),
    ]
    assert [e["error"] for e in rig.kinds("internal_error")] == ["RuntimeError: screen listener"]
    assert phone.screen.title == "Second" and not phone.deferred


async def test_pushes_are_acted_on_without_a_task_and_a_fault_does_not_stop_the_phone(
    rig: Rig,
) -> None:
    """An accepted push starts its fetch from the SIP handler itself (no
    task or queue per push); a fault while acting on one (here an event
    listener that fails once) becomes an ``internal_error`` event and the
    phone goes on with the rest."""
    failed = False

    def fail_once(event: dict[str, Any]) -> None:
        nonlocal failed
        if event["event"] == "fetch_started" and not failed:
            failed = True
            raise RuntimeError("boom")

    rig.host.events.subscribe(fail_once)
    target = SipUri("127.0.0.1", "1001", port=rig.ports[0])
    outcomes = await asyncio.gather(
        *(
            rig.pusher.push(
                target, Secret("secret"), url_payload("http://127.0.0.1:9/x"),
                destinations=_dest(rig.ports[0]),
            )
            for _ in range(6)
        )
    )  # fmt: skip
    assert all(o.delivered for o in outcomes)
    assert not rig.host._tasks and not rig.host.pushes.fetcher._tasks  # type: ignore[attr-defined]
    await _settle()
    assert [e["error"] for e in rig.kinds("internal_error")] == ["RuntimeError: boom"]
    assert len(rig.kinds("fetch_finished")) == 5


async def test_fetches_waiting_for_a_turn_are_bounded(rig: Rig) -> None:
    """The fetcher runs a bounded number of fetches at once; the pushes
    waiting for a turn are bounded too, and the excess is dropped with an
    event (answered 200 all the same, as the phone would), never queued
    without limit."""
    gate = asyncio.Event()

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await gate.wait()
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(stall, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/x"
    await rig.host.pushes.fetcher.close()
    rig.host.pushes.fetcher = Fetcher(limit=1, timeout=5)
    rig.host.pushes.max_pending = 2
    target = SipUri("127.0.0.1", "1001", port=rig.ports[0])
    try:
        for _ in range(5):
            out = await rig.pusher.push(
                target, Secret("secret"), url_payload(url), destinations=_dest(rig.ports[0])
            )
            assert out.delivered
        dropped = [e for e in rig.kinds("dropped") if e["reason"] == "too many pending fetches"]
        assert len(dropped) == 2  # one running, two waiting, two dropped
        gate.set()
        await _settle()
        assert [e["status"] for e in rig.kinds("fetch_finished")] == [404, 404, 404]
    finally:
        server.close()
        await server.wait_closed()


async def test_what_a_phone_keeps_of_its_pushes_is_bounded(rig: Rig) -> None:
    """A phone pushed to for days keeps its latest actions only, and a busy
    phone defers a bounded number of priority-1 pushes (the rest dropped,
    with an event)."""
    from phonecast.phone.state import ACTIONS_KEPT, MAX_DEFERRED

    phone = rig.host.phones["desk"]
    for n in range(ACTIONS_KEPT + 10):
        rig.host.pushes.execute_item(phone, "1001", f"Key:Line{n}", 0)
    assert len(phone.actions) == ACTIONS_KEPT and phone.actions[-1] == f"Key:Line{ACTIONS_KEPT + 9}"
    phone.calls.busy_reasons.add("dial")
    for n in range(MAX_DEFERRED + 3):
        rig.host.pushes.execute_item(phone, "1001", f"http://127.0.0.1:9/{n}.xml", 1)
    assert len(phone.deferred) == MAX_DEFERRED
    too_many = [e for e in rig.kinds("dropped") if e["reason"] == "too many deferred pushes"]
    assert len(too_many) == 3


async def test_fetches_start_together_once_the_burst_of_pushes_is_answered(rig: Rig) -> None:
    """A TCP connect between two SIP messages costs more than the same
    connects in a row: the fetches that a burst of datagrams accepts start
    after the burst is answered, all together."""
    ep = rig.host.endpoint
    assert ep is not None
    port = rig.ports[0]
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # where the answers go
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(2)
    peer_port = peer.getsockname()[1]
    flow = Flow("udp", ("127.0.0.1", peer_port), ("127.0.0.1", port))
    client = DigestClient("1001", "secret")

    def notify(n: int, cseq: int, authorization: str = "") -> bytes:
        auth = f"Authorization: {authorization}\r\n" if authorization else ""
        body = b"http://127.0.0.1:9/x.xml"
        return (
            f"NOTIFY sip:1001@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{peer_port};branch=z9hG4bKburst{n}-{cseq}\r\n"
            f"From: <sip:pc@127.0.0.1>;tag=b{n}\r\nTo: <sip:1001@127.0.0.1:{port}>\r\n"
            f"Call-ID: burst-{n}\r\nCSeq: {cseq} NOTIFY\r\nEvent: XML-Service\r\n{auth}"
            f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    retries = []
    try:
        for n in range(3):
            ep._on_data(notify(n, 1), flow)
            ep.flush()  # fed by hand: no loop turn ends to send the answer
            challenge = parse_message(peer.recv(65535)).www_authenticate
            creds = client.respond(challenge, method="NOTIFY", uri=f"sip:1001@127.0.0.1:{port}")
            retries.append(notify(n, 2, str(creds)))
        for retry in retries:  # one burst: no loop turn in between
            ep._on_data(retry, flow)
        ep.flush()
        codes = [parse_message(peer.recv(65535)).status_code for _ in retries]  # type: ignore[union-attr]
    finally:
        peer.close()
    assert codes == [200, 200, 200]
    assert rig.kinds("fetch_started") and not rig.kinds("fetch_finished")
    assert len(rig.host.pushes._to_fetch) == 3 and rig.host.pushes.fetcher._active == 0
    await asyncio.sleep(0)  # the burst is over
    assert rig.host.pushes._to_fetch == []
    await _settle()
    assert len(rig.kinds("fetch_finished")) == 3


@pytest.mark.parametrize("listening", [True, False])
async def test_events_are_counted_whether_or_not_anyone_listens(listening: bool) -> None:
    """With no file and no listener the hot path only counts events (their
    fields are never made), and the counts are the same as when every field
    goes to a listener: the fleet's live summary reads them."""
    seen: list[dict[str, Any]] = []
    log = EventLog()
    if listening:
        log.subscribe(seen.append)
    assert log.detailed is listening
    host = PhoneHost(events=log)
    await host.start()
    (port,) = _free_ports(1)
    await host.add_phone(PhoneConfig("desk", "127.0.0.1", (LineConfig("1001", Secret("s"), port),)))
    ep = SipEndpoint()
    await ep.listen_udp("127.0.0.1", 0)
    try:
        outcome = await Pusher(ep).push(
            SipUri("127.0.0.1", "1001", port=port),
            Secret("s"),
            url_payload("http://127.0.0.1:9/x"),  # refused: fetched, not shown
            destinations=_dest(port),
        )
        assert outcome.delivered
        await _settle()
    finally:
        await ep.close()
        await host.close()
    expected = {"request": 2, "auth": 2, "response": 2, "fetch_started": 1, "fetch_finished": 1}
    assert {k: log.counts[k] for k in expected} == expected
    if listening:
        assert sorted(e["event"] for e in seen) == sorted(
            k for k, n in expected.items() for _ in range(n)
        )


async def test_challenges_cost_the_phone_no_transaction(rig: Rig) -> None:
    """RFC 3261 8.2.7 / 26.1.5: every 401 is sent without a server
    transaction, so pushes without valid credentials leave the phone holding
    nothing; only the accepted NOTIFY has one (its copies must not fetch twice)."""
    endpoint = rig.host.endpoint
    assert endpoint is not None
    for _ in range(5):
        bad = await rig.push(0, "wrong", url_payload("http://127.0.0.1:9/x"))
        assert bad.status == "auth_rejected" and bad.requests == 2
    assert endpoint.stats.transactions == 0
    good = await rig.push(0, "secret", url_payload("http://127.0.0.1:9/x"))
    assert good.delivered and endpoint.stats.transactions == 1
    assert len(rig.kinds("auth")) == 12  # every request was still checked and logged


async def test_a_fetched_url_s_password_is_not_in_the_events(rig: Rig) -> None:
    """A pushed URL may carry ``user:password@``: the phone fetches it as
    given, but its events (and the screen) show the password as ``***``."""
    url = rig.content.publish("desk", to_xml(Text("Facilities", None, (), "Fire drill")))
    secret_url = url.replace("http://", "http://u:URLSECRET@", 1)
    assert (await rig.push(0, "secret", url_payload(secret_url))).delivered
    await until(lambda: rig.kinds("screen"), what="the page shown")
    assert "URLSECRET" not in repr(rig.events)
    (started,) = rig.kinds("fetch_started")
    assert started["url"] == url.replace("http://", "http://u:***@", 1)
    assert rig.kinds("fetch_finished")[0]["url"] == started["url"]


def _with_header(request: Request, *headers: tuple[str, str]) -> bytes:
    """``request``'s bytes with ``headers`` added before the body."""
    head, _, body = bytes(request).partition(b"\r\n\r\n")
    extra = "".join(f"\r\n{name}: {value}" for name, value in headers).encode()
    return head + extra + b"\r\n\r\n" + body


async def test_each_phone_challenges_with_its_own_realm_and_algorithm() -> None:
    """One digest authority per host took the first phone's settings: a
    phone set to realm "b-realm" and SHA-256 challenged as "phonecast" with
    MD5, and its own credentials could never have passed."""
    from phonecast.phone.config import PhoneSettings
    from phonecast.sip.digest import parse_challenges

    host = PhoneHost()
    await host.start()
    pa, pb = _free_ports(2)
    await host.add_phone(
        PhoneConfig("a", "127.0.0.1", (LineConfig("1001", Secret("pw"), pa),), PhoneSettings())
    )
    b_settings = PhoneSettings(realm="b-realm", algorithm="SHA-256")
    await host.add_phone(
        PhoneConfig("b", "127.0.0.1", (LineConfig("2001", Secret("pw"), pb),), b_settings)
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    me = sock.getsockname()[1]
    try:
        for port, user, realm, algorithm in ((pa, "1001", "phonecast", "MD5"),
                                             (pb, "2001", "b-realm", "SHA-256")):  # fmt: skip
            request = _notify(port, user, f"z9hG4bKrealm{user}", me)
            challenge = await _exchange(sock, bytes(request), port)
            assert challenge.status_code == 401
            (offered,) = parse_challenges(challenge.get_all("WWW-Authenticate")[0])
            assert (offered.realm, offered.algorithm) == (realm, algorithm)
            retry = _notify(port, user, f"z9hG4bKrealm{user}b", me, cseq=2)
            header = authorize(challenge, retry, user, "pw")
            assert (await _exchange(sock, _with_header(retry, header), port)).status_code == 200
    finally:
        sock.close()
        await host.close()


async def test_the_authorization_for_the_phones_realm_is_used_among_several(rig: Rig) -> None:
    """RFC 3261 22.3: one Authorization per realm.  Only the first was read:
    credentials for another realm (or a header that does not parse) before
    the phone's own got a 401."""
    port = rig.ports[0]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    me = sock.getsockname()[1]
    other = (
        "Authorization",
        'Digest username="1001", realm="other-uas", nonce="xyz", uri="sip:1001@127.0.0.1",'
        ' response="00000000000000000000000000000000"',
    )
    broken = ("Authorization", 'Digest username="1001", realm=')
    try:
        for n, first in enumerate((other, broken)):
            request = _notify(port, "1001", f"z9hG4bKmulti{n}", me, cseq=10 * n + 1)
            challenge = await _exchange(sock, bytes(request), port)
            retry = _notify(port, "1001", f"z9hG4bKmulti{n}b", me, cseq=10 * n + 2)
            header = authorize(challenge, retry, "1001", "secret")
            answer = await _exchange(sock, _with_header(retry, first, header), port)
            assert answer.status_code == 200, answer
    finally:
        sock.close()
