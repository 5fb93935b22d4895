"""TCP and TLS for SIP: a listener (optional) and a pool of connections by
peer, bounded as a hardened SIP server bounds what its peers can make it hold
(see :class:`~phonecast.net.limits.StreamLimits`).

A connection is pooled under its peer's address (and under the name it was
dialled as), so a request to a peer reuses one connection, and so does the
response to a request that came over it (RFC 3261 18.2.2).  Past the cap an
idle connection is closed to make room; when none is idle, a peer's new
connection displaces the least recently active one a peer opened (busy or
not: see :meth:`StreamTransport._make_room`), and a dial of ours waits for a place
(:mod:`phonecast.net.stream_room`).
"""

from __future__ import annotations

import asyncio
import collections
import errno
import ssl
from collections.abc import Callable
from typing import Any, cast

from phonecast.net.limits import DEFAULT_STREAM_LIMITS, StreamCounters, StreamLimits
from phonecast.net.stream_room import Room
from phonecast.net.transport import (
    Address,
    DialTicket,
    Receiver,
    StreamConnection,
    sockaddr_address,
)


def _retrieved(dial: asyncio.Future[StreamConnection]) -> None:
    """Mark a shared dial's failure as seen: when no second caller waited
    for it, asyncio would otherwise log it as never retrieved (the first
    caller has it raised already)."""
    if not dial.cancelled():
        dial.exception()


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
        carries_ours: Callable[[StreamConnection], bool] | None = None,
    ) -> None:
        """``on_lost`` hears of each connection that closes, whichever end
        closed it (what was under way on it can no longer be answered).
        ``in_use`` says whether a connection carries a transaction: such a
        one is never closed for idleness, nor to make room for a dial; only
        a peer's new connection displaces one a peer opened (``limits``),
        and never one that ``carries_ours`` (a request of ours riding it)."""
        if name not in ("tcp", "tls"):
            raise ValueError(f"unknown stream transport {name!r}")
        self.name = name
        self._receiver = receiver
        self._client_ssl = client_ssl
        self._server_ssl = server_ssl
        self._on_lost = on_lost
        self._limits = limits
        self._in_use = in_use
        self._carries_ours = carries_ours
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
        #: The places our dials hold under the cap, and the dials waiting.
        self._room = Room(name, limits.connection_cap(), self._recent, self._busy, self.counters)
        self._closed = False
        self._servers: list[asyncio.AbstractServer] = []
        #: The first listening address (what a Via names).
        self.local: Address | None = None

    def _remember(self, conn: StreamConnection) -> None:
        self._open.add(conn)
        ticket = conn.ticket
        if ticket is not None:  # a dial of ours, let through by its Room
            ticket.placed = True
            victim = ticket.victim
            self._room.took(victim)
            if self._closed:
                conn.abort()
                return
            if len(self._recent) >= self._room.cap:
                if victim is not None and victim in self._recent and not self._busy(victim):
                    self._evict(victim)
                else:
                    # Its victim was taken up again meanwhile: close another
                    # idle one, or pass the cap by this one connection rather
                    # than fail a dial that was let through.
                    self._make_room()
        elif self._closed or not self._make_room(for_peer=True):
            # A peer's connection past the cap (places promised to our dials
            # counted) is refused.
            if not self._closed:
                self.counters.refused += 1
            conn.abort()  # its connection_lost will _forget it
            return
        conn.last_active = self._loop.time()
        self._recent[conn] = None
        if conn.partial:  # an accepted TLS connection: its handshake is timed as a message is
            self._partial[conn] = conn.last_active
        if self._sweeper is None:
            self._sweeper = self._loop.call_later(self._sweep_interval(), self._sweep)
        if conn.flow is not None:
            self._pool[conn.flow.remote] = conn

    def _make_room(self, *, for_peer: bool = False) -> bool:
        """Below the cap (counting the places promised to dials under way),
        or brought below it by closing the least recently active connection
        that carries no transaction and no dial has claimed; False if none can go.

        For a peer's new connection, with every place in use, the least
        recently active connection a peer opened goes even though it carries
        a transaction: otherwise a peer holding the cap's worth of
        connections, each with a transaction it keeps alive (an INVITE never
        ACKed, sent again every 20 s), shut every other peer out for as long
        as it liked.  Those transactions answer over a new connection to the
        address their Via names, as when a caller closes its own (RFC 3261
        18.2.2), once a place is free, or end as on a transport error.  Our
        dials (a registration, a push), and connections a request of ours
        rides, are never displaced (:meth:`_displaceable` says which goes)."""
        room = self._room
        if room.free():
            return True
        victim = room.idle_one()
        if victim is None and for_peer:
            victim = self._displaceable()
            if victim is not None:
                self.counters.displaced += 1
                self._drop(victim)
                return True
        if victim is None:
            return False
        self._evict(victim)
        return True

    def _displaceable(self) -> StreamConnection | None:
        """A connection a peer opened that no dial claimed, no registration
        keeps and no request of ours rides (see :meth:`_make_room`): the
        least recently active one of the address holding the most of them.

        By address first: a peer that holds the places can keep each of its
        connections more recently active than a newcomer's (a CRLF ping is
        activity), so by activity alone the newcomer that just got in, its
        INVITE ringing in silence, would be the next to go.  One address
        holding the most places is the one making the others wait."""
        carries_ours = self._carries_ours
        oldest: dict[str, StreamConnection] = {}
        held: dict[str, int] = {}
        for conn in self._recent:  # least recently active first
            flow = conn.flow
            if not conn.inbound or conn.ticket is not None or flow is None:
                continue
            if self._room.claimed(conn) or (carries_ours is not None and carries_ours(conn)):
                continue
            if self._kept_open(conn):
                continue
            host = flow.remote[0]
            oldest.setdefault(host, conn)
            held[host] = held.get(host, 0) + 1
        if not held:
            return None
        most = max(held.values())
        # Among addresses holding as many, the one whose oldest is oldest
        # (dicts keep the order of first sight: least recently active first).
        host = next(h for h, n in held.items() if n == most)
        return oldest[host]

    def _evict(self, conn: StreamConnection) -> None:
        """Close an idle connection to make a place for a new one."""
        self.counters.evicted += 1
        self._drop(conn)

    def freed(self, conn: StreamConnection) -> None:
        """``conn`` carries no transaction any more (the endpoint says so):
        a dial waiting for a place may now close it and take its place."""
        self._room.freed(conn)

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
        return self._kept_open(conn)

    def _kept_open(self, conn: StreamConnection) -> bool:
        """Whether a registration keeps ``conn``'s peer open (keep_open)."""
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
            self._room.came_free()  # a place is free
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
            self._room.came_free()
        if self._recent and not self._closed:
            self._sweeper = self._loop.call_later(self._sweep_interval(), self._sweep)

    def _forget(self, conn: StreamConnection) -> None:
        self._room.forget(conn)
        if conn in self._recent:
            del self._recent[conn]
            self._room.came_free()  # a place is free
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

    def _factory(
        self, bound: Address | None = None, tls: ssl.SSLContext | None = None
    ) -> StreamConnection:
        return StreamConnection(
            self.name,
            self._receiver,
            self._remember,
            self._forget,
            bound=bound,
            on_activity=self._activity,
            max_unsent=self._limits.max_unsent,
            tls=tls,
        )

    async def listen(self, host: str, port: int) -> Address:
        """Accept connections on ``host:port`` (call again for more listeners).

        A TLS listener sets ``OP_NO_RENEGOTIATION`` on the server context it
        was given (a server context, never one we dial with)."""
        loop = asyncio.get_running_loop()
        ssl_ctx = self._server_ssl if self.name == "tls" else None
        if self.name == "tls" and ssl_ctx is None:
            raise ValueError("a TLS listener needs a server SSL context")
        if ssl_ctx is not None:
            # A peer may not renegotiate (OpenSSL 3 refuses it already): a
            # connection's record pump then never has to read to write.
            ssl_ctx.options |= ssl.OP_NO_RENEGOTIATION
        bound: list[Address] = []  # known once listening; nothing is accepted before

        def accepted() -> StreamConnection:
            # Plain TCP, TLS run by the connection (net.tls_session): so the
            # cap counts it from the accept, not only once its handshake is done.
            conn = self._factory(bound[0] if bound else None, ssl_ctx)
            conn.inbound = True
            return conn

        server = await loop.create_server(accepted, host, port)
        self._servers.append(server)
        # Read as Any: uvloop's Server.sockets is a list where typeshed says
        # tuple, and compiled code checks the declared type.
        listening: Any = cast(Any, server).sockets
        if not listening:
            # uvloop hands back a server without sockets when it could open
            # none (out of file descriptors), where asyncio raises.
            server.close()
            raise OSError(errno.EMFILE, f"no {self.name} socket could be opened on {host}:{port}")
        local = sockaddr_address(listening[0].getsockname())
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
        # one of the places the cap counts (Room.admitted).
        # A list, not a variable rebound in the try: compiled code once read
        # such a variable in the finally as its narrowed type.
        held: list[DialTicket] = []

        def dialled() -> StreamConnection:
            conn = self._factory()
            conn.ticket = held[0]
            return conn

        try:
            started = loop.time()
            held.append(DialTicket(await self._room.wait(timeout, wait)))
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
                raise self._room.no_room()
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
                self._room.give_back(held[0].victim)
        dial.set_result(conn)
        if conn.flow is None or conn.flow.remote != remote:
            conn.dialled_as = remote
        self._pool[remote] = conn  # under the name we dialled, too
        return conn

    async def close(self) -> None:
        """Close the listener and every connection (a dial still under way
        closes its connection when it completes)."""
        self._closed = True
        self._room.close()
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
