"""One loop timer for many deadlines: a hashed timing wheel.

The sans-IO core returns deadlines (absolute times on the loop's clock); an
endpoint may run hundreds of thousands of transactions (a UDP server
transaction lives 32 s after its work, for Timer J), and a ``loop.call_at``
handle per transaction costs a heap entry and an object each inside asyncio
anyway.  The :class:`TimerWheel` files timers in buckets of one tick (4 ms)
and arms exactly one asyncio timer, at the earliest bucket.

Why a wheel and not a binary heap of timers (what this module held before):
with ~200,000 timers pending, every pop sifted a tuple down ~18 levels of an
array that no longer fits in the caches, and that was a fifth of the
pusher's CPU.  Here scheduling appends to a bucket's list, cancelling flags
the timer, and only the bucket numbers sit in a heap (one entry per tick
that has timers, at most one per 4 ms of the horizon, not one per timer).
(G. Varghese and T. Lauck, "Hashed and hierarchical timing wheels", 1987;
Linux and Kamailio keep their timers the same way.)

What a tick costs in precision: a timer fires between its deadline and
about one tick later, never before it.  The core fires each of its timers
"as of" its own deadline whenever it is called, so a retransmission
schedule does not drift by the wheel's lateness.

Cancelling is lazy: :meth:`Timer.cancel` marks the timer and releases its
callback at once; the dead timer is dropped when its bucket comes up.  When
more than half the timers held are cancelled ones, the buckets are rebuilt
without them, so memory tracks the live timers (a 32 s Timer F cancelled
after a few milliseconds would otherwise stay for 32 s).
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Callable
from typing import Final

#: Width of a bucket, seconds.
TICK: Final = 0.004
#: The loop timer is armed this much after a bucket's end, so that a loop
#: whose clock rounds to milliseconds never wakes before it.
_SLACK: Final = 0.0005


def _never(_now: float) -> None:
    """What a cancelled timer holds instead of its callback."""


class Timer:
    """A scheduled callback; :meth:`cancel` before it fires to drop it."""

    __slots__ = ("_owner", "callback", "cancelled", "deadline")

    def __init__(
        self, deadline: float, callback: Callable[[float], None], owner: TimerWheel
    ) -> None:
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False
        self._owner = owner

    def cancel(self) -> None:
        """Drop the callback (it will not be called).  The reference goes at
        once: the timer itself waits in its bucket until the bucket's turn,
        and a callback's closure (a future, a response) must not wait with it."""
        if not self.cancelled:
            self.cancelled = True
            self.callback = _never
            self._owner._note_cancel()


class TimerWheel:
    """Many deadlines, one ``loop.call_at`` handle (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        #: Tick number -> the timers whose deadlines fall in it.
        self._buckets: dict[int, list[Timer]] = {}
        #: The tick numbers of ``_buckets``, earliest first.
        self._ticks: list[int] = []
        self._handle: asyncio.TimerHandle | None = None
        self._armed_tick: int | None = None
        self._held = 0
        self._cancelled = 0
        #: True while due timers run: their callbacks may schedule and
        #: cancel, and the wheel re-arms and compacts only once they are done.
        self._firing = False

    def now(self) -> float:
        """The loop's clock: the ``now`` every core call receives."""
        return self._loop.time()

    def __len__(self) -> int:
        """Timers held: live ones and cancelled ones not yet dropped."""
        return self._held

    def schedule(self, deadline: float, callback: Callable[[float], None]) -> Timer:
        """Call ``callback(now)`` at ``deadline`` (loop clock) or within a tick after."""
        timer = Timer(deadline, callback, self)
        tick = math.ceil(deadline / TICK)
        bucket = self._buckets.get(tick)
        if bucket is None:
            self._buckets[tick] = [timer]
            heapq.heappush(self._ticks, tick)
            if not self._firing and (self._armed_tick is None or tick < self._armed_tick):
                self._arm(tick)
        else:
            bucket.append(timer)
        self._held += 1
        return timer

    def _note_cancel(self) -> None:
        self._cancelled += 1
        if self._cancelled > 1024 and self._cancelled * 2 > self._held and not self._firing:
            self._compact()

    def _compact(self) -> None:
        """Drop every cancelled timer (and the buckets left empty)."""
        kept: dict[int, list[Timer]] = {}
        for tick, bucket in self._buckets.items():
            alive = [t for t in bucket if not t.cancelled]
            if alive:
                kept[tick] = alive
        self._buckets = kept
        self._ticks = list(kept)
        heapq.heapify(self._ticks)
        self._held = sum(len(b) for b in kept.values())
        self._cancelled = 0
        if not self._ticks:
            self._disarm()
        elif self._armed_tick != self._ticks[0]:
            self._arm(self._ticks[0])

    def _arm(self, tick: int) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed_tick = tick
        self._handle = self._loop.call_at(tick * TICK + _SLACK, self._fire)

    def _disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self._armed_tick = None

    def _fire(self) -> None:
        self._handle = None
        self._armed_tick = None
        now = self._loop.time()
        due = math.floor(now / TICK)
        ticks = self._ticks
        self._firing = True
        try:
            # A callback's own timers due by now join the loop (zero-length
            # timers fire in the same pass).
            while ticks and ticks[0] <= due:
                bucket = self._buckets.pop(heapq.heappop(ticks))
                self._held -= len(bucket)
                for timer in bucket:
                    if timer.cancelled:
                        self._cancelled -= 1
                    else:
                        timer.cancelled = True  # fired: cancel() is a no-op now
                        # As of its deadline at the earliest: a deadline an
                        # ulp past ``now`` can share its tick (ceil and floor
                        # of two quotients that round alike), and a callback
                        # told "not yet" that schedules the same deadline
                        # again would be fired again in this pass, for ever.
                        deadline = timer.deadline
                        try:
                            timer.callback(now if now >= deadline else deadline)
                        except Exception as exc:  # the bucket's other timers still fire
                            self._loop.call_exception_handler(
                                {"message": "timer callback failed", "exception": exc}
                            )
        finally:
            self._firing = False
        if self._cancelled > 1024 and self._cancelled * 2 > self._held:
            self._compact()
        elif ticks:
            self._arm(ticks[0])

    def close(self) -> None:
        """Cancel everything."""
        self._disarm()
        self._buckets.clear()
        self._ticks.clear()
        self._held = 0
        self._cancelled = 0
