"""The event loop phonecast's commands run on, and the collector's settings.

uvloop when it is installed, because it measured faster here for the work
that matters (``bench/push_vs_sipp.py``: about 5-10 % more authenticated pushes
per second and 5 % less CPU per push than the default loop, 2026-11-25);
otherwise the standard loop.  The UDP transport uses ``add_reader`` on either.

The cyclic garbage collector is tuned for the shape of phonecast's work:
a large, long-lived population (10,000 emulated phones with their sockets,
an inventory, a campaign's content) and a stream of short-lived messages,
nearly all freed by reference counting the moment they are done.  With
CPython's default thresholds a young collection runs every 700 allocations
and full collections keep walking the long-lived population: measured on
``bench/campaign.py`` (10,000 phones), 1.4 s of the runner's and 1.9 s of the
fleet's CPU went to the collector.  :func:`run` raises the thresholds and
:func:`settle` (called once start-up is done) freezes what exists by then,
so collections only look at what the work itself allocates.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: (young, middle, old): allocations between young collections, and how many
#: collections of one generation trigger one of the next.  Cycles (asyncio
#: futures holding exceptions, for instance) are still collected, only in
#: larger batches.
GC_THRESHOLDS = (100_000, 50, 100)


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on uvloop if available, collector tuned."""
    tune_gc()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def tune_gc() -> None:
    """Raise the collector's thresholds to :data:`GC_THRESHOLDS` (idempotent)."""
    gc.set_threshold(*GC_THRESHOLDS)


def settle() -> None:
    """Start-up is done: collect once, then freeze every object that exists,
    so later collections skip the long-lived population (``gc.freeze``)."""
    gc.collect()
    gc.freeze()


def loop_name() -> str:
    """Which loop :func:`run` uses (for --version style reports)."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"
