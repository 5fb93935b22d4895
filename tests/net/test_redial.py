"""Responses whose request's connection closed: over a new one (RFC 3261 18.2.2)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import pytest

from phonecast.net.endpoint import ServerHandle, SipEndpoint
from phonecast.net.redial import DEFAULT_PORTS, Redials, redial_target
from phonecast.net.stream import StreamTransport
from phonecast.net.transport import Flow, StreamConnection
from phonecast.sip import Request, Response, parse_message
from phonecast.sip.headers import parse_via
from phonecast.sip.response import make_response
from phonecast.sip.transaction import Timers
from tests.tls import LoopbackPki

pytestmark = pytest.mark.both_loops

FAST = Timers(t1=0.01, t2=0.04, t4=0.05, d_min=0.0)


def _request(method: str, via: str, branch: str) -> bytes:
    return (
        f"{method} sip:1001@127.0.0.1 SIP/2.0\r\n"
        f"Via: {via};branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:caller@127.0.0.1>;tag=c1\r\n"
        "To: <sip:1001@127.0.0.1>\r\n"
        f"Call-ID: redial-{branch}@127.0.0.1\r\n"
        f"CSeq: 1 {method}\r\n"
        "Contact: <sip:caller@127.0.0.1>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class Holder:
    """A TU that answers nothing itself: the test answers through the handles."""

    def __init__(self) -> None:
        self.handles: list[tuple[ServerHandle, Flow]] = []
        self.arrived = asyncio.Event()

    def __call__(self, request: Request, handle: ServerHandle | None, flow: Flow) -> None:
        assert handle is not None
        self.handles.append((handle, flow))
        self.arrived.set()


class Listener:
    """The caller's own SIP listener (what its Via names): collects the
    messages that arrive on each connection accepted."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[tuple[int, Response]] = asyncio.Queue()
        self.connections = 0
        self.server: asyncio.AbstractServer | None = None

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                message = parse_message(head)
                assert isinstance(message, Response)
                await self.messages.put((number, message))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def start(self, ssl_ctx: ssl.SSLContext | None = None) -> int:
        self.server = await asyncio.start_server(self._accepted, "127.0.0.1", 0, ssl=ssl_ctx)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def next(self) -> tuple[int, Response]:
        return await asyncio.wait_for(self.messages.get(), 5)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def _send_and_hang_up(
    port: int, data: bytes, tu: Holder, ssl_ctx: ssl.SSLContext | None = None
) -> Flow:
    """Send ``data`` on a connection of its own, close it once the TU has the
    request, and wait until the endpoint has seen it close."""
    _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ssl_ctx)
    writer.write(data)
    await writer.drain()
    await asyncio.wait_for(tu.arrived.wait(), 5)
    _, flow = tu.handles[-1]
    writer.close()
    assert flow.connection is not None
    await asyncio.wait_for(flow.connection.closed, 5)
    return flow


@contextlib.asynccontextmanager
async def _tcp_rig() -> AsyncIterator[tuple[Holder, SipEndpoint, Listener, int, str]]:
    """A server endpoint on TCP whose TU holds every request, and the
    caller's listener: (TU, server, listener, server port, the caller's Via
    without its branch)."""
    tu = Holder()
    server = SipEndpoint(handler=tu)
    listener = Listener()
    try:
        _, sport = await server.listen_stream("tcp", "127.0.0.1")
        lport = await listener.start()
        yield tu, server, listener, sport, f"SIP/2.0/TCP 127.0.0.1:{lport}"
    finally:
        await server.close()
        await listener.stop()


async def test_a_response_after_the_connection_closed_goes_over_a_new_one() -> None:
    """The caller closed the connection its OPTIONS came on: the later 200
    goes to the caller's source address at its Via's port, over TCP."""
    async with _tcp_rig() as (tu, server, listener, sport, via):
        flow = await _send_and_hang_up(sport, _request("OPTIONS", via, "z9hG4bKre1"), tu)
        handle = tu.handles[0][0]
        handle.respond(make_response(handle.request, 200, to_tag="t1"))
        number, response = await listener.next()
        assert number == 1 and response.status_code == 200
        assert response.top_via.branch == "z9hG4bKre1"
        assert server.stats.redialled == 1 and server.stats.redial_failed == 0
        assert flow.connection is not None and not flow.connection.is_open


