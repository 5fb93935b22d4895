"""`phonecast alert` end to end through the CLI: JSON report, progress, exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.interop.peers import emulated_phone, free_udp_port, phonecast
from tests.ports import free_ports


def test_alert_json_report_progress_and_exit_codes(tmp_path: Path) -> None:
    ports = free_ports(2)
    inventory = tmp_path / "phones.csv"
    inventory.write_text(
        "name,target,user,password,tags\n"
        f"a,sip:1001@127.0.0.1:{ports[0]},,secret,building=B\n"
        f"b,sip:1002@127.0.0.1:{ports[1]},,secret,building=B\n"
    )
    with emulated_phone(
        f"1001:secret@{ports[0]}", f"1002:secret@{ports[1]}", events=tmp_path / "ev.jsonl"
    ):
        ok = phonecast(
            "alert",
            "--inventory",
            str(inventory),
            "--text",
            "Drill",
            "--json",
            "--db",
            str(tmp_path / "c.db"),
            "--report",
            str(tmp_path / "r.csv"),
        )
        assert ok.returncode == 0, ok.stderr
        doc = json.loads(ok.stdout)
        assert doc["summary"]["confirmed"] == 2
        progress = [json.loads(ln) for ln in ok.stderr.splitlines() if ln.startswith("{")]
        assert progress and {"counts", "rate", "eta"} <= set(progress[0]["progress"])
        assert {p["name"] for p in doc["phones"]} == {"a", "b"}
        assert (tmp_path / "r.csv").read_text().count(",confirmed,") == 2
        listed = phonecast("campaign", "list", "--db", str(tmp_path / "c.db"))
        assert doc["campaign"] in listed.stdout and "finished" in listed.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("name,target,user,password\nx,nonsense,,pw\n")
    refused = phonecast(
        "alert", "--inventory", str(bad), "--text", "x", "--db", str(tmp_path / "c2.db")
    )
    assert refused.returncode == 2 and f"{bad}:2: [target]" in refused.stderr
    down = tmp_path / "down.csv"
    down.write_text(f"name,target,user,password\nz,sip:1@127.0.0.1:{free_udp_port()},,pw\n")
    incomplete = phonecast(
        "alert",
        "--inventory",
        str(down),
        "--text",
        "x",
        "--json",
        "--timeout",
        "0.5",
        "--retries",
        "0",
        "--confirm-timeout",
        "0.5",
        "--db",
        str(tmp_path / "c3.db"),
    )
    assert incomplete.returncode == 6
    # Its closed port answers with an ICMP unreachable: a transport error at
    # once (RFC 3261 18.4), reported as such rather than as a timeout.
    assert json.loads(incomplete.stdout)["summary"]["unreachable"] == 1


def test_a_concurrency_the_file_limit_cannot_carry_is_lowered_and_said(tmp_path: Path) -> None:
    """At a 160-file limit, UDP, one file per push in flight (the phone's
    fetch) beside the 64 kept: ``--concurrency 500`` runs as 96, says so
    (as JSON with --json), and every phone is still confirmed."""
    import resource
    import subprocess
    import sys

    port = free_udp_port()
    inventory = tmp_path / "phones.csv"
    inventory.write_text(f"name,target,user,password\na,sip:1001@127.0.0.1:{port},,secret\n")

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (160, 160))

    with emulated_phone(f"1001:secret@{port}", events=tmp_path / "ev.jsonl"):
        run = subprocess.run(
            [sys.executable, "-m", "phonecast", "alert", "--inventory", str(inventory),
             "--text", "Drill", "--concurrency", "500", "--json", "--db", str(tmp_path / "c.db")],
            capture_output=True, text=True, timeout=60, preexec_fn=low_limit,
        )  # fmt: skip
    assert run.returncode == 0, run.stderr
    warnings = [
        json.loads(line)["warning"]
        for line in run.stderr.splitlines()
        if line.startswith('{"warning"')
    ]
    assert warnings == [
        "--concurrency 500 lowered to 96: this process may open 160 files, and each push in"
        " flight may hold one (raise the limit with ulimit -n)"
    ]
    assert json.loads(run.stdout)["summary"]["confirmed"] == 1


def test_the_affordable_concurrency_counts_two_files_a_push_over_streams() -> None:
    from phonecast.campaign.runner import affordable_concurrency

    assert affordable_concurrency(1000, 1024, streams=True) == 480
    assert affordable_concurrency(1000, 1024, streams=False) == 960
    assert affordable_concurrency(200, 1024, streams=True) == 200
    assert affordable_concurrency(50, 10, streams=True) == 1  # never none


def test_max_connections_caps_the_pushers_connections_and_pushes_wait_for_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight TCP phones, eight pushes at once, two connections allowed: each
    push past the second waits for a connection to come free (an idle one is
    closed for it) instead of failing, and every phone confirms."""
    import dataclasses
    import signal

    from click.testing import CliRunner

    from phonecast.campaign.inventory import load_inventory, write_inventory_csv
    from phonecast.cli import campaign_cmd, cli
    from phonecast.cli.demo_cmd import start_fleet
    from phonecast.net.endpoint import SipEndpoint

    made: list[SipEndpoint] = []

    def recorded(**kwargs: Any) -> SipEndpoint:
        endpoint = SipEndpoint(**kwargs)
        made.append(endpoint)
        return endpoint

    monkeypatch.setattr(campaign_cmd, "SipEndpoint", recorded)
    events = tmp_path / "fleet.jsonl"
    fleet, inventory = start_fleet(tmp_path, 8, events=events, duration=60, options=["--tcp"])
    try:
        phones = load_inventory(inventory).phones
        write_inventory_csv(inventory, [dataclasses.replace(p, transport="tcp") for p in phones])
        run = CliRunner().invoke(
            cli,
            ["alert", "--inventory", str(inventory), "--text", "Drill", "--json",
             "--concurrency", "8", "--max-connections", "2", "--retries", "0",
             "--db", str(tmp_path / "c.db")],
            env={"PHONECAST_PASSWORD": None},
        )  # fmt: skip
        assert run.exit_code == 0, run.output
        assert json.loads(run.stdout)["summary"]["confirmed"] == 8
    finally:
        fleet.send_signal(signal.SIGTERM)
        fleet.wait(timeout=10)
    counters = made[0]._streams["tcp"].counters
    # Without the cap nothing is evicted.  With it, not always six: a
    # connection between its 401 and the authenticated retry carries no
    # transaction, and a waiting dial that picked it passes the cap by one
    # instead when the retry takes it up again.
    assert counters.evicted >= 1 and counters.refused == 0
    seen = [json.loads(line) for line in events.read_text().splitlines()]
    assert {e["transport"] for e in seen if e["event"] == "request"} == {"tcp"}
    assert campaign_cmd.stream_limits({"options": {}}).max_connections is None  # stored before
    refused = phonecast(
        "alert", "--inventory", str(inventory), "--text", "x", "--max-connections", "0"
    )
    assert refused.returncode == 2 and "--max-connections" in refused.stderr


