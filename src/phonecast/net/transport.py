"""Datagram and stream transports for SIP, on asyncio.

Why not ``DatagramProtocol``: on the default event loop it costs one callback
per datagram through several layers; measured on this kind of machine it
caps at 13k-15k request/response pairs per second, while ``loop.add_reader``
with a read-until-EAGAIN drain reaches about ten times that.  So the UDP
transport owns a non-blocking socket, registers one reader, and drains it.
(With uvloop installed the same code runs on uvloop's reader.)

Streams (TCP, TLS) use an ``asyncio.Protocol`` per connection feeding the
core's :class:`~phonecast.sip.StreamFramer`; a framing fault closes that
connection, as RFC 3261 18.3 leaves no way to resynchronise.

Everything received is handed up as ``(data, flow)``: the raw message bytes
and the :class:`Flow` it arrived on, which is what a response must go back
over (RFC 3261 18.2.2; for UDP with RFC 3581 rport, the source address).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import resource
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, cast

from phonecast.sip import ParseError, StreamFramer
from phonecast.sip._memo import remember

Address = tuple[str, int]

#: Called for every message received: raw bytes and where they came from.
Receiver = Callable[[bytes, "Flow"], None]

_DRAIN_BATCH: Final = 256
#: A datagram held by send_soon: bytes, destination, what to call if it fails.
_Held = tuple[bytes, Address, Callable[[], None] | None]
#: Most datagrams send_soon holds before sending them.
_HELD_MAX: Final = 32
#: Bound of a UDP transport's table of peers' flows.
_FLOWS_KEPT: Final = 4096


#: The most connections a stream transport holds unless told otherwise, and
#: the share of the process's file limit its default cap may take (one file
#: in this many): what a command's file limit is lifted for (net.loop).
DEFAULT_MAX_CONNECTIONS: Final = 4096
FILES_PER_CONNECTION: Final = 4


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """What one stream transport (TCP or TLS) lets its peers hold.

    A listener is open to whoever can reach it, so each thing a peer can
    make it keep is bounded, as a hardened SIP server bounds it (Kamailio's
    ``tcp_max_connections``, ``tcp_connection_lifetime``,
    ``tcp_msg_read_timeout``, ``tcp_conn_wq_max``):

    ``max_connections``: open connections, accepted and dialled together
    (None: a quarter of the process's file limit, between 16 and 4096).  A
    new one past it closes the one least recently used that carries no
    transaction; if every one does, a peer's new connection is refused,
    and a dial of ours waits (within its timeout) for one to come free.
    ``idle_timeout``: seconds without a byte either way before a connection
    that carries no transaction is closed (what frees a pusher's connections
    to the phones it is done with, and a listener's abandoned ones).
    ``message_timeout``: seconds a message may take to arrive whole once it
    has begun (a peer trickling bytes to keep a connection cannot), and a TLS
    handshake to finish.  (A TLS connection counts against the cap once its
    handshake is done: asyncio hands it over only then, so until then only
    this timeout bounds it.)
    ``max_unsent``: octets queued for a peer that does not read before its
    connection is dropped: SIP cannot wait for a slow reader, and the queue
    would otherwise grow without bound."""

    max_connections: int | None = None
    idle_timeout: float = 120.0
    message_timeout: float = 20.0
    max_unsent: int = 1 << 20

    def connection_cap(self) -> int:
        """``max_connections``, or the default this process's file limit allows."""
        if self.max_connections is not None:
            return self.max_connections
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return DEFAULT_MAX_CONNECTIONS
        return max(16, min(DEFAULT_MAX_CONNECTIONS, soft // FILES_PER_CONNECTION))


#: The limits a stream transport has unless told otherwise.
DEFAULT_STREAM_LIMITS: Final = StreamLimits()


@dataclass(slots=True)
class StreamCounters:
    """Connections a stream transport closed or refused on its own, by why."""

    idle: int = 0
    stalled: int = 0
    unread: int = 0
    evicted: int = 0
    refused: int = 0


@dataclass(frozen=True, slots=True, eq=False)
class Flow:
    """Where a message came from and where its answer goes.

    ``transport`` is ``udp``, ``tcp`` or ``tls``; ``remote`` is the peer's
    address; ``local`` ours; ``connection`` the stream a response must reuse.
    """

    transport: str
    remote: Address
    local: Address
    connection: StreamConnection | None = field(default=None, repr=False)

    @property
    def reliable(self) -> bool:
        """True for streams: no retransmissions needed (RFC 3261 17)."""
        return self.transport != "udp"


def family_of(host: str) -> socket.AddressFamily:
    """AF_INET6 for an IPv6 literal, AF_INET otherwise."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _addr(sockaddr: tuple[object, ...]) -> Address:
    return (str(sockaddr[0]), int(sockaddr[1]))  # type: ignore[call-overload]


class UdpTransport:
    """One UDP socket, drained with ``add_reader``."""

    def __init__(self, sock: socket.socket, receiver: Receiver) -> None:
        self._sock = sock
        self._receiver = receiver
        self._loop = asyncio.get_running_loop()
        self._pending: collections.deque[tuple[bytes, Address]] = collections.deque()
        self._closed = False
        self.local: Address = _addr(sock.getsockname())
        #: Source address -> its Flow (immutable, so one per peer serves every
        #: datagram from it); bounded, since sources come from the network.
        self._flows: dict[object, Flow] = {}
        #: Datagrams held for the end of the drain or of the loop's turn (see
        #: send_soon); None when nothing is held.
        self._held: list[_Held] | None = None
        self._loop.add_reader(sock.fileno(), self._on_readable)

    @classmethod
    async def bind(
        cls, host: str, port: int, receiver: Receiver, *, rcvbuf: int = 4 << 20
    ) -> UdpTransport:
        """Bind ``host:port`` (port 0 picks a free one) and start receiving."""
        sock = socket.socket(family_of(host), socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, rcvbuf)
            sock.bind((host, port))
        except BaseException:
            sock.close()
            raise
        return cls(sock, receiver)

    def _on_readable(self) -> None:
        if self._held is None:
            self._held = []
        try:
            self._drain()
        finally:
            self._send_held()

    def _drain(self) -> None:
        recv = self._sock.recvfrom
        receiver = self._receiver
        flows = self._flows
        for _ in range(_DRAIN_BATCH):
            try:
                data, sockaddr = recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # ICMP errors surface here on some kernels; they concern an
                # earlier send, not this read.  Keep draining.
                continue
            flow = flows.get(sockaddr)
            if flow is None:
                flow = Flow("udp", (sockaddr[0], sockaddr[1]), self.local)
                remember(flows, sockaddr, flow, _FLOWS_KEPT)
            receiver(data, flow)

    def send_soon(
        self, data: bytes, remote: Address, failed: Callable[[], None] | None = None
    ) -> None:
        """Send a datagram at the end of this turn of the loop: datagrams made
        while a drain runs leave together when it ends, others when the loop
        next runs its callbacks, and at most ``_HELD_MAX`` wait.  If the send
        fails, ``failed`` (if given) is called soon after, from the loop, so
        that no caller is re-entered in the middle of its work.

        Why: on loopback each datagram that finds its receiver asleep pays
        for waking it, and a peer that handles one datagram faster than we
        make the next is asleep for every one.  Sent in a row, the datagrams
        of a burst mostly find it awake (measured: bench/README.md)."""
        if self._closed:
            return
        held = self._held
        if held is None:
            held = self._held = []
            self._loop.call_soon(self._send_held)
        held.append((data, remote, failed))
        if len(held) >= _HELD_MAX:
            self._send_held()

    def flush(self) -> None:
        """Send what :meth:`send_soon` holds, now."""
        self._send_held()

    def _send_held(self) -> None:
        held, self._held = self._held, None
        if not held:
            return
        for data, remote, failed in held:
            try:
                self.sendto(data, remote)
            except OSError:
                if failed is not None:
                    self._loop.call_soon(failed)

    def sendto(self, data: bytes, remote: Address) -> None:
        """Send a datagram now, or queue it if the socket buffer is full."""
        if self._closed:
            return
        if self._pending:
            self._pending.append((data, remote))
            return
        try:
            self._sock.sendto(data, remote)
        except (BlockingIOError, InterruptedError):
            self._pending.append((data, remote))
            self._loop.add_writer(self._sock.fileno(), self._on_writable)
        except OSError as exc:
            if exc.errno not in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
                raise

    def _on_writable(self) -> None:
        while self._pending:
            data, remote = self._pending[0]
            try:
                self._sock.sendto(data, remote)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                pass
            self._pending.popleft()
        self._loop.remove_writer(self._sock.fileno())

    def close(self) -> None:
        """Stop receiving and close the socket."""
        if self._closed:
            return
        self._send_held()  # what was sent before close() leaves
        self._closed = True
        self._loop.remove_reader(self._sock.fileno())
        if self._pending:
            self._loop.remove_writer(self._sock.fileno())
        self._sock.close()


def _expire(turn: asyncio.Future[StreamConnection | None]) -> None:
    """A dial's wait for a place has run out of time."""
    if not turn.done():
        turn.set_exception(TimeoutError())


def _retrieved(dial: asyncio.Future[StreamConnection]) -> None:
    """Mark a shared dial's failure as seen: when no second caller waited
    for it, asyncio would otherwise log it as never retrieved (the first
    caller has it raised already)."""
    if not dial.cancelled():
        dial.exception()


class _Ticket:
    """A dial of ours let through the cap (StreamTransport._wait_for_room):
    the place it holds until its connection takes one (``placed``), and the
    idle connection it may close to make that place (``victim``)."""

    __slots__ = ("placed", "victim")

    def __init__(self, victim: StreamConnection | None) -> None:
        self.placed = False
        self.victim = victim


class StreamConnection(asyncio.Protocol):
    """One TCP or TLS connection carrying SIP messages both ways."""

    def __init__(
        self,
        transport_name: str,
        receiver: Receiver,
        on_open: Callable[[StreamConnection], None],
        on_close: Callable[[StreamConnection], None],
        *,
        max_message: int = 65535,
        bound: Address | None = None,
        on_activity: Callable[[StreamConnection, bool], None] | None = None,
        max_unsent: int = 1 << 20,
    ) -> None:
        """``bound``: for an accepted connection, the address its listener is
        bound to, which its flow names as local (see :meth:`connection_made`).
        ``on_activity`` hears of every read and write, and whether a whole
        message arrived (the transport's idle and stalled-message
        bookkeeping); ``max_unsent``: see StreamLimits."""
        self.transport_name = transport_name
        self._bound = bound
        self._receiver = receiver
        self._on_open = on_open
        self._on_close = on_close
        self._on_activity = on_activity
        self._max_unsent = max_unsent
        self._framer = StreamFramer(max_size=max_message)
        self._transport: asyncio.Transport | None = None
        self.flow: Flow | None = None
        #: The address it was dialled as, when that is not its peer's own
        #: (a name, an IPv4-mapped spelling): pooled under it too.
        self.dialled_as: Address | None = None
        #: The loop's time of the last read or write.
        self.last_active = 0.0
        #: Set when the transport dropped it for a peer that does not read.
        self.unread = False
        #: While a dial of ours makes it: the dial's record of whether the
        #: connection has taken its place under the cap (StreamTransport._dial).
        self.ticket: _Ticket | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports (the commands
        # run on uvloop) are not subclasses of asyncio.Transport.
        self._transport = cast(asyncio.Transport, transport)
        # Past the high-water mark pause_writing drops the connection.
        self._transport.set_write_buffer_limits(high=self._max_unsent)
        peer = transport.get_extra_info("peername")
        # An accepted connection's local address is its listener's bound one,
        # as a datagram's is its socket's: on a wildcard listener (0.0.0.0,
        # ::) the socket's own name would be the address the peer dialled,
        # which no table keyed by bound addresses knows.
        local = self._bound or _addr(transport.get_extra_info("sockname"))
        self.flow = Flow(self.transport_name, _addr(peer), local, self)
        self._on_open(self)

    def data_received(self, data: bytes) -> None:
        framer = self._framer
        framer.feed(data)
        assert self.flow is not None
        whole = False
        try:
            while (raw := framer.next_raw()) is not None:
                whole = True
                self._receiver(raw, self.flow)
        except ParseError:
            self.close()
            return
        pings = framer.take_pings()
        transport = self._transport
        if pings and transport is not None and not transport.is_closing():
            # RFC 5626 4.4.1: a pong per ping (the activity is told once, below).
            transport.write(b"\r\n" * pings)
        if self._on_activity is not None:
            self._on_activity(self, whole)

    @property
    def partial(self) -> bool:
        """True while part of a message is waiting for the rest."""
        return self._framer.buffered > 0

    def pause_writing(self) -> None:
        """More than ``max_unsent`` octets wait for a peer that does not
        read: drop the connection (and what waits), as a SIP server must
        rather than hold it (see StreamLimits)."""
        self.unread = True
        if self._transport is not None:
            self._transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_close(self)
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, data: bytes) -> None:
        """Write a whole message."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)
            if self._on_activity is not None:
                self._on_activity(self, False)

    @property
    def is_open(self) -> bool:
        """True until the connection closes."""
        return self._transport is not None and not self._transport.is_closing()

    def close(self) -> None:
        """Close the connection, once what is queued for the peer is sent."""
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Close the connection now, dropping what is queued: a graceful
        close waits, without end, for a peer that does not read."""
        if self._transport is not None:
            self._transport.abort()


class StreamTransport:
    """TCP or TLS: a listener (optional) and a pool of connections by peer."""

    def __init__(
        self,
        name: str,
        receiver: Receiver,
        *,
        client_ssl: ssl.SSLContext | None = None,
        server_ssl: ssl.SSLContext | None = None,
        on_lost: Callable[[StreamConnection], None] | None = None,
        limits: StreamLimits = DEFAULT_STREAM_LIMITS,
        in_use: Callable[[StreamConnection], bool] | None = None,
    ) -> None:
        """``on_lost`` hears of each connection that closes, whichever end
        closed it (what was under way on it can no longer be answered).
        ``in_use`` says whether a connection carries a transaction: such a
        one is never closed for idleness or to make room (``limits``)."""
        if name not in ("tcp", "tls"):
            raise ValueError(f"unknown stream transport {name!r}")
        self.name = name
        self._receiver = receiver
        self._client_ssl = client_ssl
        self._server_ssl = server_ssl
        self._on_lost = on_lost
        self._limits = limits
        self._cap = limits.connection_cap()
        self._in_use = in_use
        self._loop = asyncio.get_running_loop()
        #: Open connections not yet closing, least recently active first:
        #: what the cap counts, idleness is read from and room is made in.
        self._recent: collections.OrderedDict[StreamConnection, None] = collections.OrderedDict()
        #: Connections holding part of a message, by when it began (oldest
        #: first, as they are added when a message begins).
        self._partial: dict[StreamConnection, float] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        #: Peers whose connections stay open though idle (see keep_open), and
        #: how many asked.
        self._kept: dict[Address, int] = {}
        #: Connections closed or refused by the limits, by why.
        self.counters = StreamCounters()
        self._pool: dict[Address, StreamConnection] = {}
        #: Every open connection, pooled or not (an accepted one whose peer
        #: has a newer one, say): what close() closes.
        self._open: set[StreamConnection] = set()
        #: Dials under way, by the address dialled: a second caller waits
        #: for the first one's connection instead of opening its own.
        self._dialing: dict[Address, asyncio.Future[StreamConnection]] = {}
        #: Dials let past the cap and not yet over (each will take a place),
        #: and the dials waiting for a place, first come first served.
        self._admitted = 0
        self._room_waiters: collections.deque[asyncio.Future[StreamConnection | None]] = (
            collections.deque()
        )
        #: Connections said to carry nothing any more (freed), not yet looked
        #: at by a waiting dial; those a dial let through will close.
        self._hints: dict[StreamConnection, None] = {}
        self._claimed: set[StreamConnection] = set()
        self._admitting = False
        self._closed = False
        self._servers: list[asyncio.AbstractServer] = []
        #: The first listening address (what a Via names).
        self.local: Address | None = None

    def _remember(self, conn: StreamConnection) -> None:
        self._open.add(conn)
        ticket = conn.ticket
        if ticket is not None:  # a dial of ours, let through by _wait_for_room
            ticket.placed = True
            self._admitted -= 1
            victim = ticket.victim
            if victim is not None:
                self._claimed.discard(victim)
            if self._closed:
                conn.abort()
                return
            if len(self._recent) >= self._cap:
                if victim is not None and victim in self._recent and not self._busy(victim):
                    self._evict(victim)
                else:
                    # Its victim was taken up again meanwhile: close another
                    # idle one, or pass the cap by this one connection rather
                    # than fail a dial that was let through.
                    self._make_room()
        elif self._closed or not self._make_room():
            # A peer's connection past the cap (places promised to our dials
            # counted) is refused.
            if not self._closed:
                self.counters.refused += 1
            conn.abort()  # its connection_lost will _forget it
            return
        conn.last_active = self._loop.time()
        self._recent[conn] = None
        if self._sweeper is None:
            self._sweeper = self._loop.call_later(self._sweep_interval(), self._sweep)
        if conn.flow is not None:
            self._pool[conn.flow.remote] = conn

    def _make_room(self) -> bool:
        """Below the cap (counting the places promised to dials under way),
        or brought below it by closing the least recently active connection
        that carries no transaction and no dial has claimed; False if none can go."""
        if len(self._recent) + self._admitted < self._cap:
            return True
        victim = self._idle_one()
        if victim is None:
            return False
        self._evict(victim)
        return True

    def _evict(self, conn: StreamConnection) -> None:
        """Close an idle connection to make a place for a new one."""
        self.counters.evicted += 1
        self._drop(conn)

    def _idle_one(self) -> StreamConnection | None:
        """The least recently active connection that could be closed."""
        claimed = self._claimed
        for conn in self._recent:
            if conn not in claimed and not self._busy(conn):
                return conn
        return None

    async def _wait_for_room(self, timeout: float, wait: bool) -> StreamConnection | None:
        """Hold a place under the cap for a dial (``_admitted``), waiting at
        most ``timeout`` seconds for one if ``wait``; returns the idle
        connection the dial is to close for it, if it needs one.

        A caller of ours (a campaign pushing to more phones at once than
        the cap) waits for a transaction to end rather than fail; a peer's
        connection past the cap is refused at once (see _remember), and so
        is a dial a peer caused (``wait`` False: net.redial).  Waiting dials
        are let through in turn by :meth:`_admit`, which reserves each one's
        place before it runs again, so nothing can take it meanwhile."""
        if not self._room_waiters:
            if len(self._recent) + self._admitted < self._cap:
                return self._reserve(None)
            victim = self._idle_one()
            if victim is not None:
                return self._reserve(victim)
        if not wait:
            self.counters.refused += 1
            raise self._no_room()
        loop = self._loop
        turn: asyncio.Future[StreamConnection | None] = loop.create_future()
        self._room_waiters.append(turn)
        expiry = loop.call_later(timeout, _expire, turn)
        try:
            # Awaited as it is, not through wait_for: on Python 3.11 a
            # cancellation arriving as the turn is granted could be lost.
            return await turn
        except BaseException as exc:
            if turn.done() and not turn.cancelled() and turn.exception() is None:
                self._give_back(turn.result())  # granted, but leaving
            with contextlib.suppress(ValueError):
                self._room_waiters.remove(turn)
            if isinstance(exc, TimeoutError):
                self.counters.refused += 1
                raise self._no_room() from None
            raise
        finally:
            expiry.cancel()

    def _reserve(self, victim: StreamConnection | None) -> StreamConnection | None:
        """Hold a place for a dial, and ``victim`` (if any) as the idle
        connection it is to close for it; returns ``victim``."""
        self._admitted += 1
        if victim is not None:
            self._claimed.add(victim)
        return victim

    def _give_back(self, victim: StreamConnection | None) -> None:
        """A place held for a dial that will not take it."""
        self._admitted -= 1
        if victim is not None:
            self._claimed.discard(victim)
            self._hints[victim] = None
        self._admit_soon()

    def _admit_soon(self) -> None:
        """Something came free: let waiting dials through once this turn of
        the loop is over (once, however many things came free in it)."""
        if self._room_waiters and not self._admitting and not self._closed:
            self._admitting = True
            self._loop.call_soon(self._admit)

    def _admit(self) -> None:
        """Let the waiting dials through, first come first, while there is a
        free place or an idle connection said to be freed to close for one."""
        self._admitting = False
        waiters = self._room_waiters
        while waiters:
            turn = waiters[0]
            if turn.done():  # timed out or cancelled
                waiters.popleft()
                continue
            victim: StreamConnection | None = None
            if len(self._recent) + self._admitted >= self._cap:
                victim = self._take_hint()
                if victim is None:
                    return  # nothing free: the next thing freed calls again
            waiters.popleft()
            turn.set_result(self._reserve(victim))

    def _take_hint(self) -> StreamConnection | None:
        hints = self._hints
        while hints:
            conn = next(iter(hints))
            del hints[conn]
            if conn in self._recent and conn not in self._claimed and not self._busy(conn):
                return conn
        return None

    def freed(self, conn: StreamConnection) -> None:
        """``conn`` carries no transaction any more (the endpoint says so):
        a dial waiting for a place may now close it and take its place."""
        if self._room_waiters and conn in self._recent:
            self._hints[conn] = None
            self._admit_soon()

    def _no_room(self) -> ConnectionRefusedError:
        return ConnectionRefusedError(
            errno.EMFILE,
            f"no room for another {self.name} connection: {self._cap} are open,"
            " each carrying a transaction",
        )

    def keep_open(self, remote: Address) -> None:
        """Keep the connection to ``remote`` open however long it is idle,
        until as many :meth:`release` calls: a line registered over it is
        reached back over it (a registrar's NOTIFY), so it must outlive
        the gaps between refreshes."""
        self._kept[remote] = self._kept.get(remote, 0) + 1

    def release(self, remote: Address) -> None:
        """Undo one :meth:`keep_open`."""
        left = self._kept.get(remote, 0) - 1
        if left > 0:
            self._kept[remote] = left
        else:
            self._kept.pop(remote, None)

    def _busy(self, conn: StreamConnection) -> bool:
        if conn.ticket is not None:  # being dialled: not yet its caller's
            return True
        if self._in_use is not None and self._in_use(conn):
            return True
        kept = self._kept
        if not kept:
            return False
        flow = conn.flow
        return (flow is not None and flow.remote in kept) or conn.dialled_as in kept

    def _drop(self, conn: StreamConnection) -> None:
        """Close ``conn`` on the limits' account: out of the count at once
        (its connection_lost, which forgets the rest, comes a turn later)."""
        self._recent.pop(conn, None)
        self._partial.pop(conn, None)
        conn.abort()  # close() would wait on a peer that stopped reading

    def _activity(self, conn: StreamConnection, whole: bool) -> None:
        """A read or write on ``conn``; ``whole``: a message arrived whole,
        so what it holds now (if anything) is a message that began now."""
        if conn not in self._recent:
            return  # closing already
        now = self._loop.time()
        conn.last_active = now
        self._recent.move_to_end(conn)
        partial = self._partial
        if conn.partial:
            if whole:
                partial.pop(conn, None)
            if conn not in partial:
                partial[conn] = now
        elif partial:
            partial.pop(conn, None)

    def _sweep_interval(self) -> float:
        limits = self._limits
        return min(5.0, max(0.05, min(limits.idle_timeout, limits.message_timeout) / 4))

    def _sweep(self) -> None:
        """Close what overstayed (see StreamLimits); rearm while any is open.

        Both tables are in age order, so a sweep looks at what it closes and
        at the connections carrying transactions, not at the rest."""
        self._sweeper = None
        now = self._loop.time()
        limits = self._limits
        stalled_before = now - limits.message_timeout
        while self._partial:
            conn, since = next(iter(self._partial.items()))
            if since > stalled_before:
                break
            self.counters.stalled += 1
            self._drop(conn)
            self._admit_soon()  # a place is free
        idle_before = now - limits.idle_timeout
        idle = []
        for conn in self._recent:
            if conn.last_active > idle_before:
                break
            if not self._busy(conn):
                idle.append(conn)
        for conn in idle:
            self.counters.idle += 1
            self._drop(conn)
            self._admit_soon()
        if self._recent and not self._closed:
            self._sweeper = self._loop.call_later(self._sweep_interval(), self._sweep)

    def _forget(self, conn: StreamConnection) -> None:
        self._hints.pop(conn, None)
        if conn in self._recent:
            del self._recent[conn]
            self._admit_soon()  # a place is free
        self._partial.pop(conn, None)
        if conn.unread:
            self.counters.unread += 1
        self._open.discard(conn)
        if conn.flow is not None and self._pool.get(conn.flow.remote) is conn:
            del self._pool[conn.flow.remote]
        dialled = conn.dialled_as
        if dialled is not None and self._pool.get(dialled) is conn:
            del self._pool[dialled]
        if self._on_lost is not None:
            self._on_lost(conn)

    def _factory(self, bound: Address | None = None) -> StreamConnection:
        return StreamConnection(
            self.name,
            self._receiver,
            self._remember,
            self._forget,
            bound=bound,
            on_activity=self._activity,
            max_unsent=self._limits.max_unsent,
        )

    async def listen(self, host: str, port: int) -> Address:
        """Accept connections on ``host:port`` (call again for more listeners)."""
        loop = asyncio.get_running_loop()
        ssl_ctx = self._server_ssl if self.name == "tls" else None
        if self.name == "tls" and ssl_ctx is None:
            raise ValueError("a TLS listener needs a server SSL context")
        bound: list[Address] = []  # known once listening; nothing is accepted before

        def accepted() -> StreamConnection:
            return self._factory(bound[0] if bound else None)

        server = await loop.create_server(
            accepted,
            host,
            port,
            ssl=ssl_ctx,
            ssl_handshake_timeout=self._limits.message_timeout if ssl_ctx else None,
        )
        self._servers.append(server)
        # Read as Any: uvloop's Server.sockets is a list where typeshed says
        # tuple, and compiled code checks the declared type.
        listening: Any = cast(Any, server).sockets
        local = _addr(listening[0].getsockname())
        bound.append(local)
        if self.local is None:
            self.local = local
        return local

    async def connect(
        self,
        remote: Address,
        *,
        server_hostname: str | None = None,
        timeout: float = 5.0,
        wait: bool = True,
    ) -> StreamConnection:
        """An open connection to ``remote``, reused from the pool if possible.

        Callers that ask at once share one dial: the lines of a fleet
        registering together over TCP get one connection to their
        registrar, not one each (of which the pool would keep the last).
        A waiter keeps its own ``timeout``; the dial's failure is its too,
        but not the first caller's cancellation (it then looks again).
        Past the cap, with every connection in use, a dial waits for one to
        come free (within ``timeout``), or with ``wait`` False is refused.
        Raises ``ConnectionAbortedError`` once the transport is closed."""
        while True:
            if self._closed:
                raise ConnectionAbortedError(f"the {self.name} transport is closed")
            pooled = self._pool.get(remote)
            if pooled is not None and pooled.is_open:
                return pooled
            dialing = self._dialing.get(remote)
            if dialing is None:
                break
            try:
                # Shielded: a waiter's own cancellation leaves the dial alone.
                shared = await asyncio.wait_for(asyncio.shield(dialing), timeout)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if dialing.cancelled() and (task is None or task.cancelling() == 0):
                    continue  # the dialler was cancelled, not us: look again
                raise
            if shared.is_open:
                return shared
        return await self._dial(remote, server_hostname, timeout, wait)

    async def _dial(
        self, remote: Address, server_hostname: str | None, timeout: float, wait: bool
    ) -> StreamConnection:
        """Open a connection to ``remote``, as the dial others wait on."""
        loop = asyncio.get_running_loop()
        dial: asyncio.Future[StreamConnection] = loop.create_future()
        dial.add_done_callback(_retrieved)
        self._dialing[remote] = dial
        ssl_ctx = self._client_ssl if self.name == "tls" else None
        if self.name == "tls" and ssl_ctx is None:
            ssl_ctx = ssl.create_default_context()
        # Until its connection takes its place (_remember), the dial holds
        # one of the places the cap counts (_admitted).
        # A list, not a variable rebound in the try: compiled code once read
        # such a variable in the finally as its narrowed type.
        held: list[_Ticket] = []

        def dialled() -> StreamConnection:
            conn = self._factory()
            conn.ticket = held[0]
            return conn

        try:
            started = loop.time()
            held.append(_Ticket(await self._wait_for_room(timeout, wait)))
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    dialled,
                    remote[0],
                    remote[1],
                    ssl=ssl_ctx,
                    server_hostname=(server_hostname or remote[0]) if ssl_ctx else None,
                ),
                max(0.0, timeout - (loop.time() - started)),
            )
            # Handed over: nothing runs before the caller's transaction makes
            # it busy (this coroutine goes on to the caller's without a pause).
            conn.ticket = None
            if self._closed:  # closed while dialling: nothing may outlive close()
                conn.abort()
                raise ConnectionAbortedError(f"the {self.name} transport is closed")
            if conn not in self._recent:  # cannot be: a dial of ours is never refused
                raise self._no_room()
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                dial.cancel()
            else:
                dial.set_exception(exc)
            raise
        finally:
            if self._dialing.get(remote) is dial:
                del self._dialing[remote]
            if held and not held[0].placed:  # no connection took its place
                self._give_back(held[0].victim)
        dial.set_result(conn)
        if conn.flow is None or conn.flow.remote != remote:
            conn.dialled_as = remote
        self._pool[remote] = conn  # under the name we dialled, too
        return conn

    async def close(self) -> None:
        """Close the listener and every connection (a dial still under way
        closes its connection when it completes)."""
        self._closed = True
        while self._room_waiters:
            turn = self._room_waiters.popleft()
            if not turn.done():
                turn.set_exception(ConnectionAbortedError(f"the {self.name} transport is closed"))
        self._hints.clear()
        self._claimed.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._recent.clear()
        self._partial.clear()
        for server in self._servers:
            server.close()
        for conn in [*self._pool.values(), *self._open]:
            conn.abort()  # nothing outlives close(), a peer not reading included
        self._pool.clear()
        self._open.clear()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
