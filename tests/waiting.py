"""Waiting in tests for something the code under test does on its own time.

A fixed sleep followed by an assert guesses how long the work takes: on a
loaded CI machine (two cores shared with other jobs) the guess is sometimes
short and the test flakes, and where it is long every run pays for it.
:func:`until` polls instead: it returns as soon as the condition holds and
fails only after a deadline that is generous because it costs nothing when
the code is right.  Bounds that are the point of a test (not before 80 % of
a grant, say) stay explicit asserts on measured times.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def until(
    condition: Callable[[], T],
    timeout: float = 5.0,
    interval: float = 0.02,
    *,
    what: str = "",
) -> T:
    """Poll ``condition`` every ``interval`` seconds until it returns
    something true, and return that; AssertionError naming ``what`` (or the
    condition) if ``timeout`` seconds pass first.  The last check is made
    at the deadline, not one interval before it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        left = deadline - loop.time()
        if left <= 0:
            described = what or getattr(condition, "__qualname__", repr(condition))
            raise AssertionError(f"gave up after {timeout:g} s waiting for {described}")
        await asyncio.sleep(min(interval, left))
