"""Run phonecast's interpreted sources even where compiled modules exist.

The SIP core is compiled with mypyc when the package is built (setup.py);
CPython then loads ``message.cpython-*.so`` instead of ``message.py``.  With
``PHONECAST_PURE=1`` in the environment, :mod:`phonecast` installs
:class:`SourceOnlyFinder` before anything else is imported, so that every
``phonecast.*`` module comes from its ``.py`` file: the reference behaviour,
readable tracebacks and a pure-Python baseline for the benchmarks.  The test
suite runs the core's tests both ways.
"""

from __future__ import annotations

import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

_SOURCE_ONLY = (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)


class SourceOnlyFinder:
    """A meta-path finder that resolves ``phonecast.*`` from source files only."""

    @staticmethod
    def find_spec(
        fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith("phonecast.") or not path:
            return None
        for entry in path:
            spec = importlib.machinery.FileFinder(entry, _SOURCE_ONLY).find_spec(fullname, target)
            if spec is not None:
                return spec
        return None


def install() -> None:
    """Put :class:`SourceOnlyFinder` first on ``sys.meta_path`` (idempotent)."""
    if SourceOnlyFinder not in sys.meta_path:
        sys.meta_path.insert(0, SourceOnlyFinder)


def is_compiled(module: ModuleType) -> bool:
    """Whether ``module`` was loaded from a compiled extension."""
    origin = getattr(module, "__file__", None) or ""
    return origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
