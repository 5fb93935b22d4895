"""Shared fixtures: where the RFC corpora live."""

from __future__ import annotations

import os
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
