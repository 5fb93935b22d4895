"""The campaign store: transitions, grouped commits, what survives a kill."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from phonecast.campaign.store import CampaignStore, Result, StoreError


def _store(tmp_path: Path) -> tuple[CampaignStore, str]:
    store = CampaignStore(tmp_path / "c.db")
    cid = store.create(
        {"text": "Fire drill"}, [(f"p{i}", f"sip:{i}@127.0.0.1", "B") for i in range(5)], now=100.0
    )
    return store, cid


def test_lifecycle(tmp_path: Path) -> None:
    store, cid = _store(tmp_path)
    assert store.counts(cid) == {"queued": 5}
    assert store.latest_unfinished() is not None
    store.set_tokens(cid, [("p0", "tok0"), ("p1", "tok1")])
    store.mark_sending(cid, ["p0", "p1", "p2"], now=101.0)
    assert [p.name for p in store.in_flight(cid)] == ["p0", "p1", "p2"]
    store.record(cid, Result("p0", "accepted", code=200, attempts=1, latency_ms=3.5, at=101.1))
    store.record(cid, Result("p1", "failed", "auth_rejected", 401, "Unauthorized", 1))
    store.record_fetch(cid, "p0", 101.2, "127.0.0.1")
    assert store.pending == 3
    store.flush()
    assert store.pending == 0
    rows = {p.name: p for p in store.phones(cid)}
    assert rows["p0"].state == "confirmed" and rows["p0"].outcome == "confirmed"
    assert rows["p0"].code == 200 and rows["p0"].confirmed_at == 101.2
    assert rows["p0"].accepted_at == 101.1 and rows["p0"].token == "tok0"
    assert rows["p1"].outcome == "auth_rejected" and rows["p1"].code == 401
    assert rows["p2"].state == "sending" and rows["p2"].sends == 1
    assert store.fetch_count(cid) == 1 and store.fetch_count(cid, "p0") == 1
    # A late failure never overrides a confirmation.
    store.record(cid, Result("p0", "failed", "timeout"))
    store.flush()
    assert store.phones(cid, ["confirmed"])[0].name == "p0"
    store.finish(cid, now=200.0)
    assert store.latest_unfinished() is None
    assert store.campaign(cid).status == "finished"  # type: ignore[union-attr]
    store.close()


def test_unflushed_results_are_lost_but_phones_stay_in_flight(tmp_path: Path) -> None:
    store, cid = _store(tmp_path)
    store.mark_sending(cid, ["p0", "p1"], now=1.0)
    store.record(cid, Result("p0", "accepted", code=200))  # buffered, never flushed
    # Another connection (as after a crash) sees the committed state only.
    other = CampaignStore(tmp_path / "c.db")
    assert [p.name for p in other.in_flight(cid)] == ["p0", "p1"]
    assert other.counts(cid) == {"sending": 2, "queued": 3}
    other.close()


def test_committed_state_survives_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    code = f"""
import os, signal
from phonecast.campaign.store import CampaignStore, Result, StoreError
s = CampaignStore({str(db)!r})
cid = s.create({{}}, [("a", "sip:a@h", None), ("b", "sip:b@h", None)], now=1.0)
s.mark_sending(cid, ["a", "b"], now=2.0)
s.record(cid, Result("a", "accepted", code=200))
s.flush()
print(cid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == -9
    cid = proc.stdout.strip()
    store = CampaignStore(db)
    rows = {p.name: p.state for p in store.phones(cid)}
    assert rows == {"a": "accepted", "b": "sending"}
    store.close()


def test_a_failed_commit_keeps_the_buffered_writes(tmp_path: Path) -> None:
    import sqlite3

    import pytest

    store, cid = _store(tmp_path)
    store.record(cid, Result("p0", "accepted", code=200, attempts=1, at=101.0))
    store.record_fetch(cid, "p1", 101.5, "127.0.0.1")
    blocker = sqlite3.connect(tmp_path / "c.db", timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    store._db.execute("PRAGMA busy_timeout=0")
    with pytest.raises(StoreError, match=r"c\.db: database is locked"):
        store.flush()
    assert store.pending == 2  # nothing dropped
    blocker.rollback()
    blocker.close()
    store.flush()
    rows = {p.name: p for p in store.phones(cid)}
    assert rows["p0"].state == "accepted" and rows["p1"].state == "confirmed"
    assert store.fetch_count(cid, "p1") == 1


def test_states_give_each_phones_state_and_token(tmp_path: Path) -> None:
    store, cid = _store(tmp_path)
    store.set_tokens(cid, [("p0", "tok0")])
    store.mark_sending(cid, ["p1"], now=101.0)
    states = store.states(cid)
    assert states == {
        "p0": ("queued", "tok0"),
        "p1": ("sending", None),
        "p2": ("queued", None),
        "p3": ("queued", None),
        "p4": ("queued", None),
    }
    assert states == {r.name: (r.state, r.token) for r in store.phones(cid)}


def test_a_file_that_is_no_store_is_one_clear_error(tmp_path: Path) -> None:
    """Each of these was an sqlite3 traceback (or, a foreign database, our
    tables created inside it)."""
    import sqlite3

    import pytest

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(bytes(range(256)) * 32)
    good = tmp_path / "good.db"
    _store(tmp_path)[0].close()
    (tmp_path / "c.db").rename(good)
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(good.read_bytes()[:5000])
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE phones(id int, name text)")
    cases = {
        garbage: "not an SQLite database",
        truncated: "damaged or truncated",
        foreign: "not a phonecast campaign store (its tables: phones)",
        tmp_path: "is a directory, not a store file",
        tmp_path / "no" / "c.db": f"directory {tmp_path / 'no'} does not exist",
    }
    for path, problem in cases.items():
        for readonly in (False, True):
            with pytest.raises(StoreError) as caught:
                CampaignStore(path, readonly=readonly)
            assert str(caught.value).startswith(f"campaign store {path}: {problem}"), readonly
    with sqlite3.connect(foreign) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["phones"]


def test_an_older_store_without_sends_is_read_and_brought_up_to_date(tmp_path: Path) -> None:
    import sqlite3

    store, cid = _store(tmp_path)
    store.close()
    with sqlite3.connect(tmp_path / "c.db") as conn:
        conn.execute("ALTER TABLE phones DROP COLUMN sends")
    reader = CampaignStore(tmp_path / "c.db", readonly=True)
    assert {p.sends for p in reader.phones(cid)} == {0}
    writer = CampaignStore(tmp_path / "c.db")
    writer.mark_sending(cid, ["p0"], now=1.0)
    assert writer.phones(cid)[0].sends == 1


def test_a_store_opened_read_only_writes_nothing(tmp_path: Path) -> None:
    import pytest

    store, cid = _store(tmp_path)
    store.close()
    reader = CampaignStore(tmp_path / "c.db", readonly=True)
    assert reader.counts(cid) == {"queued": 5}
    with pytest.raises(StoreError, match="readonly database"):
        reader.mark_sending(cid, ["p0"], now=1.0)


def test_a_later_result_replaces_the_last_ones_code_and_reason(tmp_path: Path) -> None:
    """Accepted (200) in one run, timed out in its resume: reported "timeout"
    with code 200 and reason OK, kept from the first."""
    store, cid = _store(tmp_path)
    store.mark_sending(cid, ["p0"], now=101.0)
    store.record(cid, Result("p0", "accepted", None, 200, "OK", 1, 3.5, at=101.1))
    store.flush()
    store.mark_sending(cid, ["p0"], now=102.0)
    store.record(cid, Result("p0", "failed", "timeout", None, "no target answered", 3, None))
    store.flush()
    row = next(p for p in store.phones(cid) if p.name == "p0")
    assert (row.outcome, row.code, row.reason, row.latency_ms) == (
        "timeout",
        None,
        "no target answered",
        None,
    )


def test_a_fetch_committed_before_the_200_keeps_the_200s_details(tmp_path: Path) -> None:
    store, cid = _store(tmp_path)
    store.mark_sending(cid, ["p0"], now=101.0)
    store.record_fetch(cid, "p0", 101.2, "127.0.0.1")
    store.flush()
    store.record(cid, Result("p0", "accepted", None, 200, "OK", 1, 3.5, at=101.3))
    store.flush()
    row = next(p for p in store.phones(cid) if p.name == "p0")
    assert row.state == "confirmed" and (row.code, row.reason, row.attempts) == (200, "OK", 1)
    assert row.latency_ms == 3.5


def _on_a_read_only_mount(directory: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """``command`` run with ``directory`` bind-mounted read-only over itself,
    in a mount namespace of its own (nothing outside it sees the mount)."""
    import os
    import shlex
    import shutil

    import pytest

    if shutil.which("unshare") is None or shutil.which("mount") is None:
        reason = "unshare and mount (util-linux) are needed for a read-only mount"
        if os.environ.get("PHONECAST_REQUIRE_PEERS"):
            pytest.fail(reason)
        pytest.skip(reason)
    d = shlex.quote(str(directory))
    script = f"mount --bind {d} {d} && mount -o remount,bind,ro {d} && cd {d} && " + shlex.join(
        command
    )
    run = subprocess.run(
        ["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=60
    )
    if "Operation not permitted" in run.stderr or "permission denied" in run.stderr:
        pytest.skip("this machine does not allow mount namespaces here")
    return run


def test_a_read_only_store_whose_log_holds_commits_is_said_not_shown_empty(
    tmp_path: Path,
) -> None:
    """Read where the WAL's shared-memory file cannot be made, a store was
    opened immutable, which ignores its -wal: a killed run's commits were
    missing and ``campaign list`` said the store was empty."""
    code = f"""
import os, signal
from phonecast.campaign.store import CampaignStore
store = CampaignStore({str(tmp_path / "c.db")!r})
store.create({{"x": 1}}, [("a", "sip:1@h", None)])
os.kill(os.getpid(), signal.SIGKILL)
"""
    subprocess.run([sys.executable, "-c", code], check=False, timeout=60)
    assert (tmp_path / "c.db-wal").stat().st_size > 0
    (tmp_path / "c.db-shm").unlink()
    phonecast = (sys.executable, "-m", "phonecast", "campaign", "list", "--db", "c.db")
    run = _on_a_read_only_mount(tmp_path, *phonecast)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "write-ahead log c.db-wal holds commits" in run.stderr
    # Checkpointed and closed, the same store reads there.
    CampaignStore(tmp_path / "c.db").close()
    assert not (tmp_path / "c.db-wal").exists() or (tmp_path / "c.db-wal").stat().st_size == 0
    run = _on_a_read_only_mount(tmp_path, *phonecast)
    assert run.returncode == 0 and "interrupted" in run.stdout, run.stdout + run.stderr
