"""Memoised header parsers, and the bounded tables the hot paths keep.

Traffic between two SIP peers repeats itself: every NOTIFY a sender fires at
one phone carries the same To, Request-URI, Content-Type and Event values,
and each CSeq value recurs once per call.  Parsed values are immutable, so a
small LRU keyed by the raw text returns the same object again instead of
re-running the grammar.  Bounds: entries per parser (``maxsize``) and the
length of a value worth caching (``max_len``), so hostile input of unique or
huge values costs at most the bounded cache, never unbounded memory.
Errors are not cached: a bad value raises every time.

The parser's hottest lookups (whole header lines, start lines, a peer's Via,
CSeq values) use plain dicts through :func:`remember` instead: compiled, a
dict probe is a C call, where a decorated function is a Python-level call
with its arguments packed.  Their bound works by starting afresh when full,
which costs hostile input of unique values the same as no table at all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])
K = TypeVar("K")
V = TypeVar("V")

#: Default bound of a :func:`remember` table, in entries.
TABLE_SIZE: Final = 1024


def remember(table: dict[K, V], key: K, value: V, limit: int = TABLE_SIZE) -> V:
    """Store ``value`` under ``key`` in ``table``, emptying the table first
    if it holds ``limit`` entries; returns ``value``."""
    if len(table) >= limit:
        table.clear()
    table[key] = value
    return value


def memoize(*, maxsize: int = 1024, max_len: int = 256) -> Callable[[F], F]:
    """Decorate a pure ``parse(value: str, ...)`` whose result is immutable."""

    def decorate(parse: F) -> F:
        cached = functools.lru_cache(maxsize=maxsize)(parse)

        @functools.wraps(parse)
        def memoised(value: str, *args: Any, **kwargs: Any) -> Any:
            if len(value) > max_len:
                return parse(value, *args, **kwargs)
            return cached(value, *args, **kwargs)

        return cast(F, memoised)

    return decorate
