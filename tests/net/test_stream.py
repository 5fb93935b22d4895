"""TCP and TLS connections and their pool on loopback (the cap and the
other limits: test_stream_limits.py)."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest

from phonecast.net.stream import StreamTransport
from phonecast.net.transport import Flow
from tests.net.test_transport import MSG, Inbox
from tests.tls import LoopbackPki
from tests.waiting import until

#: Transports are where asyncio's loop and uvloop differ: run on both.
pytestmark = pytest.mark.both_loops


async def test_tcp_frames_messages_and_answers_on_same_connection() -> None:
    server_in, client_in = Inbox(), Inbox()
    server = StreamTransport("tcp", server_in)
    client = StreamTransport("tcp", client_in)
    addr = await server.listen("127.0.0.1", 0)
    try:
        conn = await client.connect(addr)
        conn.send(MSG + MSG[:20])
        conn.send(MSG[20:])
        (d1, flow), (d2, _) = await server_in.get(), await server_in.get()
        assert d1 == d2 == MSG and flow.transport == "tcp" and flow.reliable
        assert flow.connection is not None
        flow.connection.send(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n")
        data, _ = await client_in.get()
        assert data.startswith(b"SIP/2.0 200")
        assert await client.connect(addr) is conn  # reused from the pool
    finally:
        await client.close()
        await server.close()


async def test_a_connection_accepted_on_a_wildcard_listener_names_the_bound_address() -> None:
    """As a datagram names the socket it came to, an accepted connection's
    flow names its listener's bound address (0.0.0.0:port), not the one the
    peer dialled: what tables of lines and restrictions are keyed by."""
    server_in = Inbox()
    server = StreamTransport("tcp", server_in)
    client = StreamTransport("tcp", Inbox())
    bound = await server.listen("0.0.0.0", 0)
    try:
        conn = await client.connect(("127.0.0.1", bound[1]))
        conn.send(MSG)
        _, flow = await server_in.get()
        assert bound[0] == "0.0.0.0" and flow.local == bound
        assert conn.flow is not None and conn.flow.remote == ("127.0.0.1", bound[1])
    finally:
        await client.close()
        await server.close()


async def test_tcp_framing_error_closes_connection() -> None:
    server = StreamTransport("tcp", Inbox())
    addr = await server.listen("127.0.0.1", 0)
    client = StreamTransport("tcp", Inbox())
    try:
        conn = await client.connect(addr)
        conn.send(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: nope\r\n\r\n")
        await asyncio.wait_for(conn.closed, 2)
        assert not conn.is_open
    finally:
        await client.close()
        await server.close()


async def test_a_receiver_that_closes_the_connection_hears_no_more_of_that_read() -> None:
    """Three messages in one segment; the receiver closes the connection on
    the first: the other two, which could be answered nowhere, are not
    delivered."""
    heard: list[bytes] = []

    def close_on_first(data: bytes, flow: Flow) -> None:
        heard.append(data)
        assert flow.connection is not None
        flow.connection.close()

    server = StreamTransport("tcp", close_on_first)
    addr = await server.listen("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection(*addr)
        writer.write(MSG * 3)
        assert await asyncio.wait_for(reader.read(100), 2) == b""  # closed by the receiver
        writer.close()
        assert heard == [MSG]
    finally:
        await server.close()


async def test_tls_with_test_ca(pki: LoopbackPki) -> None:
    server_in, client_in = Inbox(), Inbox()
    server = StreamTransport("tls", server_in, server_ssl=pki.server_context())
    client = StreamTransport("tls", client_in, client_ssl=pki.client_context())
    addr = await server.listen("127.0.0.1", 0)
    try:
        conn = await client.connect(addr)
        conn.send(MSG)
        data, flow = await server_in.get()
        assert data == MSG and flow.transport == "tls"
    finally:
        await client.close()
        await server.close()


async def test_tls_refuses_untrusted_server(pki: LoopbackPki) -> None:
    server = StreamTransport("tls", Inbox(), server_ssl=pki.server_context())
    client = StreamTransport("tls", Inbox(), client_ssl=ssl.create_default_context())
    addr = await server.listen("127.0.0.1", 0)
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            await client.connect(addr)
        await until(lambda: not server._open)  # the server's end let go too
    finally:
        await client.close()
        await server.close()


async def _accepting() -> tuple[asyncio.Server, tuple[str, int], list[asyncio.StreamReader]]:
    """A TCP server on loopback that accepts and reads nothing: itself, its
    address, and the reading end of each connection it accepted."""
    accepted: list[asyncio.StreamReader] = []

    async def accept(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
        accepted.append(reader)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    return server, (host, port), accepted


async def test_callers_dialling_at_once_share_one_connection_and_close_closes_all() -> None:
    """Eight callers asking for a connection to one peer at once (the lines
    of a fleet registering together) get one: each used to dial its own,
    of which the pool kept the last, and close() closed only that one.
    A failed dial fails every caller waiting for it."""
    server, addr, accepted = await _accepting()
    client = StreamTransport("tcp", Inbox())
    try:
        conns = await asyncio.gather(*(client.connect(addr) for _ in range(8)))
        assert len({id(c) for c in conns}) == 1
        await asyncio.sleep(0.05)
        assert len(accepted) == 1
        await client.close()
        assert not conns[0].is_open
        assert await asyncio.wait_for(accepted[0].read(), 2) == b""  # closed at the peer too
        refused = StreamTransport("tcp", Inbox())
        server.close()
        await server.wait_closed()
        results = await asyncio.gather(
            *(refused.connect(addr) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, ConnectionRefusedError) for r in results), results
        await refused.close()
    finally:
        await client.close()
        server.close()


async def test_a_cancelled_dialler_does_not_cancel_those_waiting_on_its_dial(
    pki: LoopbackPki,
) -> None:
    """The first caller's dial is shared; when that caller is cancelled the
    others waiting on it are not: they look again and dial themselves (here
    to a peer that never answers TLS, so each ends by its own timeout)."""
    silent = socket.socket()  # accepts TCP, never speaks TLS: a dial that hangs
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    addr = silent.getsockname()
    client = StreamTransport("tls", Inbox(), client_ssl=pki.client_context())
    try:
        first = asyncio.ensure_future(client.connect(addr, timeout=5))
        await asyncio.sleep(0.05)
        waiter = asyncio.ensure_future(client.connect(addr, timeout=0.5))
        await asyncio.sleep(0.05)
        first.cancel()
        with pytest.raises(TimeoutError):
            await waiter
        assert first.cancelled()
    finally:
        await client.close()
        silent.close()


async def test_a_dial_that_completes_after_close_leaves_nothing_open() -> None:
    server, addr, accepted = await _accepting()
    client = StreamTransport("tcp", Inbox())
    try:
        dial = asyncio.ensure_future(client.connect(addr))
        await asyncio.sleep(0)  # the dial is under way
        await client.close()
        with pytest.raises(ConnectionAbortedError):
            await dial
        await until(lambda: accepted, what="the connection reached the server")
        assert await asyncio.wait_for(accepted[0].read(), 2) == b""  # and was closed
        with pytest.raises(ConnectionAbortedError):
            await client.connect(addr)
    finally:
        server.close()
        await server.wait_closed()


async def test_a_connection_dialled_by_name_leaves_the_pool_under_both_names() -> None:
    """Dialled as ``localhost``, a connection is pooled under that name and
    under its peer's address; when it is lost both entries go (the name's
    used to stay until the next dial)."""
    peers: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = StreamTransport("tcp", Inbox())
    try:
        conn = await client.connect(("localhost", port))
        assert conn.flow is not None and conn.flow.remote == ("127.0.0.1", port)
        assert set(client._pool) == {("localhost", port), ("127.0.0.1", port)}
        await until(lambda: peers, what="accepted")
        peers[0].close()
        await until(lambda: not client._pool, what="both pool entries gone")
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
