"""The emulated SPA phone: challenge, verify, fetch, show; replays; UPDATE."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from phonecast.ciscoxml import Text, to_xml
from phonecast.content import ContentServer
from phonecast.credentials import Secret
from phonecast.net.endpoint import SipEndpoint
from phonecast.phone.config import LineConfig, PhoneConfig
from phonecast.phone.emulator import PhoneHost
from phonecast.phone.events import EventLog
from phonecast.push.payload import execute_payload, url_payload
from phonecast.push.pusher import Destination, Pusher
from phonecast.sip import Request, Response, SipUri, parse_message
from phonecast.sip.digest import authorize
from tests.ports import free_ports


@dataclass
class Rig:
    host: PhoneHost
    events: list[dict[str, Any]]
    content: ContentServer
    pusher: Pusher
    ports: tuple[int, int]

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind]


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
    outcome = await rig.pusher.push(
        SipUri("127.0.0.1", "1001", port=rig.ports[0]),
        Secret("secret"),
        url_payload(url),
        destinations=_dest(rig.ports[0]),
    )
    assert outcome.delivered and outcome.challenged and outcome.requests == 2
    await _settle()
    assert [e["reason"] for e in rig.kinds("auth")] == ["no-credentials", "ok"]
    assert len(rig.kinds("fetch_finished")) == 1 and rig.content.fetches == 1
    assert rig.kinds("screen"), rig.events
    screen = rig.kinds("screen")[0]
    assert screen["title"] == "Facilities" and screen["text"] == "Fire drill"
    assert rig.host.phones["desk"].screen.render().count("Fire drill") == 1


async def test_wrong_password_and_other_line(rig: Rig) -> None:
    bad = await rig.pusher.push(
        SipUri("127.0.0.1", "1001", port=rig.ports[0]),
        Secret("nope"),
        url_payload("http://127.0.0.1:9/x"),
        destinations=_dest(rig.ports[0]),
    )
    assert bad.status == "auth_rejected" and bad.code == 401
    other = await rig.pusher.push(
        SipUri("127.0.0.1", "1002", port=rig.ports[1]),
        Secret("secret"),
        url_payload("http://127.0.0.1:9/x"),
        destinations=_dest(rig.ports[1]),
    )
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
    from phonecast.push.payload import Payload

    outcome = await rig.pusher.push(
        SipUri("127.0.0.1", "1001", port=rig.ports[0]),
        Secret("secret"),
        Payload("XML-Service", body, "text/xml", "execute"),
        destinations=_dest(rig.ports[0]),
    )
    assert outcome.delivered  # the phone says 200, then reports CiscoIPPhoneError 1
    await _settle()
    assert rig.kinds("xml_error") and rig.kinds("xml_error")[0]["number"] == 1
    assert rig.kinds("fetch_started") == []
    again = await rig.pusher.push(
        SipUri("127.0.0.1", "1001", port=rig.ports[0]),
        Secret("secret"),
        execute_payload(["Key:Services"]),
        destinations=_dest(rig.ports[0]),
    )
    assert again.delivered


async def test_big_body_refused_and_unknown_event(rig: Rig) -> None:
    from phonecast.push.payload import Payload

    big = await rig.pusher.push(
        SipUri("127.0.0.1", "1001", port=rig.ports[0]),
        Secret("secret"),
        Payload("XML-Service", b"x" * 20_000, "text/plain"),
        destinations=[Destination("tcp", "127.0.0.1", rig.ports[0])],
    )
    assert big.status in ("rejected", "unreachable", "timeout")
    odd = await rig.pusher.push(
        SipUri("127.0.0.1", "1001", port=rig.ports[0]),
        Secret("secret"),
        Payload("presence"),
        destinations=_dest(rig.ports[0]),
    )
    assert odd.status == "rejected" and odd.code == 489


async def test_execute_priorities_and_dial_makes_busy(rig: Rig) -> None:
    url = rig.content.publish("desk", to_xml(Text("Later", None, (), "deferred")))
    phone = rig.host.phones["desk"]
    outcome = await rig.pusher.push(
        SipUri("127.0.0.1", "1001", port=rig.ports[0]),
        Secret("secret"),
        execute_payload(["Dial:1234"]),
        destinations=_dest(rig.ports[0]),
    )
    assert outcome.delivered
    await _settle()
    assert phone.calls.busy and "Dial:1234" in phone.actions
    for priority, expected in ((2, "dropped"), (1, "deferred")):
        await rig.pusher.push(
            SipUri("127.0.0.1", "1001", port=rig.ports[0]),
            Secret("secret"),
            execute_payload([url], priority=priority),
            destinations=_dest(rig.ports[0]),
        )
        await _settle()
        assert rig.kinds(expected), expected
    assert rig.kinds("fetch_started") == []
    phone.calls.busy_reasons.clear()
    await rig.host._run_deferred(phone)  # what hang-up does
    assert len(rig.kinds("fetch_finished")) == 1 and phone.screen.title == "Later"


async def test_pushes_run_on_a_bounded_worker_pool_that_survives_a_fault(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Accepted pushes are run by a pool of workers (no task per push); a
    fault in one becomes an ``internal_error`` event and the pool goes on."""
    rig.host.max_workers = 2
    real = rig.host._xml_service
    calls = 0

    async def flaky(phone: Any, body: bytes) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        await real(phone, body)

    monkeypatch.setattr(rig.host, "_xml_service", flaky)
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
    await _settle()
    assert calls == 6
    assert len(rig.host._tasks) <= 2
    assert [e["error"] for e in rig.kinds("internal_error")] == ["RuntimeError: boom"]
    assert len(rig.kinds("fetch_finished")) == 5


async def test_pending_pushes_are_bounded(rig: Rig) -> None:
    """Accepted pushes waiting for a worker are bounded; the excess is
    dropped with an event, never queued without limit."""
    rig.host.max_workers = 1
    rig.host.max_pending = 2
    gate = asyncio.Event()
    real = rig.host._xml_service

    async def slow(phone: Any, body: bytes) -> None:
        await gate.wait()
        await real(phone, body)

    rig.host._xml_service = slow  # type: ignore[method-assign]
    target = SipUri("127.0.0.1", "1001", port=rig.ports[0])
    for _ in range(5):
        out = await rig.pusher.push(
            target, Secret("secret"), url_payload("http://127.0.0.1:9/x"),
            destinations=_dest(rig.ports[0]),
        )  # fmt: skip
        assert out.delivered  # answered 200 either way, as the phone would
    dropped = [e for e in rig.kinds("dropped") if e["reason"] == "too many pending pushes"]
    assert len(dropped) == 2  # one running, two waiting, two dropped
    gate.set()
    await _settle()
    assert len(rig.kinds("fetch_finished")) == 3
