"""What the phone refuses before acting: Restrict_Source_IP, malformed and
unsupported requests, and the events that make each visible."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import pytest

from phonecast.credentials import Secret
from phonecast.phone.config import LineConfig, PhoneConfig, PhoneSettings
from phonecast.phone.emulator import PhoneHost
from phonecast.phone.events import EventLog
from tests.ports import free_ports
from tests.waiting import until

#: The proxy the restricted phone accepts, and a stranger on the same machine
#: (all of 127.0.0.0/8 is on loopback).
PROXY = "127.0.0.1"
STRANGER = "127.0.0.2"


@dataclass
class Phone:
    host: PhoneHost
    events: list[dict[str, Any]]
    port: int

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind]


async def _phone(settings: PhoneSettings) -> Phone:
    events: list[dict[str, Any]] = []
    log = EventLog()
    log.subscribe(events.append)
    host = PhoneHost(events=log)
    await host.start()
    (port,) = free_ports(1)
    line = LineConfig("1001", Secret("secret"), port)
    await host.add_phone(PhoneConfig("desk", "127.0.0.1", (line,), settings))
    return Phone(host, events, port)


@pytest.fixture
async def restricted() -> AsyncIterator[Phone]:
    phone = await _phone(replace(PhoneSettings(), restrict_source_ip=PROXY))
    yield phone
    await phone.host.close()


@pytest.fixture
async def open_phone() -> AsyncIterator[Phone]:
    phone = await _phone(PhoneSettings())
    yield phone
    await phone.host.close()


@contextmanager
def _socket(source: str) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source, 0))
    sock.setblocking(False)
    try:
        yield sock
    finally:
        sock.close()


def _request(sock: socket.socket, port: int, *, method: str = "NOTIFY", extra: str = "") -> bytes:
    host, local = sock.getsockname()
    event = "Event: XML-Service\r\n" if method == "NOTIFY" else ""
    return (
        f"{method} sip:1001@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{local};branch=z9hG4bK-{method}-{local}\r\n"
        f"From: <sip:pc@{host}>;tag=f{local}\r\nTo: <sip:1001@127.0.0.1:{port}>\r\n"
        f"Call-ID: refusal-{local}@{host}\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n"
        f"{event}{extra}Content-Length: 0\r\n\r\n"
    ).encode()


async def _answer(sock: socket.socket, data: bytes, port: int, wait: float = 1.0) -> bytes | None:
    """Send ``data`` to the phone; its answer, or None if none came in ``wait`` s."""
    loop = asyncio.get_running_loop()
    arrived: asyncio.Future[None] = loop.create_future()
    sock.sendto(data, ("127.0.0.1", port))
    loop.add_reader(sock.fileno(), lambda: arrived.done() or arrived.set_result(None))
    try:
        await asyncio.wait_for(arrived, wait)
    except TimeoutError:
        return None
    finally:
        loop.remove_reader(sock.fileno())
    return sock.recv(65535)


async def test_a_restricted_line_answers_only_its_proxy(restricted: Phone) -> None:
    """Restrict_Source_IP: from the proxy a NOTIFY is challenged; from any
    other address nothing is answered at all, not a 401, and not the 400 a
    malformed request would otherwise get (a scan learns nothing)."""
    port = restricted.port
    with _socket(PROXY) as proxy, _socket(STRANGER) as stranger:
        challenged = await _answer(proxy, _request(proxy, port), port)
        assert challenged is not None and challenged.startswith(b"SIP/2.0 401")
        assert await _answer(stranger, _request(stranger, port), port, wait=0.5) is None
        malformed = _request(stranger, port).replace(b"CSeq: 1 NOTIFY", b"CSeq: one NOTIFY")
        assert await _answer(stranger, malformed, port, wait=0.5) is None
    dropped = restricted.kinds("dropped")
    assert [e["reason"] for e in dropped] == ["restrict-source-ip"] * 2
    assert all(e["source"].startswith(f"{STRANGER}:") for e in dropped)
    assert [e["source"].split(":")[0] for e in restricted.kinds("request")] == [PROXY]
    assert restricted.host.endpoint is not None
    assert restricted.host.endpoint.stats.restricted == 2


async def test_a_restricted_line_takes_its_proxy_over_tcp_only(restricted: Phone) -> None:
    """The restriction holds for a connection too: the stranger's request
    over TCP is dropped (the drop is an event and counted) and never
    answered, the proxy's is answered."""
    port = restricted.port
    assert restricted.host.endpoint is not None
    for source, answered in ((STRANGER, False), (PROXY, True)):
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        host, local = writer.get_extra_info("sockname")
        request = (
            f"OPTIONS sip:1001@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/TCP {host}:{local};branch=z9hG4bK-tcp-{local}\r\n"
            f"From: <sip:pc@{host}>;tag=t{local}\r\nTo: <sip:1001@127.0.0.1:{port}>\r\n"
            f"Call-ID: tcp-{local}@{host}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        writer.write(request.encode())
        if answered:
            # Generous: a right answer comes at once, only a wrong one waits it out.
            reply = await asyncio.wait_for(reader.read(65535), 5.0)
        else:
            await until(lambda: restricted.kinds("dropped"), what="the stranger's drop")
            # Dropped already: an answer, had one been sent, would be here by now.
            try:
                reply = await asyncio.wait_for(reader.read(65535), 0.3)
            except TimeoutError:
                reply = b""
        writer.close()
        assert reply.startswith(b"SIP/2.0 200") == answered, (source, reply)
    dropped = restricted.kinds("dropped")
    assert [e["reason"] for e in dropped] == ["restrict-source-ip"]
    assert dropped[0]["source"].startswith(f"{STRANGER}:")
    assert restricted.host.endpoint.stats.restricted == 1
    assert [e["source"].split(":")[0] for e in restricted.kinds("request")] == [PROXY]


@pytest.mark.parametrize(
    ("method", "extra", "code"),
    [
        ("NOTIFY", "Require: 100rel-but-not-really\r\n", 420),
        ("OPTIONS", "Expires: soon\r\n", 400),
    ],
)
async def test_refusals_by_the_endpoint_are_events(
    open_phone: Phone, method: str, extra: str, code: int
) -> None:
    """A request the endpoint answers itself (420 for an unknown Require, 400
    for a malformed Expires) never reaches the phone's handler, yet
    is an event naming the code, the reason and the source."""
    port = open_phone.port
    with _socket(PROXY) as sock:
        answer = await _answer(sock, _request(sock, port, method=method, extra=extra), port)
        assert answer is not None and answer.startswith(f"SIP/2.0 {code}".encode())
        refused = open_phone.kinds("refused")
        assert len(refused) == 1, open_phone.events
        assert refused[0]["code"] == code and refused[0]["phone"] == "desk"
        assert refused[0]["source"] == f"{PROXY}:{sock.getsockname()[1]}"
        assert refused[0]["reason"]
    assert open_phone.kinds("request") == []


async def test_unparseable_datagrams_are_dropped_as_events(open_phone: Phone) -> None:
    """Bytes that are not SIP and cannot be answered are dropped, and the
    drop says why; a malformed request whose echo fields are readable gets
    the salvaged 400, reported as refused."""
    port = open_phone.port
    with _socket(PROXY) as sock:
        assert await _answer(sock, b"\x00\x01 not sip at all\r\n\r\n", port, wait=0.5) is None
        broken = _request(sock, port).replace(b" SIP/2.0\r\n", b" SIP/2.0 extra\r\n", 1)
        salvaged = await _answer(sock, broken, port)
        assert salvaged is not None and salvaged.startswith(b"SIP/2.0 400")
    assert [e["reason"] != "" for e in open_phone.kinds("dropped")] == [True]
    assert [e["code"] for e in open_phone.kinds("refused")] == [400]


async def _tcp_options(port: int, source: str, wait: float = 3.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    host, local = writer.get_extra_info("sockname")
    writer.write(
        (
            f"OPTIONS sip:1001@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/TCP {host}:{local};branch=z9hG4bK-wild-{local}\r\n"
            f"From: <sip:pc@{host}>;tag=w{local}\r\nTo: <sip:1001@127.0.0.1:{port}>\r\n"
            f"Call-ID: wild-{local}@{host}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
    )
    try:
        return await asyncio.wait_for(reader.read(65535), wait)
    except TimeoutError:
        return b""
    finally:
        writer.close()


async def test_a_phone_on_the_wildcard_address_answers_over_tcp_and_keeps_its_restriction() -> None:
    """Bound to 0.0.0.0, a connection names the address it was made to, not
    the one bound: the phone still finds its line (it answered nothing over
    TCP before), and Restrict_Source_IP still holds for connections."""
    events: list[dict[str, Any]] = []
    log = EventLog()
    log.subscribe(events.append)
    host = PhoneHost(events=log)
    await host.start()
    try:
        (port,) = free_ports(1)
        settings = replace(PhoneSettings(), restrict_source_ip=PROXY)
        line = LineConfig("1001", Secret("secret"), port)
        await host.add_phone(PhoneConfig("wild", "0.0.0.0", (line,), settings))
        assert (await _tcp_options(port, PROXY)).startswith(b"SIP/2.0 200")
        assert await _tcp_options(port, STRANGER, wait=0.5) == b""
        assert [e["reason"] for e in events if e["event"] == "dropped"] == ["restrict-source-ip"]
    finally:
        await host.close()


async def test_refusals_are_counted_by_kind_when_nobody_reads_events() -> None:
    """A fleet run --quiet (no file, no listener) still counts what it
    dropped and refused, by kind (and builds no event for them)."""
    log = EventLog()
    host = PhoneHost(events=log)
    await host.start()
    try:
        (port,) = free_ports(1)
        line = LineConfig("1001", Secret("secret"), port)
        await host.add_phone(PhoneConfig("desk", "127.0.0.1", (line,), PhoneSettings()))
        assert not log.detailed
        with _socket(PROXY) as sock:
            for _ in range(3):
                sock.sendto(b"\x00 not sip\r\n\r\n", ("127.0.0.1", port))
            bad = _request(sock, port, extra="Require: nothing-known\r\n")
            assert (await _answer(sock, bad, port) or b"").startswith(b"SIP/2.0 420")
        await until(lambda: log.counts.get("dropped", 0) == 3)
        assert log.counts["refused"] == 1
    finally:
        await host.close()


async def test_a_dual_stack_line_takes_its_ipv4_proxy() -> None:
    """Bound to ``::``, a line also takes IPv4, whose sources the kernel
    reports as ``::ffff:127.0.0.1``: the proxy 127.0.0.1 still gets in."""
    host = PhoneHost()
    await host.start()
    try:
        (port,) = free_ports(1)
        settings = replace(PhoneSettings(), restrict_source_ip=PROXY, tcp=False)
        line = LineConfig("1001", Secret("secret"), port)
        await host.add_phone(PhoneConfig("dual", "::", (line,), settings))
        with _socket(PROXY) as sock:
            answer = await _answer(sock, _request(sock, port, method="OPTIONS"), port, wait=5)
        assert answer is not None and answer.startswith(b"SIP/2.0 200")
    finally:
        await host.close()


@pytest.mark.parametrize(
    ("sent", "named"),
    [
        (b"OPTIONS sip:1001@127.0.0.1 SIP/2.0\r\nContent-Length: nope\r\n\r\n", "Content-Length"),
        (b"OPTIONS sip:1001@127.0.0.1 SIP/2.0\r\nVia: x\r\n\r\n", "Content-Length"),
        (b"OPTIONS sip:1001@127.0.0.1 SIP/2.0\r\nContent-Length: 100000000\r\n\r\n", ""),
    ],
)
async def test_a_stream_closed_for_its_framing_is_a_dropped_event(
    open_phone: Phone, sent: bytes, named: str
) -> None:
    """Over UDP such a message was a dropped event; over TCP the connection
    closed and nothing said why."""
    reader, writer = await asyncio.open_connection("127.0.0.1", open_phone.port)
    try:
        writer.write(sent)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the phone
        await until(lambda: open_phone.kinds("dropped"), what="the dropped event")
        (dropped,) = open_phone.kinds("dropped")
        assert dropped["reason"].startswith("framing: ") and named in dropped["reason"]
        assert dropped["phone"] == "desk" and dropped["source"].startswith("127.0.0.1:")
    finally:
        writer.close()
