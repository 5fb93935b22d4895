"""DeadlineHeap: one loop timer, many deadlines, lazy cancellation."""

from __future__ import annotations

import asyncio

from phonecast.net.timers import DeadlineHeap


async def test_callbacks_fire_in_deadline_order_with_now() -> None:
    heap = DeadlineHeap()
    start = heap.now()
    fired: list[tuple[str, float]] = []
    heap.schedule(start + 0.03, lambda now: fired.append(("c", now)))
    heap.schedule(start + 0.01, lambda now: fired.append(("a", now)))
    heap.schedule(start + 0.02, lambda now: fired.append(("b", now)))
    await asyncio.sleep(0.06)
    assert [name for name, _ in fired] == ["a", "b", "c"]
    assert all(now >= start + 0.01 for _, now in fired)


async def test_cancelled_timers_do_not_fire() -> None:
    heap = DeadlineHeap()
    fired: list[int] = []
    t = heap.schedule(heap.now() + 0.01, lambda now: fired.append(1))
    heap.schedule(heap.now() + 0.02, lambda now: fired.append(2))
    t.cancel()
    await asyncio.sleep(0.05)
    assert fired == [2]


async def test_earlier_deadline_rearms_single_handle() -> None:
    heap = DeadlineHeap()
    fired: list[str] = []
    heap.schedule(heap.now() + 10, lambda now: fired.append("late"))
    heap.schedule(heap.now() + 0.01, lambda now: fired.append("early"))
    await asyncio.sleep(0.04)
    assert fired == ["early"]
    heap.close()


async def test_heap_is_compacted_when_mostly_cancelled() -> None:
    heap = DeadlineHeap()
    timers = [heap.schedule(heap.now() + 60, lambda now: None) for _ in range(5000)]
    for t in timers[:4900]:
        t.cancel()
    assert len(heap) < 2600  # rebuilt without the cancelled entries
    heap.close()
    assert len(heap) == 0


async def test_callback_may_schedule_more() -> None:
    heap = DeadlineHeap()
    fired: list[int] = []

    def again(now: float) -> None:
        fired.append(len(fired))
        if len(fired) < 3:
            heap.schedule(now + 0.005, again)

    heap.schedule(heap.now() + 0.005, again)
    await asyncio.sleep(0.08)
    assert fired == [0, 1, 2]


async def test_cancel_releases_the_callback_at_once() -> None:
    """A cancelled entry waits in the heap until its deadline; what its
    callback closed over (a future, a response) must not wait with it."""
    import gc
    import weakref

    heap = DeadlineHeap()

    class Held:
        pass

    held = Held()
    ref = weakref.ref(held)
    timer = heap.schedule(heap.now() + 60, lambda now, h=held: None)  # type: ignore[misc]
    del held
    gc.collect()
    assert ref() is not None  # the live timer holds it
    timer.cancel()
    gc.collect()
    assert ref() is None
    assert len(heap) == 1  # the entry itself is still there (lazy cancel)
    heap.close()