def test_a_store_failing_mid_run_is_one_line_exit_7_and_the_campaign_resumable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that cannot commit a batch ``sending`` (locked past its busy
    timeout, disk full) once left the campaign "finished", phones unsent,
    exit 6 or a traceback; now one line naming the store, how to resume,
    exit 7, and the campaign is still the one ``resume`` takes."""
    from click.testing import CliRunner

    from phonecast.campaign.store import CampaignStore, StoreError
    from phonecast.cli import cli

    def locked(self: CampaignStore, *args: Any, **kwargs: Any) -> None:
        raise StoreError(self.path, "database is locked")

    ports = free_ports(2)
    inventory = tmp_path / "phones.csv"
    inventory.write_text(
        "name,target,user,password\n"
        f"a,sip:1001@127.0.0.1:{ports[0]},,pw\nb,sip:1002@127.0.0.1:{ports[1]},,pw\n"
    )
    db = tmp_path / "c.db"
    monkeypatch.setattr(CampaignStore, "mark_sending", locked)
    run = CliRunner().invoke(
        cli, ["alert", "--inventory", str(inventory), "--text", "x", "--quiet", "--db", str(db)]
    )
    assert run.exit_code == 7, run.output
    (line,) = run.stderr.splitlines()
    assert line.startswith(f"phonecast: campaign store {db}: database is locked; campaign ")
    assert "phonecast campaign resume " in line and "Traceback" not in run.output
    store = CampaignStore(db)
    row = store.latest_unfinished()
    assert row is not None and store.counts(row.id) == {"queued": 2}


def test_a_fetch_answered_while_the_content_server_stops_is_committed_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A phone's page written after the run's last flush, as the server shut
    down, was left buffered and lost: the report said the phone was not
    reached, and a resume pushed it again.  The fetch is made here from
    inside ``stop``, where the race puts it."""
    from click.testing import CliRunner

    from phonecast.campaign.store import CampaignStore
    from phonecast.cli import cli
    from phonecast.content import ContentServer, Fetch

    stop = ContentServer.stop

    async def stop_after_a_late_fetch(self: ContentServer) -> None:
        token, item = next((t, i) for t, i in self._items.items() if i.phone == "a")
        assert self._on_fetch is not None
        self._on_fetch(Fetch(item.phone, token, 1.0, "127.0.0.1", 200))
        await stop(self)

    monkeypatch.setattr(ContentServer, "stop", stop_after_a_late_fetch)
    ports = free_ports(2)  # nothing listens: both pushes are unreachable
    inventory = tmp_path / "phones.csv"
    inventory.write_text(
        "name,target,user,password\n"
        f"a,sip:1001@127.0.0.1:{ports[0]},,pw\nb,sip:1002@127.0.0.1:{ports[1]},,pw\n"
    )
    db = tmp_path / "c.db"
    run = CliRunner().invoke(
        cli,
        ["alert", "--inventory", str(inventory), "--text", "x", "--json", "--quiet",
         "--retries", "0", "--timeout", "1", "--db", str(db)],
    )  # fmt: skip
    report = json.loads(run.stdout)
    assert {p["name"]: p["outcome"] for p in report["phones"]}["a"] == "confirmed", report
    store = CampaignStore(db, readonly=True)
    (row,) = store.campaigns()
    assert store.fetch_count(row.id, "a") == 1
    assert {p.name: p.state for p in store.phones(row.id)}["a"] == "confirmed"


