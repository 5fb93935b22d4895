"""The loop runner and the collector settings it applies."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from phonecast.net import loop


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


@pytest.mark.usefixtures("restore_gc")
def test_run_raises_the_collector_thresholds_and_returns_the_result() -> None:
    gc.set_threshold(700, 10, 10)

    async def main() -> str:
        await asyncio.sleep(0)
        return "done"

    assert loop.run(main()) == "done"
    assert gc.get_threshold() == loop.GC_THRESHOLDS
    assert loop.GC_THRESHOLDS[0] > 700  # the point: fewer young collections


@pytest.mark.usefixtures("restore_gc")
def test_settle_freezes_what_exists_and_spares_it_from_collection() -> None:
    gc.unfreeze()
    kept = [object() for _ in range(3)]
    loop.settle()
    assert gc.get_freeze_count() >= len(kept)
    before = gc.get_freeze_count()
    gc.collect()
    assert gc.get_freeze_count() == before  # a collection leaves frozen objects alone


def test_loop_name_names_the_loop_in_use() -> None:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        assert loop.loop_name() == "asyncio"
    else:
        assert loop.loop_name() == "uvloop"


def test_the_file_limit_is_lifted_as_far_as_the_hard_limit_lets_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import resource

    from phonecast.net.loop import raise_fd_limit

    inf = resource.RLIM_INFINITY
    limits = {"now": (1024, 4096)}
    set_to: list[tuple[int, int]] = []

    def setrlimit(_which: int, value: tuple[int, int]) -> None:
        set_to.append(value)
        limits["now"] = value

    monkeypatch.setattr(resource, "getrlimit", lambda _which: limits["now"])
    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    assert raise_fd_limit(20_000) == 4096 and set_to == [(4096, 4096)]  # up to the hard one
    assert raise_fd_limit(100) == 4096 and len(set_to) == 1  # never lowered
    limits["now"] = (1024, inf)
    assert raise_fd_limit(20_000) == 20_000 and set_to[-1] == (20_000, inf)

    def refused(_which: int, _value: tuple[int, int]) -> None:
        raise ValueError("not permitted")

    limits["now"] = (1024, 8192)
    monkeypatch.setattr(resource, "setrlimit", refused)
    assert raise_fd_limit(8192) == 1024  # as it was: the command carries on
