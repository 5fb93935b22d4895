"""The compiled SIP core: what is compiled, that it is current, and the
switch back to the interpreted sources (``phonecast._pure``)."""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from phonecast._pure import SourceOnlyFinder, is_compiled

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "src" / "phonecast" / "sip"
PURE = os.environ.get("PHONECAST_PURE") == "1"


def _compiled_sources() -> list[Path]:
    """The sources setup.py hands to mypyc (read from it, not repeated)."""
    spec = importlib.util.spec_from_file_location("_phonecast_setup", ROOT / "setup.py")
    assert spec is not None and spec.loader is not None
    setup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(setup)
    return [ROOT / name for name in setup.compiled_modules()]


def _module(path: Path) -> str:
    package = ".".join(path.relative_to(ROOT / "src").parent.parts)
    return package if path.name == "__init__.py" else f"{package}.{path.stem}"


def test_errors_stay_interpreted_and_the_rest_is_listed() -> None:
    sources = _compiled_sources()
    assert CORE / "message.py" in sources and CORE / "wire.py" in sources
    assert ROOT / "src/phonecast/net/endpoint.py" in sources
    assert CORE / "errors.py" not in sources
    assert not is_compiled(importlib.import_module("phonecast.sip.errors"))


def test_core_modules_come_from_the_build_the_run_asked_for() -> None:
    """Compiled and current in a normal run (a compiled module older than its
    source would run stale code); interpreted in the PHONECAST_PURE=1 pass."""
    if PURE:
        assert SourceOnlyFinder in sys.meta_path
    stale = []
    for source in _compiled_sources():
        module = importlib.import_module(_module(source))
        if PURE or not is_compiled(module):
            assert not (PURE and is_compiled(module)), module.__name__
            if not PURE and os.environ.get("PHONECAST_REQUIRE_COMPILED") == "1":
                pytest.fail(f"{module.__name__} is not compiled (run make test)")
            continue
        built = Path(module.__file__ or "")
        if built.stat().st_mtime < source.stat().st_mtime:
            stale.append(f"{built.name} is older than {source.name}")
    assert not stale, "stale compiled modules, rebuild with make test: " + "; ".join(stale)


def test_make_reinstalls_when_any_compiled_source_changes() -> None:
    """The Makefile's CORE (what makes `make test` build again) covers every
    module setup.py compiles, so no edit can leave a stale extension."""
    text = (
        (ROOT / "Makefile").read_text().replace("\\\n", " ")
    )  # continued lines, as make reads them
    line = next(ln for ln in text.splitlines() if ln.startswith("CORE :="))
    listed = line.split(":=", 1)[1].replace("$(wildcard ", "").replace(")", "").split()
    for source in _compiled_sources():
        relative = str(source.relative_to(ROOT))
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in listed), relative


def test_pure_switch_loads_sources_in_a_fresh_process() -> None:
    code = (
        "import phonecast.sip.wire as w, phonecast.sip as s;"
        "from phonecast._pure import is_compiled;"
        "print(w.__file__, is_compiled(w), is_compiled(s))"
    )
    env = {**os.environ, "PHONECAST_PURE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0].endswith("wire.py") and out[1:] == ["False", "False"]


def test_finder_leaves_other_packages_alone() -> None:
    assert SourceOnlyFinder.find_spec("json.decoder", ["/nonexistent"]) is None
    assert SourceOnlyFinder.find_spec("phonecast.sip.wire", None) is None
    spec = SourceOnlyFinder.find_spec("phonecast.sip.wire", [str(CORE)])
    assert spec is not None and spec.origin == str(CORE / "wire.py")
