"""What TCP and TLS peers may make a stream transport hold (StreamLimits).

Each test plays the hostile or careless peer with a plain socket (or an
asyncio stream) and checks both that the transport let go of what it should
and that it kept what it should: a connection in use, a peer sending
messages steadily, a peer reading its answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import Any

import pytest

from phonecast.net.limits import StreamLimits
from phonecast.net.stream import StreamTransport
from phonecast.net.transport import StreamConnection
from tests.net.test_transport import MSG, Inbox
from tests.tls import LoopbackPki, MemoryTlsClient
from tests.waiting import until

pytestmark = pytest.mark.both_loops


async def _peer(addr: tuple[str, int]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(*addr)


async def _closed_by_server(reader: asyncio.StreamReader, within: float = 3.0) -> bool:
    """True once the server ends the connection (EOF or reset), False if it
    is still open after ``within`` seconds."""
    try:
        while await asyncio.wait_for(reader.read(65536), within):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def _tls_server(
    pki: LoopbackPki,
    inbox: Inbox | None = None,
    *,
    in_use: Callable[[StreamConnection], bool] | None = None,
    **limits: Any,
) -> StreamTransport:
    """A TLS transport presenting the loopback certificate, with ``limits``."""
    return StreamTransport(
        "tls",
        inbox or Inbox(),
        server_ssl=pki.server_context(),
        limits=StreamLimits(**limits),
        in_use=in_use,
    )


async def test_an_idle_connection_is_closed_and_a_busy_one_kept() -> None:
    busy: set[StreamConnection] = set()
    inbox = Inbox()
    server = StreamTransport(
        "tcp",
        inbox,
        limits=StreamLimits(idle_timeout=0.2, message_timeout=5),
        in_use=lambda conn: conn in busy,
    )
    addr = await server.listen("127.0.0.1", 0)
    try:
        idle_r, _idle_w = await _peer(addr)
        kept_r, kept_w = await _peer(addr)
        kept_w.write(MSG)
        _, flow = await inbox.get()
        assert flow.connection is not None
        busy.add(flow.connection)
        assert await _closed_by_server(idle_r)
        assert server.counters.idle == 1
        await asyncio.sleep(0.5)  # two idle timeouts more: the busy one stays
        assert flow.connection.is_open and not kept_r.at_eof()
        busy.clear()  # its transaction ended: now it may go too
        assert await _closed_by_server(kept_r)
        assert server.counters.idle == 2
    finally:
        await server.close()


async def test_a_message_trickled_in_is_cut_off_but_steady_pipelining_is_not() -> None:
    inbox = Inbox()
    server = StreamTransport(
        "tcp", inbox, limits=StreamLimits(idle_timeout=30, message_timeout=1.0)
    )
    addr = await server.listen("127.0.0.1", 0)
    try:
        slow_r, slow_w = await _peer(addr)
        steady_r, steady_w = await _peer(addr)
        # The steady peer's every write completes one message and begins the
        # next, for over two message timeouts: it is never mid-message for
        # long (a tenth of the timeout), though never at a message boundary
        # when a write ends.
        steady_w.write(MSG[:30])
        stream = MSG[30:] + MSG[:30]
        for _ in range(25):
            steady_w.write(stream)
            if not slow_w.is_closing() and not slow_r.at_eof():
                with contextlib.suppress(ConnectionError, RuntimeError):
                    slow_w.write(b"x")  # a byte at a time, never a whole message
            await asyncio.sleep(0.1)
        assert await _closed_by_server(slow_r)
        assert server.counters.stalled == 1
        steady_w.write(MSG[30:])
        for _ in range(26):
            data, _ = await inbox.get()
            assert data == MSG
        assert not steady_r.at_eof() and server.counters.stalled == 1
    finally:
        await server.close()


async def test_past_the_cap_the_least_recently_used_idle_connection_goes() -> None:
    inbox = Inbox()
    server = StreamTransport("tcp", inbox, limits=StreamLimits(max_connections=3))
    addr = await server.listen("127.0.0.1", 0)
    try:
        peers = [await _peer(addr) for _ in range(3)]
        await until(lambda: len(server._recent) == 3)
        peers[0][1].write(MSG)  # the first is now the most recently used
        await inbox.get()
        fourth = await _peer(addr)
        assert await _closed_by_server(peers[1][0])
        assert server.counters.evicted == 1
        fourth[1].write(MSG)
        await inbox.get()
        assert not peers[0][0].at_eof() and not peers[2][0].at_eof()
    finally:
        await server.close()


async def test_past_the_cap_with_every_connection_in_use_a_peer_displaces_the_oldest() -> None:
    """A peer holding every place with transactions it keeps alive once shut
    all others out (new connections refused for as long as it liked); now the
    least recently active connection a peer opened goes, busy or not (its
    transactions answer over a new connection, RFC 3261 18.2.2).  A dial of
    our own past its cap still waits for a place, and gives up in its time."""
    server = StreamTransport(
        "tcp", Inbox(), limits=StreamLimits(max_connections=2), in_use=lambda conn: True
    )
    addr = await server.listen("127.0.0.1", 0)
    client = StreamTransport(
        "tcp", Inbox(), limits=StreamLimits(max_connections=1), in_use=lambda conn: True
    )
    try:
        first = [await _peer(addr) for _ in range(2)]
        await until(lambda: len(server._recent) == 2)
        first[1][1].write(b"\r\n\r\n")  # the second is the more recently active
        await first[1][1].drain()
        await first[1][0].readexactly(2)  # its pong
        third_r, _ = await _peer(addr)
        assert await _closed_by_server(first[0][0])
        assert not await _closed_by_server(third_r, within=0.3)
        assert not first[1][0].at_eof() and len(server._recent) == 2
        assert server.counters.displaced == 1 and server.counters.refused == 0
        # A dialling side says so, naming the limit, instead of opening it.
        other = StreamTransport("tcp", Inbox())
        other_addr = await other.listen("127.0.0.1", 0)
        try:
            await client.connect(other_addr)
            # A dial of our own waits for a place, then gives up in its time.
            with pytest.raises(ConnectionRefusedError, match="no room for another tcp"):
                await client.connect(addr, timeout=0.2)
            assert client.counters.refused == 1 and not client._room.waiting
        finally:
            await other.close()
    finally:
        await client.close()
        await server.close()


async def test_dials_past_the_cap_wait_their_turn_for_a_place() -> None:
    """Our own dials past the cap, every connection in use, wait in order
    for a place instead of failing: one per connection that comes free (told
    ``freed`` by the endpoint, or closed), the one freed closed to make it."""
    busy: set[StreamConnection] = set()
    client = StreamTransport(
        "tcp", Inbox(), limits=StreamLimits(max_connections=1), in_use=lambda c: c in busy
    )
    servers = [StreamTransport("tcp", Inbox()) for _ in range(3)]
    try:
        addrs = [await server.listen("127.0.0.1", 0) for server in servers]
        first = await client.connect(addrs[0])
        busy.add(first)
        second = asyncio.ensure_future(client.connect(addrs[1], timeout=5))
        third = asyncio.ensure_future(client.connect(addrs[2], timeout=5))
        await asyncio.sleep(0.2)
        assert not second.done() and not third.done() and client._room.waiting == 2
        busy.discard(first)
        client.freed(first)  # its transaction ended: the first waiter's turn
        conn = await asyncio.wait_for(second, 5)
        busy.add(conn)
        assert not first.is_open and client.counters.evicted == 1
        await asyncio.sleep(0.1)
        assert not third.done()  # no place for it yet
        conn.abort()  # the second's connection closes: the third's turn
        assert (await asyncio.wait_for(third, 5)).is_open
        assert client.counters.refused == 0 and not client._room.waiting
    finally:
        await client.close()
        for server in servers:
            await server.close()


class _Capped:
    """A client transport with a cap, whose connections are busy while in
    ``busy``, and servers to dial."""

    def __init__(self, cap: int, servers: int) -> None:
        self.busy: set[StreamConnection] = set()
        self.client = StreamTransport(
            "tcp",
            Inbox(),
            limits=StreamLimits(max_connections=cap),
            in_use=lambda c: c in self.busy,
        )
        self.servers = [StreamTransport("tcp", Inbox()) for _ in range(servers)]
        self.addrs: list[tuple[str, int]] = []

    async def __aenter__(self) -> _Capped:
        self.addrs = [await server.listen("127.0.0.1", 0) for server in self.servers]
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.client.close()
        for server in self.servers:
            await server.close()

    async def busy_connection(self, n: int) -> StreamConnection:
        conn = await self.client.connect(self.addrs[n])
        self.busy.add(conn)
        return conn


async def test_a_place_freed_while_a_waiter_is_being_let_through_is_not_lost() -> None:
    """A is freed and at once taken up again, B is freed in the same turn:
    the waiting dial gets B's place (it was once told only of A, found it
    busy and waited on, past its timeout, with B idle)."""
    async with _Capped(2, 3) as rig:
        a, b = await rig.busy_connection(0), await rig.busy_connection(1)
        waiting = asyncio.ensure_future(rig.client.connect(rig.addrs[2], timeout=2))
        await until(lambda: rig.client._room.waiting == 1)
        rig.busy.discard(a)
        rig.client.freed(a)
        rig.busy.add(a)  # its caller reused it before the waiter ran
        rig.busy.discard(b)
        rig.client.freed(b)
        conn = await asyncio.wait_for(waiting, 5)
        assert conn.is_open and a.is_open and not b.is_open
        assert len(rig.client._recent) == 2 and rig.client._room.admitted == 0


async def test_a_dial_arriving_as_a_waiter_is_let_through_queues_behind_it() -> None:
    """The place freed goes to the dial that waited, and a new dial in the
    same turn waits behind it: the cap is never passed."""
    async with _Capped(1, 3) as rig:
        a = await rig.busy_connection(0)
        first = asyncio.ensure_future(rig.client.connect(rig.addrs[1], timeout=5))
        await until(lambda: rig.client._room.waiting == 1)
        rig.busy.discard(a)
        rig.client.freed(a)
        late = asyncio.ensure_future(rig.client.connect(rig.addrs[2], timeout=5))
        got = await asyncio.wait_for(first, 5)
        rig.busy.add(got)
        await asyncio.sleep(0.1)
        assert not late.done() and len(rig.client._recent) == 1
        got.abort()
        assert (await asyncio.wait_for(late, 5)).is_open
        assert len(rig.client._recent) == 1


async def test_a_waiter_cancelled_as_it_is_let_through_hands_its_place_on() -> None:
    """Cancelled in the turn its place was granted: it ends cancelled (on
    Python 3.11 ``wait_for`` could swallow that and connect anyway), and the
    place goes to the next dial waiting."""
    async with _Capped(1, 3) as rig:
        a = await rig.busy_connection(0)
        first = asyncio.ensure_future(rig.client.connect(rig.addrs[1], timeout=5))
        await until(lambda: rig.client._room.waiting == 1)
        second = asyncio.ensure_future(rig.client.connect(rig.addrs[2], timeout=5))
        await until(lambda: rig.client._room.waiting == 2)
        rig.busy.discard(a)
        rig.client.freed(a)  # the grant runs at the end of this turn...
        asyncio.get_running_loop().call_soon(first.cancel)  # ...and then this
        with pytest.raises(asyncio.CancelledError):
            await first
        assert (await asyncio.wait_for(second, 5)).is_open
        assert rig.client._room.admitted == 0 and not rig.client._room.waiting


async def test_a_dial_that_may_not_wait_is_refused_at_the_cap() -> None:
    async with _Capped(1, 2) as rig:
        await rig.busy_connection(0)
        with pytest.raises(ConnectionRefusedError, match="no room"):
            await rig.client.connect(rig.addrs[1], wait=False)
        assert rig.client.counters.refused == 1


async def test_a_dial_waiting_for_a_place_ends_when_the_transport_closes() -> None:
    client = StreamTransport(
        "tcp", Inbox(), limits=StreamLimits(max_connections=1), in_use=lambda c: True
    )
    servers = [StreamTransport("tcp", Inbox()) for _ in range(2)]
    try:
        addr, other = [await server.listen("127.0.0.1", 0) for server in servers]
        await client.connect(addr)
        waiting = asyncio.ensure_future(client.connect(other, timeout=5))
        await asyncio.sleep(0.1)
        await client.close()
        with pytest.raises(ConnectionAbortedError):
            await asyncio.wait_for(waiting, 2)
    finally:
        for server in servers:
            await server.close()


async def _non_reader(
    addr: tuple[str, int], inbox: Inbox
) -> tuple[socket.socket, StreamConnection]:
    """A peer with a small receive buffer that sends one message and never
    reads: its socket, and the server's end of its connection."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(addr)
    sock.sendall(MSG)
    _, flow = await inbox.get()
    assert flow.connection is not None
    return sock, flow.connection


