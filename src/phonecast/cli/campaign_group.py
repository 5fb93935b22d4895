"""``phonecast campaign list | show | report | resume``: the campaigns in the
store, after (or while) ``phonecast alert`` ran them (:mod:`campaign_cmd`)."""

from __future__ import annotations

import json
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from phonecast.campaign.inventory import InventoryError, Phone, load_inventory
from phonecast.campaign.lock import is_live
from phonecast.campaign.report import Report, make_report
from phonecast.campaign.store import CampaignStore
from phonecast.cli.campaign_cmd import (
    DEFAULT_DB,
    content_body,
    execute_campaign,
    run_campaign,
    store_errors_said,
)
from phonecast.cli.campaign_views import (
    check_report,
    emit_report,
    finish,
)
from phonecast.cli.checks import (
    fail,
    redact_uri,
)


@click.group("campaign")
def campaign() -> None:
    """List, inspect, report and resume campaigns in the store."""


@campaign.command("list")
@click.option("--db", default=DEFAULT_DB, show_default=True)
@store_errors_said
def list_cmd(db: str) -> None:
    """Campaigns, newest first."""
    store = _open(db)
    table = Table()
    for col in ("id", "status", "phones", "confirmed", "failed"):
        table.add_column(col)
    for row in store.campaigns():
        counts = store.counts(row.id)
        table.add_row(
            row.id,
            shown_status(store, row.id, row.status),
            str(sum(counts.values())),
            str(counts.get("confirmed", 0)),
            str(counts.get("failed", 0)),
        )
    Console().print(table)


def shown_status(store: CampaignStore, cid: str, status: str) -> str:
    """The status to show: a campaign the store calls "running" that no live
    process holds was killed (SIGKILL, a crash, a power cut) and is
    "interrupted" until ``campaign resume`` takes it up."""
    if status == "running" and not is_live(store.path.resolve(), cid):
        return "interrupted"
    return status


def _open(db: str, *, readonly: bool = True) -> CampaignStore:
    """The store for a command; only read (``list``, ``show``, ``report``):
    opened read-only, so a store on a read-only filesystem still reports."""
    if not Path(db).exists():
        fail(f"no campaign store at {db}")
    return CampaignStore(db, readonly=readonly)


@campaign.command("show")
@click.argument("cid")
@click.option("--db", default=DEFAULT_DB, show_default=True)
@store_errors_said
def show_cmd(cid: str, db: str) -> None:
    """A campaign's parameters and counts."""
    store = _open(db)
    row = store.campaign(cid)
    if row is None:
        fail(f"no campaign {cid} in {db}")
    click.echo(
        json.dumps(
            {
                "id": row.id,
                "status": shown_status(store, cid, row.status),
                # The store keeps the real URLs for a resume; shown, a
                # password in them is not.
                "params": {
                    k: redact_uri(v) if k in ("url", "public_url") and isinstance(v, str) else v
                    for k, v in row.params.items()
                },
                "counts": store.counts(cid),
            },
            indent=2,
        )
    )


@campaign.command("report")
@click.argument("cid")
@click.option("--db", default=DEFAULT_DB, show_default=True)
@click.option("--report", "report_path", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
@store_errors_said
def report_cmd(cid: str, db: str, report_path: str | None, as_json: bool) -> None:
    """A campaign's report (table, CSV or JSON)."""
    check_report(report_path)
    store = _open(db)
    if store.campaign(cid) is None:
        fail(f"no campaign {cid} in {db}")
    emit_report(make_report(cid, store.phones(cid)), report_path, as_json)


@campaign.command("resume")
@click.argument("cid", required=False)
@click.option("--db", default=DEFAULT_DB, show_default=True)
@click.option("--report", "report_path", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
@click.option("--quiet", is_flag=True)
@click.option("--skip-invalid", is_flag=True, help="Resume despite invalid inventory rows.")
@store_errors_said
def resume_cmd(
    cid: str | None,
    db: str,
    report_path: str | None,
    as_json: bool,
    quiet: bool,
    skip_invalid: bool,
) -> None:
    """Finish a campaign after a crash (default: the latest unfinished one).

    Phones already confirmed or failed are left alone; those queued or in
    flight at the crash are pushed (again).
    """
    check_report(report_path)
    store = _open(db, readonly=False)
    row = store.campaign(cid) if cid else store.latest_unfinished()
    if row is None:
        fail(f"no campaign {cid}" if cid else "no unfinished campaign to resume")
    params = row.params
    cid = row.id

    def prepare() -> Coroutine[Any, Any, Report]:
        phones = _resumable_phones(store, cid, params, skip_invalid)
        if not (quiet or as_json):
            click.echo(f"resuming campaign {cid}", err=True)
        content = content_body(params)
        return execute_campaign(
            store, cid, phones, params, content, quiet or as_json, as_json and not quiet
        )

    report = run_campaign(store, cid, prepare)
    finish(store, report, params, report_path, as_json)


def _resumable_phones(
    store: CampaignStore, cid: str, params: dict[str, Any], skip_invalid: bool
) -> list[Phone]:
    """The campaign's phones as its inventory has them now (the store keeps
    no passwords), checked as ``alert`` checks them.

    The inventory may have been edited since the run: its invalid rows are
    reported (and refused without ``--skip-invalid``), phones it no longer
    has are said and left as they are, and a phone whose target changed is
    said and pushed at the new one, which the store then records, so the
    report names the target actually pushed."""
    inventory = params["inventory"]
    try:
        inv = load_inventory(inventory)
    except InventoryError as exc:
        fail(f"cannot re-read the campaign's inventory: {exc}")
    for problem in inv.problems:
        click.echo(f"{problem}", err=True)
    if inv.problems and not skip_invalid:
        fail(f"{len(inv.problems)} invalid row(s) in {inventory}; fix them or pass --skip-invalid")
    rows = {r.name: r for r in store.phones(cid)}
    phones = [p for p in inv.phones if p.name in rows]
    missing = len(rows) - len(phones)
    if missing:
        click.echo(
            f"phonecast: {missing} phone(s) no longer in the inventory are left as they are",
            err=True,
        )
    if not phones:
        fail(f"none of campaign {cid}'s phones is in its inventory {inventory} any more")
    pending = {"queued", "sending"} | ({"accepted"} if params["confirm"] else set())
    moved = [
        (p.name, str(p.target))
        for p in phones
        if rows[p.name].state in pending and rows[p.name].target != str(p.target)
    ]
    if moved:
        first = rows[moved[0][0]]
        click.echo(
            f"phonecast: {len(moved)} phone(s) have another target in {inventory} than the"
            f" campaign recorded (e.g. {first.name}: {first.target} -> {moved[0][1]});"
            " they are pushed at the new one",
            err=True,
        )
        store.set_targets(cid, moved)
    return phones
