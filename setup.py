"""Build hook: compiles the sans-IO SIP core (and the endpoint's glue) with mypyc.

Everything else about the package is declared in pyproject.toml.  The core
(``phonecast.sip``) is plain, fully typed Python; mypyc turns each of its
modules into a C extension that CPython loads in place of the source, which
runs the same code with 20-40 % less CPU per message (bench/README.md).  The
sources stay the reference: ``PHONECAST_PURE=1`` at build time skips the
compilation, and at run time makes the interpreter ignore compiled modules
(see ``phonecast/__init__.py``).

``errors.py`` stays interpreted: the exception classes keep class-level
defaults that compiled classes would not, and nothing hot lives there.
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import setup

#: Modules left interpreted, with the reason in the docstring above.
INTERPRETED = {"errors.py"}
#: Outside the core, the per-message paths of the asyncio layers, each
#: measured side by side compiled and interpreted (bench/README.md, sixth
#: round): the endpoint's glue (matching, pumping transactions, the deadline
#: heap, the retired transactions) and the UDP drain; the pusher (146 -> 110 us CPU per push); the
#: emulator's handler, its event log (eight events per call), its fetcher,
#: what it does with a push and the phones' state it reads per request.
#: What stays interpreted does not run per message (CLI, campaign store,
#: inventory) or is bound by something else (the content server is aiohttp's).
GLUE = (
    "src/phonecast/net/endpoint.py",
    "src/phonecast/net/limits.py",
    "src/phonecast/net/replies.py",
    "src/phonecast/net/retired.py",
    "src/phonecast/net/stream.py",
    "src/phonecast/net/stream_room.py",
    "src/phonecast/net/timers.py",
    "src/phonecast/net/tls_session.py",
    "src/phonecast/net/transport.py",
    "src/phonecast/push/pusher.py",
    "src/phonecast/phone/emulator.py",
    "src/phonecast/phone/events.py",
    "src/phonecast/phone/fetcher.py",
    "src/phonecast/phone/httpget.py",
    "src/phonecast/phone/pushes.py",
    "src/phonecast/phone/state.py",
)


def compiled_modules() -> list[str]:
    """Source files that mypyc compiles (paths relative to this file's
    directory, where the build runs)."""
    core = Path("src/phonecast/sip")
    root = Path(__file__).resolve().parent
    sources = [p for p in (root / core).glob("*.py") if p.name not in INTERPRETED]
    return sorted([str(p.relative_to(root)) for p in sources] + list(GLUE))


def ext_modules() -> list[object]:
    if os.environ.get("PHONECAST_PURE") == "1":
        return []
    from mypyc.build import mypycify

    return list(mypycify(compiled_modules(), opt_level="3"))


if __name__ == "__main__":  # as the build backend runs it; tests import it
    setup(ext_modules=ext_modules())
