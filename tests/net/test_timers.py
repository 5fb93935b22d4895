"""TimerWheel: one loop timer, many deadlines in buckets of a tick, lazy cancellation."""

from __future__ import annotations

import asyncio
import math

from phonecast.net.timers import TICK, TimerWheel


async def test_callbacks_fire_in_deadline_order_with_now() -> None:
    wheel = TimerWheel()
    start = wheel.now()
    fired: list[tuple[str, float]] = []
    wheel.schedule(start + 0.03, lambda now: fired.append(("c", now)))
    wheel.schedule(start + 0.01, lambda now: fired.append(("a", now)))
    wheel.schedule(start + 0.02, lambda now: fired.append(("b", now)))
    await asyncio.sleep(0.06)
    assert [name for name, _ in fired] == ["a", "b", "c"]
    assert all(now >= start + 0.01 for _, now in fired)


async def test_cancelled_timers_do_not_fire() -> None:
    wheel = TimerWheel()
    fired: list[int] = []
    t = wheel.schedule(wheel.now() + 0.01, lambda now: fired.append(1))
    wheel.schedule(wheel.now() + 0.02, lambda now: fired.append(2))
    t.cancel()
    await asyncio.sleep(0.05)
    assert fired == [2]


async def test_earlier_deadline_rearms_single_handle() -> None:
    wheel = TimerWheel()
    fired: list[str] = []
    wheel.schedule(wheel.now() + 10, lambda now: fired.append("late"))
    wheel.schedule(wheel.now() + 0.01, lambda now: fired.append("early"))
    await asyncio.sleep(0.04)
    assert fired == ["early"]
    wheel.close()


async def test_wheel_is_compacted_when_mostly_cancelled() -> None:
    wheel = TimerWheel()
    timers = [wheel.schedule(wheel.now() + 60, lambda now: None) for _ in range(5000)]
    for t in timers[:4900]:
        t.cancel()
    assert len(wheel) < 2600  # rebuilt without the cancelled entries
    wheel.close()
    assert len(wheel) == 0


async def test_callback_may_schedule_more() -> None:
    wheel = TimerWheel()
    fired: list[int] = []

    def again(now: float) -> None:
        fired.append(len(fired))
        if len(fired) < 3:
            wheel.schedule(now + 0.005, again)

    wheel.schedule(wheel.now() + 0.005, again)
    await asyncio.sleep(0.08)
    assert fired == [0, 1, 2]


async def test_cancel_releases_the_callback_at_once() -> None:
    """A cancelled timer waits in its bucket until the bucket comes up; what its
    callback closed over (a future, a response) must not wait with it."""
    import gc
    import weakref

    wheel = TimerWheel()

    class Held:
        pass

    held = Held()
    ref = weakref.ref(held)
    timer = wheel.schedule(wheel.now() + 60, lambda now, h=held: None)  # type: ignore[misc]
    del held
    gc.collect()
    assert ref() is not None  # the live timer holds it
    timer.cancel()
    gc.collect()
    assert ref() is None
    assert len(wheel) == 1  # the timer itself is still there (lazy cancel)
    wheel.close()


async def test_a_timer_fires_at_its_deadline_or_within_a_tick_never_before() -> None:
    wheel = TimerWheel()
    fired: dict[int, float] = {}
    deadlines = {n: wheel.now() + 0.005 + n * 0.0013 for n in range(20)}
    for n, deadline in deadlines.items():
        wheel.schedule(deadline, lambda now, n=n: fired.setdefault(n, now))  # type: ignore[misc]
    await asyncio.sleep(0.1)
    assert sorted(fired) == list(range(20))
    for n, now in fired.items():
        assert deadlines[n] <= now <= deadlines[n] + TICK + 0.03  # a tick, plus loop latency
    assert len(wheel) == 0


async def test_timers_of_one_tick_fire_in_the_order_they_were_scheduled() -> None:
    wheel = TimerWheel()
    base = (int(wheel.now() / TICK) + 3) * TICK  # the start of a tick a little ahead
    fired: list[str] = []
    wheel.schedule(base + TICK * 0.9, lambda now: fired.append("late in the tick"))
    wheel.schedule(base + TICK * 0.1, lambda now: fired.append("early in the tick"))
    wheel.schedule(base + TICK * 5, lambda now: fired.append("next bucket"))
    await asyncio.sleep(TICK * 10 + 0.02)
    assert fired == ["late in the tick", "early in the tick", "next bucket"]


async def test_callbacks_may_schedule_due_timers_and_cancel_others_while_firing() -> None:
    """A timer a callback schedules for now fires in the same pass; one it
    cancels never fires; the counts come back to zero."""
    wheel = TimerWheel()
    fired: list[str] = []
    victim = wheel.schedule(wheel.now() + 0.01, lambda now: fired.append("victim"))

    def first(now: float) -> None:
        fired.append("first")
        victim.cancel()
        wheel.schedule(now, lambda later: fired.append("zero-length"))

    wheel.schedule(wheel.now() + 0.005, first)
    await asyncio.sleep(0.05)
    assert fired == ["first", "zero-length"]
    assert len(wheel) == 0 and wheel._cancelled == 0 and not wheel._buckets


async def test_many_cancelled_while_firing_compact_once_the_pass_is_over() -> None:
    wheel = TimerWheel()
    far = [wheel.schedule(wheel.now() + 60, lambda now: None) for _ in range(3000)]

    def cancel_all(now: float) -> None:
        for t in far:
            t.cancel()
        assert len(wheel) == 3000  # no compaction under a firing pass

    wheel.schedule(wheel.now() + 0.005, cancel_all)
    await asyncio.sleep(0.03)
    assert len(wheel) == 0 and wheel._cancelled == 0  # compacted after it
    wheel.close()


class _StoppedClock(asyncio.SelectorEventLoop):
    """A loop whose clock reads one instant, for float edge cases."""

    def __init__(self, now: float) -> None:
        super().__init__()
        self.fixed = now

    def time(self) -> float:
        return self.fixed


def test_a_deadline_an_ulp_past_now_in_its_tick_fires_and_does_not_spin() -> None:
    """Found hung at 100 % CPU in CI: a deadline one ulp past the loop's time
    that rounds into the tick being fired (ceil and floor of two quotients
    that round alike).  Told "now" below its deadline, a transaction does
    nothing and asks for the same deadline again, which joined the same
    pass, for ever.  The wheel tells a timer at least its own deadline."""
    now, deadline = 8076.204, 8076.204000000001
    assert deadline > now and math.ceil(deadline / TICK) == math.floor(now / TICK)
    loop = _StoppedClock(now)
    try:
        wheel = TimerWheel(loop)
        told: list[float] = []

        def not_before_deadline(at: float) -> None:
            told.append(at)
            if at < deadline and len(told) < 100:  # bounded: a spin fails, not hangs
                wheel.schedule(deadline, not_before_deadline)

        wheel.schedule(deadline, not_before_deadline)
        wheel._fire()
        assert told == [deadline]
    finally:
        loop.close()
