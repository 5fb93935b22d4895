"""`phonecast alert`'s numeric options: checked while the command line is
read, so a bad one is one line and exit 2 before a store or an inventory is
touched (a NaN rate once made the limiter spin, ``inf`` overflowed timers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from phonecast.cli import cli


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--rate", "nan"),
        ("--rate", "-1"),
        ("--rate", "inf"),
        ("--rate", "2e6"),
        ("--rate", "fast"),
        ("--timeout", "0"),
        ("--timeout", "nan"),
        ("--timeout", "3601"),
        ("--deadline", "-5"),
        ("--deadline", "inf"),
        ("--deadline", "1e300"),
        ("--confirm-timeout", "-1"),
        ("--confirm-timeout", "nan"),
        ("--confirm-timeout", "1e300"),
    ],
)
def test_a_bad_number_is_one_line_exit_2_and_nothing_is_stored(
    tmp_path: Path, option: str, value: str
) -> None:
    inventory = tmp_path / "phones.csv"
    inventory.write_text("name,uri,password\np1,sip:1001@127.0.0.1:1,pw\n")
    db = tmp_path / "c.db"
    result = CliRunner().invoke(
        cli,
        ["alert", "--inventory", str(inventory), "--text", "hi", "--db", str(db), option, value],
    )
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("phonecast:")]
    assert len(lines) == 1 and f"bad {option} {value!r}" in lines[0], result.output
    assert "Traceback" not in result.output
    assert not db.exists()


@pytest.mark.parametrize(
    ("option", "value"),
    [("--rate", "0"), ("--rate", "250.5"), ("--confirm-timeout", "0"), ("--deadline", "0.5")],
)
def test_the_edges_that_mean_something_are_taken(option: str, value: str) -> None:
    """0 is "no limit" for --rate and "do not wait" for --confirm-timeout;
    the command goes on to the inventory (absent here: its own error)."""
    result = CliRunner().invoke(
        cli, ["alert", "--inventory", "/nonexistent.csv", "--text", "hi", option, value]
    )
    assert result.exit_code == 2, result.output
    assert f"bad {option}" not in result.output
    assert "nonexistent.csv" in result.output
