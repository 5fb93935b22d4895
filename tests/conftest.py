"""Shared fixtures: where the RFC corpora live."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PHONECAST_SHARED", ROOT.parent / "shared"))
CORPUS = SHARED / "corpus"


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The read-only RFC corpora (``../shared/corpus``)."""
    if not (CORPUS / "rfc4475" / "verdicts.tsv").exists():
        pytest.fail(f"RFC corpus not found at {CORPUS}; set PHONECAST_SHARED")
    return CORPUS


def require_binary(name: str) -> str:
    """Path of a peer binary, or skip the test with a clear reason.

    CI sets ``PHONECAST_REQUIRE_PEERS=1`` after installing the peers, so there
    a missing binary fails instead of skipping.
    """
    import shutil

    for candidate in (name, f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        found = shutil.which(candidate)
        if found:
            return found
    reason = f"{name} is not installed (apt-get install the peer; .ci/run does)"
    if os.environ.get("PHONECAST_REQUIRE_PEERS"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> object:
    """A test CA and a certificate for 127.0.0.1 (see tests/tls.py)."""
    from tests.tls import make_pki

    return make_pki(tmp_path_factory.mktemp("pki"))


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Tests marked ``both_loops`` run on asyncio's loop and on uvloop's.

    The commands run on uvloop (``net.loop.run``) while most tests run on
    asyncio's loop, and the two differ where it matters to transports
    (uvloop's are not ``asyncio.Transport`` subclasses, its servers and
    sockets are its own): a transport test that ran on one loop only once
    let TCP fail on the other.  uvloop is a test dependency, so it is
    always there.  Other tests run on asyncio's loop alone (the hook must
    name at least one loop for every test).
    """
    if item.get_closest_marker("both_loops") is None:
        return {"asyncio": asyncio.new_event_loop}
    import uvloop

    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
