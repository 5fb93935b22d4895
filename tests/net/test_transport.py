"""UDP, TCP and TLS transports on loopback."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest

from phonecast.net.transport import Flow, StreamTransport, UdpTransport
from tests.tls import LoopbackPki
from tests.waiting import until

#: Transports are where asyncio's loop and uvloop differ: run on both.
pytestmark = pytest.mark.both_loops

MSG = (
    b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\n"
    b"Content-Length: 4\r\n\r\nbody"
)


class Inbox:
    def __init__(self) -> None:
        self.items: asyncio.Queue[tuple[bytes, Flow]] = asyncio.Queue()

    def __call__(self, data: bytes, flow: Flow) -> None:
        self.items.put_nowait((data, flow))

    async def get(self) -> tuple[bytes, Flow]:
        return await asyncio.wait_for(self.items.get(), 2)


async def test_udp_round_trip_and_drain() -> None:
    inbox_a, inbox_b = Inbox(), Inbox()
    a = await UdpTransport.bind("127.0.0.1", 0, inbox_a)
    b = await UdpTransport.bind("127.0.0.1", 0, inbox_b)
    try:
        for i in range(500):
            a.sendto(MSG + str(i).encode(), b.local)
        got = [await inbox_b.get() for _ in range(500)]
        assert got[0][1].remote == a.local and got[0][1].transport == "udp"
        assert not got[0][1].reliable
        assert {d for d, _ in got} == {MSG + str(i).encode() for i in range(500)}
        b.sendto(b"pong", got[0][1].remote)
        data, flow = await inbox_a.get()
        assert data == b"pong" and flow.remote == b.local
    finally:
        a.close()
        b.close()


async def test_udp_flows_are_one_per_peer_and_bounded() -> None:
    """Datagrams from one source share one Flow; each source has its own,
    and the table of them never outgrows its bound."""
    from phonecast.net import transport as module

    inbox = Inbox()
    b = await UdpTransport.bind("127.0.0.1", 0, inbox)
    a = await UdpTransport.bind("127.0.0.1", 0, Inbox())
    c = await UdpTransport.bind("127.0.0.1", 0, Inbox())
    try:
        for sender in (a, a, c):
            sender.sendto(MSG, b.local)
        flows = [(await inbox.get())[1] for _ in range(3)]
        assert flows[0] is flows[1] and flows[0].remote == a.local
        assert flows[2] is not flows[0] and flows[2].remote == c.local
        while len(b._flows) < module._FLOWS_KEPT:  # as if a flood of sources came
            b._flows[("192.0.2.1", len(b._flows))] = flows[0]
        d = await UdpTransport.bind("127.0.0.1", 0, Inbox())  # a source not seen yet
        d.sendto(MSG, b.local)  # the full table starts afresh
        assert (await inbox.get())[1].remote == d.local
        assert len(b._flows) == 1
        d.close()
    finally:
        a.close()
        b.close()
        c.close()


async def test_answers_of_a_drain_leave_together_when_it_ends() -> None:
    """send_soon inside a drain holds the answer: the peer has none of a
    burst's answers while the burst is read, all of them after it, at most
    _HELD_MAX late; outside a drain the datagram leaves at the loop's next
    turn, or at close()."""
    import socket

    from phonecast.net import transport as module

    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.setblocking(False)

    def answered() -> int:
        count = 0
        while True:
            try:
                peer.recv(2048)
            except BlockingIOError:
                return count
            count += 1

    seen: list[int] = []  # answers the peer held when each request was read
    done = asyncio.Event()
    burst = module._HELD_MAX + 8
    total = 0

    def answer(data: bytes, flow: Flow) -> None:
        nonlocal total
        seen.append(total := total + answered())
        b.send_soon(b"answer", flow.remote)
        if len(seen) == burst:
            done.set()

    b = await UdpTransport.bind("127.0.0.1", 0, answer)
    try:
        for _ in range(burst):  # all queued before the loop reads any
            peer.sendto(MSG, b.local)
        await asyncio.wait_for(done.wait(), 2)
        assert seen[: module._HELD_MAX] == [0] * module._HELD_MAX
        assert seen[module._HELD_MAX :] == [module._HELD_MAX] * 8  # the first batch, when full
        assert total + answered() == burst  # the rest when the drain ended
        b.send_soon(b"soon", peer.getsockname())  # outside a drain: at the next turn
        assert answered() == 0
        await asyncio.sleep(0)
        assert peer.recv(2048) == b"soon"
        b.send_soon(b"last", peer.getsockname())
        b.close()  # what was sent before close() still leaves
        assert peer.recv(2048) == b"last"
    finally:
        b.close()
        peer.close()


async def test_udp_ipv6_loopback() -> None:
    inbox = Inbox()
    try:
        a = await UdpTransport.bind("::1", 0, inbox)
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    b = await UdpTransport.bind("::1", 0, Inbox())
    try:
        b.sendto(MSG, a.local)
        data, flow = await inbox.get()
        assert data == MSG and flow.remote[0] == "::1"
    finally:
        a.close()
        b.close()


async def test_udp_send_to_closed_port_does_not_raise() -> None:
    a = await UdpTransport.bind("127.0.0.1", 0, Inbox())
    dead = await UdpTransport.bind("127.0.0.1", 0, Inbox())
    port = dead.local
    dead.close()
    try:
        for _ in range(5):
            a.sendto(MSG, port)
            await asyncio.sleep(0.01)
    finally:
        a.close()


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