async def test_responses_waiting_for_one_dial_leave_in_order_on_one_connection() -> None:
    """A 180 and the 200 behind it, both sent before the new connection is
    up: one dial, and they arrive in the order they were sent; the INVITE's
    transaction now lives on the new connection, which the stream limits
    must then spare."""
    async with _tcp_rig() as (tu, server, listener, sport, via):
        await _send_and_hang_up(sport, _request("INVITE", via, "z9hG4bKre2"), tu)
        handle = tu.handles[0][0]
        handle.respond(make_response(handle.request, 180, to_tag="t2"))
        handle.respond(make_response(handle.request, 200, to_tag="t2"))
        first, second = await listener.next(), await listener.next()
        assert [first[1].status_code, second[1].status_code] == [180, 200]
        assert first[0] == second[0] == 1 and listener.connections == 1
        assert server.stats.redialled == 1


async def test_when_no_one_listens_at_the_via_the_response_is_a_transport_error() -> None:
    """The new connection is refused too: the transaction hears of a
    transport error (RFC 3261 17.2.4); an INVITE's, as RFC 6026 keeps it
    for a retransmission over a working path, then ends at Timer H, and the
    endpoint goes on answering on connections that stay open."""
    tu = Holder()
    server = SipEndpoint(handler=tu, timers=FAST)
    closed = Listener()
    try:
        _, sport = await server.listen_stream("tcp", "127.0.0.1")
        dead_port = await closed.start()
        await closed.stop()  # nobody at the Via's port any more
        via = f"SIP/2.0/TCP 127.0.0.1:{dead_port}"
        await _send_and_hang_up(sport, _request("INVITE", via, "z9hG4bKre3"), tu)
        assert server.stats.transactions == 1
        handle = tu.handles[0][0]
        handle.respond(make_response(handle.request, 486, to_tag="t3"))
        for _ in range(100):
            if server.stats.redial_failed:
                break
            await asyncio.sleep(0.02)
        assert server.stats.redial_failed == 1 and server.stats.redialled == 0
        await asyncio.sleep(FAST.timeout + 0.2)  # Timer H
        assert server.stats.transactions == 0
        # The next caller keeps its connection and is answered on it.
        tu.arrived.clear()
        reader, writer = await asyncio.open_connection("127.0.0.1", sport)
        writer.write(_request("OPTIONS", "SIP/2.0/TCP 127.0.0.1:9", "z9hG4bKre4"))
        await asyncio.wait_for(tu.arrived.wait(), 5)
        handle = tu.handles[-1][0]
        handle.respond(make_response(handle.request, 200, to_tag="t4"))
        answer = parse_message(await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5))
        assert isinstance(answer, Response) and answer.status_code == 200
        writer.close()
    finally:
        await server.close()


async def test_over_tls_the_new_connection_checks_the_callers_certificate(
    pki: LoopbackPki,
) -> None:
    """Over TLS the new connection is TLS too, verified against the Via's
    host (the test's certificate names 127.0.0.1)."""
    tu = Holder()
    server = SipEndpoint(
        handler=tu, server_ssl=pki.server_context(), client_ssl=pki.client_context()
    )
    listener = Listener()
    try:
        _, sport = await server.listen_stream("tls", "127.0.0.1")
        lport = await listener.start(pki.server_context())
        via = f"SIP/2.0/TLS 127.0.0.1:{lport}"
        await _send_and_hang_up(
            sport, _request("OPTIONS", via, "z9hG4bKre5"), tu, pki.client_context()
        )
        handle = tu.handles[0][0]
        handle.respond(make_response(handle.request, 200, to_tag="t5"))
        _, response = await listener.next()
        assert response.status_code == 200 and server.stats.redialled == 1
    finally:
        await server.close()
        await listener.stop()