async def test_a_peer_that_does_not_read_is_dropped_not_queued_for() -> None:
    inbox = Inbox()
    server = StreamTransport("tcp", inbox, limits=StreamLimits(max_unsent=64 * 1024))
    addr = await server.listen("127.0.0.1", 0)
    sock, conn = await _non_reader(addr, inbox)
    try:
        answer = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n" + b"\r\n" * 8000
        for _ in range(2000):  # at most ~32 MB; the kernel holds a few MB
            if not conn.is_open:
                break
            conn.send(answer)
            await asyncio.sleep(0)
        await asyncio.wait_for(conn.closed, 2)
        assert conn.unread and server.counters.unread == 1
    finally:
        sock.close()
        await server.close()


async def test_a_crlf_ping_gets_a_pong_and_the_connection_carries_on() -> None:
    """RFC 5626 4.4.1: a double CRLF is answered with a single CRLF, even
    split across reads; lone CRLFs between messages are not pings."""
    inbox = Inbox()
    server = StreamTransport("tcp", inbox)
    addr = await server.listen("127.0.0.1", 0)
    try:
        reader, writer = await _peer(addr)
        writer.write(b"\r\n\r\n")
        assert await asyncio.wait_for(reader.readexactly(2), 2) == b"\r\n"
        writer.write(b"\r")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"\n\r\n")
        assert await asyncio.wait_for(reader.readexactly(2), 2) == b"\r\n"
        writer.write(MSG + b"\r\n" + MSG)
        assert (await inbox.get())[0] == MSG and (await inbox.get())[0] == MSG
        with pytest.raises(TimeoutError):  # the lone CRLF asked for nothing
            await asyncio.wait_for(reader.read(1), 0.2)
    finally:
        await server.close()


