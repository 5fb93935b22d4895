"""``campaign resume`` after the inventory was edited: said, never a traceback."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from phonecast.campaign.store import CampaignStore
from phonecast.cli import cli
from phonecast.cli.campaign_cmd import text_alert_params


def _campaign(tmp_path: Path, rows: str) -> tuple[Path, Path, str]:
    inventory = tmp_path / "phones.csv"
    inventory.write_text("name,target,user,password\n" + rows)
    params = text_alert_params(inventory, title="t", text="x", timeout=0.2, confirm_timeout=0.2)
    params["options"]["retries"] = 0
    db = tmp_path / "c.db"
    store = CampaignStore(db)
    phones = [("a", "sip:1001@127.0.0.1:9", None), ("b", "sip:1002@127.0.0.1:9", None)]
    cid = store.create(params, phones)
    store.close()
    return inventory, db, cid


def _resume(db: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["campaign", "resume", "--db", str(db), "--quiet", *args])


def test_an_inventory_left_with_only_its_header_is_said(tmp_path: Path) -> None:
    inventory, db, cid = _campaign(tmp_path, "")
    run = _resume(db)
    assert run.exit_code == 2, run.output  # was an IndexError traceback
    assert run.stderr.splitlines()[-1] == (
        f"phonecast: none of campaign {cid}'s phones is in its inventory {inventory} any more"
    )


def test_invalid_rows_are_reported_as_alert_reports_them(tmp_path: Path) -> None:
    inventory, db, _ = _campaign(tmp_path, "a,sip:1001@127.0.0.1:9,,pw\nb,nonsense,,pw\n")
    run = _resume(db)
    assert run.exit_code == 2, run.output
    assert f"{inventory}:3: [target]" in run.stderr
    assert "1 invalid row(s)" in run.stderr and "--skip-invalid" in run.stderr


def test_a_changed_target_is_said_and_the_report_names_the_one_pushed(tmp_path: Path) -> None:
    _, db, cid = _campaign(tmp_path, "a,sip:1001@127.0.0.1:9,,pw\nb,sip:1002@127.0.0.1:7,,pw\n")
    run = _resume(db, "--json")
    assert run.exit_code == 6, run.output
    assert "1 phone(s) have another target" in run.stderr
    assert "b: sip:1002@127.0.0.1:9 -> sip:1002@127.0.0.1:7" in run.stderr
    targets = {p.name: p.target for p in CampaignStore(db).phones(cid)}
    assert targets == {"a": "sip:1001@127.0.0.1:9", "b": "sip:1002@127.0.0.1:7"}
