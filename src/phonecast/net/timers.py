"""One loop timer for many deadlines.

The sans-IO core returns deadlines (absolute times on the loop's clock); an
endpoint may run thousands of transactions, and a ``loop.call_at`` handle per
transaction costs a heap entry and an object each inside asyncio anyway.  The
:class:`DeadlineHeap` keeps its own heap of ``(deadline, seq, callback)`` and
arms exactly one asyncio timer at the earliest deadline, moving it only when
the earliest deadline changes (the shape aioquic's protocol uses per
connection, applied per endpoint).

Cancelling is lazy: :meth:`Timer.cancel` marks the entry and it is skipped
when it reaches the top, which keeps cancel O(1) — responses usually arrive
before retransmission timers fire, so most entries are cancelled.  When more
than half the heap is cancelled entries, it is rebuilt without them, so memory
tracks the live timers, not the cancelled ones (a 32 s Timer F cancelled after
a few milliseconds would otherwise stay for 32 s).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable


def _never(_now: float) -> None:
    """What a cancelled timer holds instead of its callback."""


class Timer:
    """A scheduled callback; :meth:`cancel` before it fires to drop it."""

    __slots__ = ("_owner", "callback", "cancelled", "deadline")

    def __init__(
        self, deadline: float, callback: Callable[[float], None], owner: DeadlineHeap
    ) -> None:
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False
        self._owner = owner

    def cancel(self) -> None:
        """Drop the callback (it will not be called).  The reference goes at
        once: the entry itself waits in the heap until its deadline, and a
        callback's closure (a future, a response) must not wait with it."""
        if not self.cancelled:
            self.cancelled = True
            self.callback = _never
            self._owner._note_cancel()


class DeadlineHeap:
    """Many deadlines, one ``loop.call_at`` handle."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at: float | None = None
        self._cancelled = 0

    def now(self) -> float:
        """The loop's clock: the ``now`` every core call receives."""
        return self._loop.time()

    def __len__(self) -> int:
        return len(self._heap)

    def schedule(self, deadline: float, callback: Callable[[float], None]) -> Timer:
        """Call ``callback(now)`` at ``deadline`` (loop clock)."""
        timer = Timer(deadline, callback, self)
        heapq.heappush(self._heap, (deadline, next(self._seq), timer))
        if self._armed_at is None or deadline < self._armed_at:
            self._arm(deadline)
        return timer

    def _note_cancel(self) -> None:
        self._cancelled += 1
        if self._cancelled > 1024 and self._cancelled * 2 > len(self._heap):
            self._heap = [entry for entry in self._heap if not entry[2].cancelled]
            heapq.heapify(self._heap)
            self._cancelled = 0

    def _arm(self, deadline: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed_at = deadline
        self._handle = self._loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._armed_at = None
        heap = self._heap
        now = self._loop.time()
        while heap and heap[0][0] <= now:
            _, _, timer = heapq.heappop(heap)
            if timer.cancelled:
                self._cancelled -= 1
            else:
                timer.cancelled = True
                timer.callback(now)
            heap = self._heap  # a callback may have compacted it
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
            self._cancelled -= 1
        if heap:
            self._arm(heap[0][0])

    def close(self) -> None:
        """Cancel everything."""
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self._armed_at = None
        self._heap.clear()
        self._cancelled = 0