def test_a_late_fetch_the_store_cannot_commit_is_said_with_its_phone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The campaign is finished by then: the failure once said "left
    unfinished, resume it", which would push the phone again."""
    from click.testing import CliRunner

    from phonecast.campaign.store import CampaignStore, StoreError
    from phonecast.cli import cli
    from phonecast.content import ContentServer, Fetch

    stop, flush = ContentServer.stop, CampaignStore.flush
    stopped = [False]

    async def stop_after_a_late_fetch(self: ContentServer) -> None:
        token, item = next((t, i) for t, i in self._items.items() if i.phone == "a")
        assert self._on_fetch is not None
        self._on_fetch(Fetch(item.phone, token, 1.0, "127.0.0.1", 200))
        stopped[0] = True
        await stop(self)

    def flush_failing_once_stopped(self: CampaignStore) -> None:
        if stopped[0] and self.pending:
            raise StoreError(self.path, "disk I/O error")
        flush(self)

    monkeypatch.setattr(ContentServer, "stop", stop_after_a_late_fetch)
    monkeypatch.setattr(CampaignStore, "flush", flush_failing_once_stopped)
    ports = free_ports(1)
    inventory = tmp_path / "phones.csv"
    inventory.write_text(f"name,target,user,password\na,sip:1001@127.0.0.1:{ports[0]},,pw\n")
    db = tmp_path / "c.db"
    run = CliRunner().invoke(
        cli,
        ["alert", "--inventory", str(inventory), "--text", "x", "--quiet",
         "--retries", "0", "--timeout", "1", "--db", str(db)],
    )  # fmt: skip
    assert "left unfinished" not in run.stderr and "Traceback" not in run.output
    (line,) = [s for s in run.stderr.splitlines() if "disk I/O error" in s]
    assert line.startswith(f"phonecast: campaign store {db}: disk I/O error: the fetches of 1 ")
    assert line.endswith("though they have their page: a")
    assert run.exit_code != 7