def test_the_target_is_the_source_address_at_the_via_port_or_the_default() -> None:
    """Never the Via's host: only where the request came from is dialled."""
    via = parse_via("SIP/2.0/TCP elsewhere.example.com:5099;branch=z9hG4bKx")
    assert redial_target(via, ("127.0.0.7", 40000), "tcp") == ("127.0.0.7", 5099)
    bare = parse_via("SIP/2.0/TLS elsewhere.example.com;branch=z9hG4bKx")
    assert redial_target(bare, ("127.0.0.7", 40000), "tls") == ("127.0.0.7", 5061)
    assert DEFAULT_PORTS == {"tcp": 5060, "tls": 5061}


class _SlowStream:
    """A stand-in transport whose dials wait until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.dialled: list[tuple[str, int]] = []

    async def connect(self, remote: tuple[str, int], **_: Any) -> StreamConnection:
        self.dialled.append(remote)
        await self.release.wait()
        raise ConnectionRefusedError("refused")


async def test_dials_at_once_are_bounded_and_a_queue_shares_one() -> None:
    """Past ``limit`` targets a response is failed at once; a second response
    for a target being dialled waits for that dial instead of a new one."""
    stream = _SlowStream()
    redials = Redials(cast(Callable[[str], StreamTransport], lambda _name: stream), limit=2)
    told: list[tuple[str, object]] = []

    def hears(name: str) -> Callable[[StreamConnection | None], None]:
        return lambda conn: told.append((name, conn))

    via = parse_via("SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bKx")

    def came_from(host: str) -> Flow:  # a request's flow: its source, any port
        return Flow("tcp", (host, 40000), ("127.0.0.1", 5060))

    redials.connect(came_from("127.0.0.1"), via, hears("a1"))
    redials.connect(came_from("127.0.0.1"), via, hears("a2"))
    redials.connect(came_from("127.0.0.2"), via, hears("b"))
    redials.connect(came_from("127.0.0.3"), via, hears("c"))  # one too many
    assert told == [("c", None)] and len(redials) == 2
    await asyncio.sleep(0)
    assert sorted(stream.dialled) == [("127.0.0.1", 5070), ("127.0.0.2", 5070)]
    stream.release.set()
    for _ in range(50):
        if len(told) == 4:
            break
        await asyncio.sleep(0.01)
    names = [name for name, _ in told]
    assert names[0] == "c" and sorted(names) == ["a1", "a2", "b", "c"]
    assert [n for n in names if n.startswith("a")] == ["a1", "a2"]  # in order
    assert all(conn is None for _, conn in told)
    assert redials.failed == 3 and redials.opened == 0 and len(redials) == 0
    await redials.close()


async def test_a_2xx_resent_after_the_connection_closed_goes_over_a_new_one() -> None:
    """The INVITE's 200 went out on its connection, which then closed: the
    TU's resends of that 200 (RFC 3261 13.3.1.4, the transaction Accepted
    as RFC 6026 has it) go over a new connection to the caller."""
    async with _tcp_rig() as (tu, server, listener, sport, via):
        reader, writer = await asyncio.open_connection("127.0.0.1", sport)
        writer.write(_request("INVITE", via, "z9hG4bKre6"))
        await asyncio.wait_for(tu.arrived.wait(), 5)
        handle, flow = tu.handles[0]
        ok = make_response(handle.request, 200, to_tag="t6")
        handle.respond(ok)
        first = parse_message(await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5))
        assert isinstance(first, Response) and first.status_code == 200
        writer.close()
        assert flow.connection is not None
        await asyncio.wait_for(flow.connection.closed, 5)
        handle.respond(ok)  # the resend, with no ACK yet
        _, again = await listener.next()
        assert again.status_code == 200 and server.stats.redialled == 1