async def test_a_tls_handshake_never_begun_is_cut_off(pki: LoopbackPki) -> None:
    server = _tls_server(pki, message_timeout=0.3)
    addr = await server.listen("127.0.0.1", 0)
    try:
        reader, _writer = await _peer(addr)  # plain TCP: no ClientHello, ever
        assert await _closed_by_server(reader)
        assert server.counters.stalled == 1  # the transport's own limit cut it
        # A real client still gets through.
        client = StreamTransport("tls", Inbox(), client_ssl=pki.client_context())
        try:
            conn = await client.connect(addr)
            assert conn.is_open
        finally:
            await client.close()
    finally:
        await server.close()


async def test_tls_connections_still_handshaking_count_against_the_cap(
    pki: LoopbackPki,
) -> None:
    """A peer opening TLS connections it never shakes hands on cannot hold
    more than the cap: each counts from its accept (before, only once its
    handshake was done), so the least recently used goes for the next one,
    and a real client still gets a place."""
    inbox = Inbox()
    server = _tls_server(pki, inbox, max_connections=2, message_timeout=30)
    addr = await server.listen("127.0.0.1", 0)
    try:
        silent = [await _peer(addr) for _ in range(2)]
        await until(lambda: len(server._recent) == 2)
        third = await _peer(addr)
        assert await _closed_by_server(silent[0][0])
        await until(lambda: len(server._recent) == 2)
        assert server.counters.evicted == 1
        _reader, writer = await asyncio.open_connection(*addr, ssl=pki.client_context())
        writer.write(MSG)
        data, flow = await inbox.get()
        assert data == MSG and flow.transport == "tls"
        assert await _closed_by_server(silent[1][0])  # the next least recently used
        assert len(server._recent) == 2 and server.counters.evicted == 2
        assert not third[0].at_eof()
        writer.close()
    finally:
        await server.close()


