"""One live process at a time runs a campaign; a dead one blocks nothing."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from phonecast.campaign.lock import (
    BUSY_PAUSE,
    CampaignBusy,
    campaign_lock,
    is_live,
    lock_path,
)


def test_a_campaign_held_by_a_live_process_is_refused_and_freed_when_it_ends(
    tmp_path: Path,
) -> None:
    db = tmp_path / "c.db"
    with campaign_lock(db, "cid") as path:
        assert path == lock_path(db, "cid") and path.exists()
        busy = pytest.raises(CampaignBusy, match=r"campaign cid is being run by process \d+")
        with busy, campaign_lock(db, "cid"):
            pass
        with campaign_lock(db, "other"):  # another campaign of the store: its own lock
            pass
    assert not path.exists()
    with campaign_lock(db, "cid"):
        pass


def test_an_owner_killed_with_sigkill_does_not_block(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    code = f"""
import os, signal
from phonecast.campaign.lock import campaign_lock
with campaign_lock({str(db)!r}, "cid"):
    print("held", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL and proc.stdout == "held\n"
    assert lock_path(db, "cid").exists()  # left behind, but nobody holds it
    assert not is_live(db, "cid")
    with campaign_lock(db, "cid"):
        assert is_live(db, "cid")
    assert not is_live(db, "cid")


def test_is_live_without_a_lock_file_is_false_and_never_makes_one(tmp_path: Path) -> None:
    assert not is_live(tmp_path / "c.db", "cid")
    assert not lock_path(tmp_path / "c.db", "cid").exists()


def test_a_run_starting_while_a_probe_holds_the_lock_waits_it_out(tmp_path: Path) -> None:
    """``campaign list`` probes with a shared lock for an instant; a resume
    starting in that instant must not call the campaign busy."""
    db = tmp_path / "c.db"
    path = lock_path(db, "cid")
    path.write_text("")
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)
    threading.Timer(BUSY_PAUSE * 1.5, os.close, (fd,)).start()
    with campaign_lock(db, "cid"):
        assert is_live(db, "cid")


def _stored_campaign(tmp_path: Path, inventory_target: str) -> tuple[Path, str]:
    """A store holding one unfinished campaign of one phone recorded at
    ``sip:1001@127.0.0.1:9``, whose inventory now names ``inventory_target``."""
    from phonecast.campaign.store import CampaignStore

    inventory = tmp_path / "phones.csv"
    inventory.write_text(f"name,target,user,password\na,{inventory_target},,pw\n")
    db = tmp_path / "c.db"
    cid = CampaignStore(db).create(
        {
            "inventory": str(inventory),
            "text": "x",
            "title": "t",
            "file": None,
            "url": None,
            "body": "url",
            "group_by": "building",
            "confirm": False,
            "serve": None,
            "public_url": None,
            "options": {
                "concurrency": 1,
                "rate": 0.0,
                "retries": 0,
                "timeout": 0.2,
                "deadline": None,
                "confirm_timeout": 0.2,
            },
        },
        [("a", "sip:1001@127.0.0.1:9", None)],
    )
    return db, cid


@pytest.mark.parametrize("inventory_target", ["sip:1001@127.0.0.1:9", "sip:1001@127.0.0.1:10"])
def test_resume_while_another_process_runs_the_campaign_is_refused(
    tmp_path: Path, inventory_target: str
) -> None:
    """Resume while the alert still ran pushed the campaign's phones twice;
    and it recorded an edited inventory's new target in the running
    campaign before it found the lock held."""
    from click.testing import CliRunner

    from phonecast.campaign.store import CampaignStore
    from phonecast.cli import cli

    db, cid = _stored_campaign(tmp_path, inventory_target)
    with campaign_lock(db.resolve(), cid):
        run = CliRunner().invoke(cli, ["campaign", "resume", "--db", str(db), "--quiet"])
    assert run.exit_code == 2, run.output
    assert f"phonecast: campaign {cid} is being run by process " in run.stderr
    assert "another target" not in run.stderr
    store = CampaignStore(db)
    assert store.counts(cid) == {"queued": 1}  # nothing pushed
    assert [p.target for p in store.phones(cid)] == ["sip:1001@127.0.0.1:9"]


def test_campaign_list_and_show_call_a_killed_run_interrupted(tmp_path: Path) -> None:
    """A run killed with SIGKILL leaves "running" in the store; nobody runs
    it, and the listing says so (and a live one is still "running")."""
    import json

    from click.testing import CliRunner

    from phonecast.campaign.store import CampaignStore
    from phonecast.cli import cli

    db = tmp_path / "c.db"
    cid = CampaignStore(db).create({"options": {}}, [("a", "sip:1001@127.0.0.1:9", None)])
    listed = CliRunner().invoke(cli, ["campaign", "list", "--db", str(db)], terminal_width=200)
    assert listed.exit_code == 0, listed.output
    assert "interrupted" in listed.output and "running" not in listed.output
    with campaign_lock(db.resolve(), cid):
        listed = CliRunner().invoke(cli, ["campaign", "list", "--db", str(db)], terminal_width=200)
        shown = CliRunner().invoke(cli, ["campaign", "show", cid, "--db", str(db)])
    assert "running" in listed.output and "interrupted" not in listed.output
    assert json.loads(shown.output)["status"] == "running"
    shown = CliRunner().invoke(cli, ["campaign", "show", cid, "--db", str(db)])
    assert json.loads(shown.output)["status"] == "interrupted"
