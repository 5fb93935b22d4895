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
import resource
from collections.abc import Coroutine
from typing import Any, TypeVar

from phonecast.net.limits import DEFAULT_MAX_CONNECTIONS, FILES_PER_CONNECTION

T = TypeVar("T")

#: (young, middle, old): allocations between young collections, and how many
#: collections of one generation trigger one of the next.  Cycles (asyncio
#: futures holding exceptions, for instance) are still collected, only in
#: larger batches.
GC_THRESHOLDS = (100_000, 50, 100)


#: Files a command keeps free for its stream connections: enough for a
#: transport's default connection cap (a share of the soft limit: see
#: ``StreamLimits``) to reach its most, with room to spare.
STREAM_FILES = FILES_PER_CONNECTION * DEFAULT_MAX_CONNECTIONS + 256


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on uvloop if available, collector tuned, with
    the soft file limit lifted for the command's stream connections (a
    command needing more, a fleet's sockets, lifts it further first: see
    :func:`raise_fd_limit`)."""
    raise_fd_limit(STREAM_FILES)
    tune_gc()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def raise_fd_limit(wanted: int) -> int:
    """Lift the soft limit on open files towards ``wanted``, as far as the
    hard limit lets an unprivileged process, and return the soft limit now.

    Why: a fleet needs a socket per line, and a campaign over TCP a
    connection per phone in flight; a 1,024-file default would end them in
    EMFILE half-way (a campaign over TCP to 3,000 phones once did)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and ceiling > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
        except (ValueError, OSError):
            return soft
        return ceiling
    return soft


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
