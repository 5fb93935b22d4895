"""A call over TCP whose caller closed its connection while the phone rang:
the 200 reaches the caller over a new connection (RFC 3261 18.2.2)."""

from __future__ import annotations

import asyncio
from typing import Any

from phonecast.credentials import Secret
from phonecast.phone.config import LineConfig, PhoneConfig, PhoneSettings
from phonecast.phone.emulator import PhoneHost
from phonecast.sip import Response, Timers, parse_message
from tests.phone.test_update_network import OFFER
from tests.ports import free_ports
from tests.waiting import until

CALL_ID = "tcp-hangup@127.0.0.1"


async def _read_message(reader: asyncio.StreamReader) -> Response:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"content-length", b"l"):
            length = int(value)
    message = parse_message(head + await reader.readexactly(length))
    assert isinstance(message, Response)
    return message


def _invite(port: int, listener_port: int) -> bytes:
    head = (
        f"INVITE sip:1001@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP 127.0.0.1:{listener_port};branch=z9hG4bKtcphangup\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:caller@127.0.0.1>;tag=caller\r\n"
        f"To: <sip:1001@127.0.0.1:{port}>\r\n"
        f"Call-ID: {CALL_ID}\r\n"
        "CSeq: 1 INVITE\r\n"
        f"Contact: <sip:caller@127.0.0.1:{listener_port};transport=tcp>\r\n"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(OFFER)}\r\n\r\n"
    )
    return head.encode() + OFFER


def _ack(port: int, listener_port: int, to_tag: str) -> bytes:
    return (
        f"ACK sip:1001@127.0.0.1:{port};transport=tcp SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP 127.0.0.1:{listener_port};branch=z9hG4bKtcphangupack\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:caller@127.0.0.1>;tag=caller\r\n"
        f"To: <sip:1001@127.0.0.1:{port}>;tag={to_tag}\r\n"
        f"Call-ID: {CALL_ID}\r\n"
        "CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    ).encode()


async def test_a_ringing_phone_answers_a_caller_that_closed_its_connection() -> None:
    """The caller gets its 180 on its own connection and closes it; when the
    phone answers, the 200 arrives over a connection the phone opens to the
    caller's Via port, and the ACK sent back on it confirms the call (no
    resends run out, no BYE for a missing ACK)."""
    events: list[dict[str, Any]] = []
    host = PhoneHost(call_timers=Timers(t1=0.05))
    await host.start()
    host.events.subscribe(events.append)
    (port,) = free_ports(1)
    line = LineConfig("1001", Secret("pw"), port)
    settings = PhoneSettings(tcp=True, ring_seconds=0.3)
    await host.add_phone(PhoneConfig("p", "127.0.0.1", (line,), settings))
    answers: asyncio.Queue[tuple[Response, asyncio.StreamWriter]] = asyncio.Queue()

    async def caller_listens(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                answers.put_nowait((await _read_message(reader), writer))
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    listener = await asyncio.start_server(caller_listens, "127.0.0.1", 0)
    lport = listener.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_invite(port, lport))
        ringing = await asyncio.wait_for(_read_message(reader), 5)
        while ringing.status_code == 100:
            ringing = await asyncio.wait_for(_read_message(reader), 5)
        assert ringing.status_code == 180
        writer.close()  # the caller hangs up its connection, not the call
        ok, back = await asyncio.wait_for(answers.get(), 5)
        assert ok.status_code == 200 and ok.call_id == CALL_ID
        assert ok.to.tag is not None and ok.body.startswith(b"v=0")
        back.write(_ack(port, lport, ok.to.tag))
        await until(lambda: any(e.get("state") == "answered" for e in events))
        await asyncio.sleep(64 * 0.05 + 0.3)  # past the 2xx's give-up time
        states = [e.get("state") for e in events if e["event"] == "call"]
        assert states == ["ringing", "answered"]  # not "ended" for want of an ACK
        assert host.endpoint is not None and host.endpoint.stats.redialled == 1
    finally:
        await host.close()
        listener.close()
        await listener.wait_closed()


def _options(port: int, n: int) -> bytes:
    return (
        f"OPTIONS sip:1001@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKpinned{n}\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=probe\r\n"
        f"To: <sip:1001@127.0.0.1:{port}>\r\nCall-ID: probe{n}@127.0.0.1\r\n"
        "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


async def test_connections_pinned_by_unanswered_invites_do_not_shut_a_new_peer_out() -> None:
    """A peer filling the connection cap with INVITEs that ring for ever
    (each connection then carries a transaction) made every new TCP peer
    refused; the new one now displaces the least recently active, and its
    OPTIONS is answered."""
    from phonecast.net.limits import StreamLimits

    host = PhoneHost(stream_limits=StreamLimits(max_connections=3))
    await host.start()
    (port,) = free_ports(1)
    line = LineConfig("1001", Secret("pw"), port)
    settings = PhoneSettings(tcp=True, ring_seconds=600)
    await host.add_phone(PhoneConfig("p", "127.0.0.1", (line,), settings))
    pinned: list[asyncio.StreamWriter] = []
    try:
        for n in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            invite = _invite(port, 9).replace(b"tcphangup", f"pin{n}".encode())
            writer.write(invite.replace(b"tcp-hangup", f"pinned{n}".encode()))
            ringing = await asyncio.wait_for(_read_message(reader), 5)
            assert ringing.status_code in (100, 180, 486)  # 486: never ACKed, live as long
            pinned.append(writer)
        for n in range(3):  # as often as the cap: each displaces a pinned one
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_options(port, n))
            answer = await asyncio.wait_for(_read_message(reader), 5)
            # What an INVITE would get now (RFC 3261 11.2): the phone rings.
            assert (answer.call_id, answer.status_code) == (f"probe{n}@127.0.0.1", 486)
            writer.close()
    finally:
        for writer in pinned:
            writer.close()
        await host.close()
