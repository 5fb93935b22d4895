"""The retired server transactions of one endpoint, until their Timer J.

Once a non-INVITE server transaction over UDP has sent its final response,
all it does for the rest of Timer J (32 s) is repeat that response to
retransmissions.  :class:`~phonecast.net.endpoint.SipEndpoint` then drops
the machine, its entry, its wheel timer and the request datagram, and keeps
the core's :class:`~phonecast.sip.transaction.CompletedServer` here with
the flow the request came on and the address its answers go to
(:class:`Retired`).  They all last Timer J, so they expire in the order
they were kept: one queue and one timer on the endpoint's wheel for all.

Kept apart from the endpoint because it is a table with a life of its own
(kept, found two ways, swept), and compiled with it (setup.py) so that the
endpoint's calls into it stay native.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from phonecast.net.timers import Timer, TimerWheel
from phonecast.net.transport import Address, Flow
from phonecast.sip.transaction import CompletedServer, TransactionTable


class Retired:
    """A retired UDP server transaction (:class:`CompletedServer`) with what
    is needed to answer its retransmissions: the flow the request came on
    and the address its responses go to.

    ``wire_hash`` and ``wire_size`` recognise a byte-identical copy of the
    request without keeping its bytes for 32 s (they were most of what a
    retired transaction would hold).  The hash is Python's own of the
    datagram, computed anyway by the endpoint's dict probe of live
    transactions and keyed per process (unless PYTHONHASHSEED fixes it).  A
    false match needs a 64-bit collision between two datagrams of one size
    from one source to one socket within Timer J: the second request would
    then be taken for a copy of the first and get the first one's answer,
    sent where the first one's went.  By chance that is ~1 in 10^9 over a
    day at 10,000 requests a second from one source; by design it needs the
    hash key and a source that is the first request's own, and costs only
    that source's own request.
    """

    __slots__ = ("flow", "record", "reply_to", "wire_hash", "wire_size")

    def __init__(
        self, record: CompletedServer, flow: Flow, reply_to: Address | None, wire: bytes | None
    ) -> None:
        self.record = record
        self.flow = flow
        self.reply_to = reply_to
        self.wire_hash = hash(wire) if wire else 0
        self.wire_size = len(wire) if wire else -1

    def sent_as(self, data: bytes, flow: Flow) -> bool:
        """True if ``data``, arrived on ``flow``, is the request's own datagram
        again (``hash(data)`` already matched)."""
        mine = self.flow
        same_size = len(data) == self.wire_size
        return same_size and mine.remote == flow.remote and mine.local == flow.local


class RetiredTransactions:
    """The retired transactions of one endpoint, oldest first, found by
    their request datagram or by their :class:`CompletedServer`."""

    __slots__ = ("_by_record", "_by_wire", "_queue", "_table", "_timer", "_wheel")

    def __init__(self, table: TransactionTable, wheel: TimerWheel) -> None:
        #: The core's table, which holds the records by key (and forgets
        #: them here, at their Timer J).
        self._table = table
        self._wheel = wheel
        self._queue: deque[Retired] = deque()
        #: Those whose request datagram is known, by its hash.
        self._by_wire: dict[int, Retired] = {}
        #: All of them by their record's id, for a copy matched by key.
        self._by_record: dict[int, Retired] = {}
        self._timer: Timer | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def __iter__(self) -> Iterator[Retired]:
        """Oldest first."""
        return iter(self._queue)

    def keep(
        self, record: CompletedServer, flow: Flow, reply_to: Address | None, wire: bytes | None
    ) -> None:
        """Keep ``record`` (already retired in the table) until its Timer J."""
        retired = Retired(record, flow, reply_to, wire)
        if wire:
            self._by_wire[retired.wire_hash] = retired
        self._by_record[id(record)] = retired
        self._queue.append(retired)
        if self._timer is None:
            self._timer = self._wheel.schedule(record.expires, self._sweep)

    def by_wire(self, data: bytes, flow: Flow) -> Retired | None:
        """The retired transaction ``data`` (arrived on ``flow``) is a
        byte-identical copy of the request of, if any."""
        retired = self._by_wire.get(hash(data))  # the hash is cached: no rehash
        if retired is not None and retired.sent_as(data, flow):
            return retired
        return None

    def by_record(self, record: CompletedServer) -> Retired | None:
        """What was kept with ``record`` (the table's match by key)."""
        return self._by_record.get(id(record))

    def sweep_now(self, now: float) -> None:
        """Sweep before the timer: a copy arrived for a retired transaction
        whose Timer J is over, and must meet none."""
        if self._timer is not None:
            self._timer.cancel()
        self._sweep(now)

    def clear(self) -> None:
        """Forget them all (the endpoint is closing)."""
        self._queue.clear()
        self._by_wire.clear()
        self._by_record.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _sweep(self, now: float) -> None:
        """Forget those whose Timer J is over, oldest first; then wait for
        the next one's.  (Should an endpoint's Timer J ever differ between
        them, a later one waits for the one before it: it lives a little
        longer, never shorter.)"""
        self._timer = None
        queue = self._queue
        while queue and queue[0].record.expires <= now:
            retired = queue.popleft()
            self._table.remove_completed(retired.record)
            if retired.wire_size >= 0 and self._by_wire.get(retired.wire_hash) is retired:
                del self._by_wire[retired.wire_hash]
            del self._by_record[id(retired.record)]
        if queue:
            self._timer = self._wheel.schedule(queue[0].record.expires, self._sweep)