async def test_a_tls_handshake_past_the_cap_with_every_place_in_use_displaces_the_oldest(
    pki: LoopbackPki,
) -> None:
    server = _tls_server(pki, in_use=lambda conn: True, max_connections=1, message_timeout=30)
    addr = await server.listen("127.0.0.1", 0)
    try:
        first = await _peer(addr)
        await until(lambda: len(server._recent) == 1)
        second = await _peer(addr)
        assert await _closed_by_server(first[0])
        assert not await _closed_by_server(second[0], within=0.3)
        assert server.counters.displaced == 1 and server.counters.refused == 0
    finally:
        await server.close()


async def test_a_peer_keeping_its_connections_active_cannot_displace_a_newcomer() -> None:
    """By activity alone, a peer pinging its connections (a CRLF is
    activity) made the newcomer, silent while its INVITE rang, the next to
    go; the address holding the most places gives one up instead."""
    server = StreamTransport(
        "tcp", Inbox(), limits=StreamLimits(max_connections=3), in_use=lambda conn: True
    )
    addr = await server.listen("127.0.0.1", 0)

    async def ping(writer: asyncio.StreamWriter, reader: asyncio.StreamReader) -> None:
        writer.write(b"\r\n\r\n")
        await writer.drain()
        await reader.readexactly(2)

    try:
        hog = [await asyncio.open_connection(*addr, local_addr=("127.0.0.2", 0)) for _ in range(3)]
        await until(lambda: len(server._recent) == 3)
        newcomer = await asyncio.open_connection(*addr, local_addr=("127.0.0.3", 0))
        await until(lambda: server.counters.displaced == 1)
        for _ in range(2):  # the hog keeps each of its survivors busier than the newcomer
            for reader, writer in hog:
                if not reader.at_eof():
                    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                        await ping(writer, reader)
            hog.append(await asyncio.open_connection(*addr, local_addr=("127.0.0.2", 0)))
            await until(lambda: server.counters.displaced >= 2)
        assert not await _closed_by_server(newcomer[0], within=0.3)
        assert server.counters.refused == 0
    finally:
        await server.close()


