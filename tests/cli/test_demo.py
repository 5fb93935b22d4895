"""``phonecast demo``: what it says when it cannot run (the demo itself runs
in ``make demo`` and in tests/campaign/test_alert_cli.py's fleet helpers)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "phonecast", "demo", "--count", "3", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_keep_that_cannot_be_a_folder_is_one_line() -> None:
    """A character device gave a FileExistsError traceback."""
    run = _demo("--keep", "/dev/null")
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip() == "phonecast: cannot use --keep '/dev/null' as a folder: File exists"


def test_a_fleet_that_fails_for_another_reason_than_its_ports_says_why(tmp_path: Path) -> None:
    """It was retried five times and reported as "no free port range?", the
    fleet's own words thrown away."""
    (tmp_path / "phones.csv").mkdir()  # where the fleet's inventory goes
    run = _demo("--keep", str(tmp_path))
    assert run.returncode == 2, run.stderr
    assert "could not start the emulated fleet: " in run.stderr
    assert "--inventory-out" in run.stderr and "directory" in run.stderr
    assert "port range" not in run.stderr and "Traceback" not in run.stderr


def test_a_fleet_refusal_is_read_whole_past_its_first_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The fleet's first line was read through the pipe's buffer, the rest
    by ``communicate(timeout=...)``, which reads the descriptor itself: what
    the buffer already held was lost, and a usage error was reported as
    "Usage: phonecast fleet [OPTIONS]" (seen in a loaded test run)."""
    from phonecast.cli import demo_cmd

    said = "Usage: phonecast fleet [OPTIONS]\nTry 'phonecast fleet --help'.\n\nError: the reason\n"
    refusing = [sys.executable, "-c", f"import sys; sys.stderr.write({said!r}); sys.exit(2)"]
    popen = subprocess.Popen

    def fleet_that_refuses(args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        return popen(refusing, **kwargs)

    monkeypatch.setattr(demo_cmd.subprocess, "Popen", fleet_that_refuses)
    with pytest.raises(SystemExit) as exited:
        demo_cmd.start_fleet(tmp_path, 3)
    assert exited.value.code == 2
    assert (
        capsys.readouterr().err
        == "phonecast: could not start the emulated fleet: Error: the reason\n"
    )
