"""The event loop phonecast's commands run on.

uvloop when it is installed, because it measured faster here for the work
that matters (``bench/push_vs_sipp.py``: about 5-10 % more authenticated pushes
per second and 5 % less CPU per push than the default loop, 2026-11-25);
otherwise the standard loop.  The UDP transport uses ``add_reader`` on either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on uvloop if available."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def loop_name() -> str:
    """Which loop :func:`run` uses (for --version style reports)."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"