async def test_a_connection_the_host_dialled_is_never_displaced() -> None:
    """Only connections peers opened make way: a registration's or a push's
    connection (dialled by us, carrying our transactions) stays, and a peer
    past the cap with nothing else to displace is refused."""
    remote = StreamTransport("tcp", Inbox())
    remote_addr = await remote.listen("127.0.0.1", 0)
    server = StreamTransport(
        "tcp", Inbox(), limits=StreamLimits(max_connections=1), in_use=lambda conn: True
    )
    addr = await server.listen("127.0.0.1", 0)
    try:
        ours = await server.connect(remote_addr)
        peer_r, _ = await _peer(addr)
        assert await _closed_by_server(peer_r)
        assert not ours.closed.done() and server.counters.refused == 1
        assert server.counters.displaced == 0
    finally:
        await server.close()
        await remote.close()


async def test_a_crlf_ping_over_tls_gets_its_pong_over_tls(pki: LoopbackPki) -> None:
    inbox = Inbox()
    server = _tls_server(pki, inbox)
    addr = await server.listen("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection(*addr, ssl=pki.client_context())
        writer.write(b"\r\n\r\n")
        assert await asyncio.wait_for(reader.readexactly(2), 2) == b"\r\n"
        writer.write(MSG)
        assert (await inbox.get())[0] == MSG
        writer.close()
    finally:
        await server.close()


class _HandTls(MemoryTlsClient):
    """A TLS client run by hand over a plain connection, so that a test
    decides when each of its bytes leaves: the peer that trickles."""

    async def connect(self, addr: tuple[str, int]) -> None:
        self.reader, self.writer = await _peer(addr)

    async def handshake(self) -> bytes:
        """Shake hands up to the client's last flight, which is returned
        unsent (a TLS 1.3 client often sends it with its first data)."""
        while not self.handshake_step():
            self.writer.write(self.outgoing.read())
            self.incoming.write(await asyncio.wait_for(self.reader.read(65536), 3))
        return self.outgoing.read()


async def test_a_tls_record_trickled_in_is_cut_off_as_a_message_would_be(
    pki: LoopbackPki,
) -> None:
    """After the handshake, a byte of a record now and then refreshes no
    clock: the record is part of a message, bounded by the message timeout
    (it decrypts to nothing until whole, so it must be followed as a record)."""
    server = _tls_server(pki, message_timeout=0.5, idle_timeout=1.0)
    addr = await server.listen("127.0.0.1", 0)
    try:
        client = _HandTls(pki)
        await client.connect(addr)
        client.writer.write(await client.handshake())
        wire = client.record(MSG)
        for octet in wire[:-1]:
            client.writer.write(bytes([octet]))
            await client.writer.drain()
            if client.reader.at_eof() or server.counters.stalled:
                break
            await asyncio.sleep(0.1)
        await until(lambda: server.counters.stalled == 1, timeout=3)
        assert await _closed_by_server(client.reader)
    finally:
        await server.close()


async def test_the_first_message_is_timed_from_the_handshake_not_the_accept(
    pki: LoopbackPki,
) -> None:
    inbox = Inbox()
    server = _tls_server(pki, inbox, message_timeout=1.0)
    addr = await server.listen("127.0.0.1", 0)
    try:
        client = _HandTls(pki)
        await client.connect(addr)
        await asyncio.sleep(0.8)  # a slow client: most of the timeout before its hello
        finished = await client.handshake()
        # One flight: the handshake's end and the start of a message, whose
        # clock starts here.
        client.writer.write(finished + client.record(MSG[:20]))
        await asyncio.sleep(0.6)  # the message takes 0.6 s: 1.4 s after the accept
        client.writer.write(client.record(MSG[20:]))
        assert (await inbox.get())[0] == MSG
        assert server.counters.stalled == 0
    finally:
        await server.close()


async def test_what_waits_for_a_tls_handshake_is_bounded_as_unread_answers_are(
    pki: LoopbackPki,
) -> None:
    """Sent to an accepted connection still handshaking (its peer's address
    is pooled from the accept), at most ``max_unsent`` waits; past it the
    connection is dropped, as for a peer that does not read."""
    server = _tls_server(pki, max_unsent=1000, message_timeout=30)
    addr = await server.listen("127.0.0.1", 0)
    try:
        reader, _writer = await _peer(addr)  # no ClientHello
        await until(lambda: len(server._open) == 1)
        conn = next(iter(server._open))
        conn.send(b"x" * 600)
        assert conn.is_open
        conn.send(b"x" * 600)
        assert await _closed_by_server(reader)
        await until(lambda: server.counters.unread == 1)
    finally:
        await server.close()


def test_the_default_cap_follows_the_file_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import resource

    limits = {1024: 256, 20000: 4096, 40: 16}
    for soft, cap in limits.items():
        monkeypatch.setattr(resource, "getrlimit", lambda _which, soft=soft: (soft, soft))
        assert StreamLimits().connection_cap() == cap
    monkeypatch.setattr(
        resource, "getrlimit", lambda _w: (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
    )
    assert StreamLimits().connection_cap() == 4096
    assert StreamLimits(max_connections=7).connection_cap() == 7


async def test_an_endpoint_keeps_a_connection_while_a_transaction_waits_on_it() -> None:
    """The endpoint tells its stream transports which connections carry
    transactions: a request the far end takes longer than the idle timeout
    to answer still gets its answer (on both sides, the connection carries a
    transaction), and the connection goes once it is idle after that."""
    from phonecast.net.endpoint import ServerHandle, SipEndpoint
    from phonecast.sip import Request
    from phonecast.sip.response import make_response
    from tests.net.test_endpoint import FAST, _notify

    loop = asyncio.get_running_loop()

    def answer_late(request: Request, handle: ServerHandle | None, _flow: object) -> None:
        if handle is not None:
            handle.respond(make_response(request, 100))  # opens its transaction
            final = make_response(request, 200, to_tag="srv")
            loop.call_later(0.6, handle.respond, final)

    quick = StreamLimits(idle_timeout=0.15, message_timeout=5)
    # The server's own idle timeout (0.3 s) is past the answer's wait too,
    # but longer than the client's: the client is the side that lets go.
    server = SipEndpoint(
        handler=answer_late, timers=FAST, stream_limits=StreamLimits(idle_timeout=0.3)
    )
    client = SipEndpoint(timers=FAST, stream_limits=quick)
    _, port = await server.listen_stream("tcp", "127.0.0.1")
    try:
        response, why = await client.request(
            _notify(client, port, "tcp"), "tcp", ("127.0.0.1", port), timeout=3
        )
        assert response is not None and response.status_code == 200, why
        tcp = client._streams["tcp"]
        assert tcp.counters.idle == 0 and server._streams["tcp"].counters.idle == 0
        await until(lambda: not tcp._open)  # let go once idle, by one side or the other
    finally:
        await client.close()
        await server.close()


async def test_a_connection_dropped_for_idleness_goes_though_answers_wait_unread() -> None:
    """A peer that stopped reading with answers still queued for it (fewer
    than max_unsent): dropping it for idleness must not wait for the queue
    to drain (a graceful close would, for ever, with the connection out of
    the count); it is gone, and a new peer fits under the cap."""
    inbox = Inbox()
    server = StreamTransport("tcp", inbox, limits=StreamLimits(max_connections=1, idle_timeout=0.3))
    addr = await server.listen("127.0.0.1", 0)
    sock, conn = await _non_reader(addr, inbox)
    try:
        transport = conn._transport
        assert transport is not None
        for _ in range(2000):  # until some of it waits in our own buffer
            if transport.get_write_buffer_size() > 0:
                break
            conn.send(b"\r\n" * 4096)
            await asyncio.sleep(0)
        assert 0 < transport.get_write_buffer_size() < 1 << 20
        await asyncio.wait_for(conn.closed, 3)  # dropped, not waiting to drain
        assert server.counters.idle == 1 and not server._open
        _, writer = await _peer(addr)  # room for the next peer
        writer.write(MSG)
        assert (await inbox.get())[0] == MSG and server.counters.refused == 0
    finally:
        sock.close()
        await server.close()
