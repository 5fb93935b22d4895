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


def _alert(tmp_path: Path, *args: str) -> tuple[int, str, Path]:
    inventory = tmp_path / "phones.csv"
    inventory.write_text("name,target,password\np1,sip:1001@127.0.0.1:1,pw\n")
    db = tmp_path / "c.db"
    result = CliRunner().invoke(
        cli, ["alert", "--inventory", str(inventory), "--db", str(db), *args]
    )
    return result.exit_code, result.output, db


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--url", "ftp://host/x"], "bad --url"),
        (["--url", "http://admin:URLSECRET@h/a b.xml"], "bad --url"),
        (["--text", "hi", "--serve", "127.0.0.1:abc"], "bad --serve"),
        (["--text", "hi", "--serve", "localhost"], "bad --serve"),
        (["--text", "hi", "--serve", "127.0.0.1:99999"], "bad --serve"),
        (["--text", "hi", "--serve", "[not-v6]:80"], "bad --serve"),
        (["--text", "hi", "--serve", "bad host:80"], "bad --serve"),
        (["--text", "hi", "--serve", "0.0.0.0:8080"], "give --public-url too"),
        (["--text", "hi", "--serve", "[::]:8080"], "give --public-url too"),
        (["--text", "hi", "--serve", "::1:0"], "goes in brackets: [::1]:0"),
        (["--text", "hi", "--public-url", "ftp://h/"], "bad --public-url"),
        (["--text", "hi", "--public-url", "http://u:PUBSECRET@/"], "bad --public-url"),
    ],
)
def test_a_bad_url_or_serve_address_is_said_once_before_anything_is_stored(
    tmp_path: Path, args: list[str], said: str
) -> None:
    """A bad --url was found by each worker (one line per phone, the store
    left with every phone "sending"); a bad --serve port was a traceback
    after the campaign was stored; --serve 0.0.0.0 gave phones
    http://0.0.0.0/ URLs."""
    code, output, db = _alert(tmp_path, *args)
    assert code == 2, output
    lines = [ln for ln in output.splitlines() if ln.startswith("phonecast:")]
    assert len(lines) == 1 and said in lines[0], output
    assert "Traceback" not in output and "SECRET" not in output
    assert not db.exists()


def test_campaign_show_hides_the_passwords_of_the_stored_urls(tmp_path: Path) -> None:
    from phonecast.campaign.store import CampaignStore

    db = tmp_path / "c.db"
    params = {
        "url": "http://admin:URLSECRET@127.0.0.1:9/x.xml",
        "public_url": "http://u:PUBSECRET@h/",
        "options": {},
    }
    cid = CampaignStore(db).create(params, [("a", "sip:1001@127.0.0.1:9", None)])
    shown = CliRunner().invoke(cli, ["campaign", "show", cid, "--db", str(db)])
    assert shown.exit_code == 0, shown.output
    assert "SECRET" not in shown.output and "http://admin:***@127.0.0.1:9/x.xml" in shown.output
    assert CampaignStore(db).campaign(cid).params["url"] == params["url"]  # type: ignore[union-attr]


def test_a_report_to_dev_stdout_goes_to_stdout_piped_or_redirected(tmp_path: Path) -> None:
    """Resolved first, /dev/stdout became pipe:[N] (no such file, exit 2), or
    the redirected file, renamed over: the JSON after it was lost."""
    import subprocess
    import sys

    from phonecast.campaign.store import CampaignStore

    db = tmp_path / "c.db"
    cid = CampaignStore(db).create({"options": {}}, [("a", "sip:1001@127.0.0.1:9", None)])
    command = [sys.executable, "-m", "phonecast", "campaign", "report", cid, "--db", str(db)]
    command += ["--report", "/dev/stdout", "--json"]
    piped = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.startswith("name,target,outcome") and f'"campaign": "{cid}"' in piped.stdout
    out = tmp_path / "out.txt"
    with out.open("w") as fh:
        redirected = subprocess.run(command, stdout=fh, stderr=subprocess.PIPE, timeout=60)
    assert redirected.returncode == 0, redirected.stderr
    text = out.read_text()
    assert text.startswith("name,target,outcome") and f'"campaign": "{cid}"' in text
