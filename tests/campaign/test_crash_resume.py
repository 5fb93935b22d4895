"""Kill -9 of the campaign runner at random points, then resume: nothing lost."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from phonecast.cli.demo_cmd import start_fleet

PHONES = 300


def _run(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "phonecast", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    events = tmp_path / "fleet.jsonl"
    proc, inventory = start_fleet(tmp_path, PHONES, events=events, duration=120)
    yield inventory, events
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)


def _wait_for_campaign(db: Path, proc: subprocess.Popen[bytes], limit: float = 60) -> None:
    """Until the runner has created its campaign (kills before that test nothing)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(db) as conn:
                if conn.execute("SELECT count(*) FROM phones").fetchone()[0]:
                    return
        except sqlite3.Error:
            pass
        time.sleep(0.02)


def _in_flight(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT name FROM phones WHERE state IN ('sending', 'accepted')")
        return {r[0] for r in rows}


def test_kill_and_resume_loses_nothing(fleet: tuple[Path, Path], tmp_path: Path) -> None:
    inventory, events = fleet
    db = tmp_path / "campaign.db"
    rng = random.Random(20261125)
    in_flight_at_kills: set[str] = set()
    common = [
        "--db",
        str(db),
        "--quiet",
        "--concurrency",
        "20",
        "--rate",
        "300",
        "--timeout",
        "2",
        "--confirm-timeout",
        "10",
    ]
    proc = _run(
        "alert",
        "--inventory",
        str(inventory),
        "--title",
        "Drill",
        "--text",
        "Now",
        *common[:-2],
        "--confirm-timeout",
        "10",
    )
    kills = 0
    for _ in range(3):
        _wait_for_campaign(db, proc)
        time.sleep(rng.uniform(0.05, 0.6))
        if proc.poll() is not None:
            break
        proc.kill()
        proc.wait()
        kills += 1
        in_flight_at_kills |= _in_flight(db)
        proc = _run("campaign", "resume", "--db", str(db), "--quiet")
    assert proc.wait(timeout=120) in (0, 6)
    assert kills >= 1, "the campaign finished before the first kill; slow it down"
    # Finish whatever the last resume left (it should be nothing).
    final = subprocess.run(
        [sys.executable, "-m", "phonecast", "campaign", "list", "--db", str(db)],
        capture_output=True,
        text=True,
    )
    assert "running" not in final.stdout
    with sqlite3.connect(db) as conn:
        states = Counter(r[0] for r in conn.execute("SELECT state FROM phones"))
    assert states == {"confirmed": PHONES}, states
    fetched = Counter(
        json.loads(line)["phone"]
        for line in events.read_text().splitlines()
        if '"fetch_started"' in line
    )
    assert len(fetched) == PHONES
    duplicates = {phone for phone, n in fetched.items() if n > 1}
    assert duplicates <= in_flight_at_kills, duplicates - in_flight_at_kills
