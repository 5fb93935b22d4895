"""Memoised header parsers.

Traffic between two SIP peers repeats itself: every NOTIFY a sender fires at
one phone carries the same To, Request-URI, Content-Type and Event values,
and each CSeq value recurs once per call.  Parsed values are immutable, so a
small LRU keyed by the raw text returns the same object again instead of
re-running the grammar.  Bounds: entries per parser (``maxsize``) and the
length of a value worth caching (``max_len``), so hostile input of unique or
huge values costs at most the bounded cache, never unbounded memory.
Errors are not cached: a bad value raises every time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])


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
