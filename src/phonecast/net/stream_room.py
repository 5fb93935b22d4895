"""The places under a stream transport's connection cap that our own dials
hold, and the dials waiting for one.

A peer's connection past the cap is refused at once, but a dial of ours (a
campaign pushing to more phones at once than the cap lets it connect to)
waits for a transaction to end rather than fail.  That waiting is where the
races are (a place freed while the waiting dials are let through, a new dial
taking a place granted to a waiting one, a cancellation arriving as a place
is granted), so it lives here, apart from the connection table it counts:
:class:`Room` is told which connections are open (``table``), which of them
carry a transaction (``busy``) and what the cap is, and keeps the rest.

A place is *reserved* for a dial before it connects, and *taken* when its
connection is remembered by the transport (``took``); a dial that fails or is
cancelled *gives it back*.  A dial that needs an idle connection closed to
make its place *claims* that connection, so that no other dial picks it too.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
from collections.abc import Callable

from phonecast.net.limits import StreamCounters
from phonecast.net.transport import StreamConnection


def _expire(turn: asyncio.Future[StreamConnection | None]) -> None:
    """A dial's wait for a place has run out of time."""
    if not turn.done():
        turn.set_exception(TimeoutError())


class Room:
    """The cap's places held by dials of ours, and the dials waiting for one."""

    def __init__(
        self,
        name: str,
        cap: int,
        table: collections.OrderedDict[StreamConnection, None],
        busy: Callable[[StreamConnection], bool],
        counters: StreamCounters,
    ) -> None:
        """``table``: the transport's open connections, least recently active
        first (what the cap counts); ``busy``: whether one may not be closed
        to make room; ``counters``: where a refused dial is counted."""
        self.name = name
        self.cap = cap
        self._table = table
        self._busy = busy
        self._counters = counters
        self._loop = asyncio.get_running_loop()
        #: Dials let past the cap and not yet over (each will take a place).
        self.admitted = 0
        #: Dials waiting for a place, first come first served.
        self._waiters: collections.deque[asyncio.Future[StreamConnection | None]] = (
            collections.deque()
        )
        #: Connections said to carry nothing any more (freed), not yet looked
        #: at by a waiting dial.
        self._hints: dict[StreamConnection, None] = {}
        #: Idle connections that dials let through will close for their place.
        self._claimed: set[StreamConnection] = set()
        self._admitting = False
        self._closed = False

    @property
    def waiting(self) -> int:
        """How many dials wait for a place (some may have given up already)."""
        return len(self._waiters)

    def free(self) -> bool:
        """True while a place is free (the places held by dials counted)."""
        return len(self._table) + self.admitted < self.cap

    def idle_one(self) -> StreamConnection | None:
        """The least recently active connection that could be closed for a
        new one: carrying no transaction, claimed by no dial."""
        claimed = self._claimed
        for conn in self._table:
            if conn not in claimed and not self._busy(conn):
                return conn
        return None

    def claimed(self, conn: StreamConnection) -> bool:
        """Whether a dial let through is to close ``conn`` for its place."""
        return conn in self._claimed

    async def wait(self, timeout: float, wait: bool) -> StreamConnection | None:
        """Reserve a place for a dial, waiting at most ``timeout`` seconds for
        one if ``wait``; returns the idle connection the dial is to close for
        it, if it needs one.  Raises ``ConnectionRefusedError`` when there is
        none (``wait`` False: a dial a peer caused, net.redial) or it is not
        found in time.

        Waiting dials are let through in turn by :meth:`_admit`, which
        reserves each one's place before it runs again, so nothing can take
        it meanwhile."""
        if not self._waiters:
            if self.free():
                return self._reserve(None)
            victim = self.idle_one()
            if victim is not None:
                return self._reserve(victim)
        if not wait:
            self._counters.refused += 1
            raise self.no_room()
        loop = self._loop
        turn: asyncio.Future[StreamConnection | None] = loop.create_future()
        self._waiters.append(turn)
        expiry = loop.call_later(timeout, _expire, turn)
        try:
            # Awaited as it is, not through wait_for: on Python 3.11 a
            # cancellation arriving as the turn is granted could be lost.
            return await turn
        except BaseException as exc:
            if turn.done() and not turn.cancelled() and turn.exception() is None:
                self.give_back(turn.result())  # granted, but leaving
            with contextlib.suppress(ValueError):
                self._waiters.remove(turn)
            if isinstance(exc, TimeoutError):
                self._counters.refused += 1
                raise self.no_room() from None
            raise
        finally:
            expiry.cancel()

    def _reserve(self, victim: StreamConnection | None) -> StreamConnection | None:
        """Hold a place for a dial, and ``victim`` (if any) as the idle
        connection it is to close for it; returns ``victim``."""
        self.admitted += 1
        if victim is not None:
            self._claimed.add(victim)
        return victim

    def took(self, victim: StreamConnection | None) -> None:
        """A dial's connection has taken the place reserved for it (the
        transport closes ``victim`` for it, if it still may)."""
        self.admitted -= 1
        if victim is not None:
            self._claimed.discard(victim)

    def give_back(self, victim: StreamConnection | None) -> None:
        """A place held for a dial that will not take it."""
        self.admitted -= 1
        if victim is not None:
            self._claimed.discard(victim)
            self._hints[victim] = None
        self.came_free()

    def came_free(self) -> None:
        """Something came free: let waiting dials through once this turn of
        the loop is over (once, however many things came free in it)."""
        if self._waiters and not self._admitting and not self._closed:
            self._admitting = True
            self._loop.call_soon(self._admit)

    def _admit(self) -> None:
        """Let the waiting dials through, first come first, while there is a
        free place or an idle connection said to be freed to close for one."""
        self._admitting = False
        waiters = self._waiters
        while waiters:
            turn = waiters[0]
            if turn.done():  # timed out or cancelled
                waiters.popleft()
                continue
            victim: StreamConnection | None = None
            if not self.free():
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
            if conn in self._table and conn not in self._claimed and not self._busy(conn):
                return conn
        return None

    def freed(self, conn: StreamConnection) -> None:
        """``conn`` carries no transaction any more: a dial waiting for a
        place may now close it and take its place."""
        if self._waiters and conn in self._table:
            self._hints[conn] = None
            self.came_free()

    def forget(self, conn: StreamConnection) -> None:
        """``conn`` has closed: no dial is to look at it again."""
        self._hints.pop(conn, None)

    def no_room(self) -> ConnectionRefusedError:
        """What a dial that found no place raises."""
        return ConnectionRefusedError(
            errno.EMFILE,
            f"no room for another {self.name} connection: {self.cap} are open,"
            " each carrying a transaction",
        )

    def close(self) -> None:
        """Fail every waiting dial: the transport is closed."""
        self._closed = True
        while self._waiters:
            turn = self._waiters.popleft()
            if not turn.done():
                turn.set_exception(ConnectionAbortedError(f"the {self.name} transport is closed"))
        self._hints.clear()
        self._claimed.clear()
