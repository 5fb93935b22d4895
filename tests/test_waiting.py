"""The tests' polling helper: it returns what came true, and fails clearly."""

from __future__ import annotations

import asyncio

import pytest

from tests.waiting import until


async def test_until_returns_the_condition_s_value_once_it_holds() -> None:
    calls: list[int] = []

    def third_time() -> list[int]:
        calls.append(1)
        return calls if len(calls) >= 3 else []

    assert await until(third_time, interval=0.001) == [1, 1, 1]


async def test_until_fails_at_the_deadline_naming_what_it_waited_for() -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(AssertionError, match=r"gave up after 0\.1 s waiting for the event"):
        await until(lambda: False, timeout=0.1, what="the event")
    assert loop.time() - start >= 0.1
