"""What the campaign commands show and write: progress and report tables,
the report file, and the exit status a finished run ends with (apart from
``campaign_cmd``, which runs campaigns, to keep each module readable)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from phonecast.campaign.report import Report, check_report_path
from phonecast.campaign.runner import Progress
from phonecast.campaign.store import CampaignStore
from phonecast.cli.push_cmd import fail

EXIT_INCOMPLETE = 6


def check_report(report_path: str | None) -> None:
    """An unwritable ``--report`` said before anything is sent (exit 2)."""
    if report_path is None:
        return
    try:
        check_report_path(report_path)
    except OSError as exc:
        fail(f"cannot write the report {report_path}: {exc.strerror}")


def write_report(report: Report, report_path: str) -> None:
    try:
        report.write(report_path)
    except OSError as exc:
        fail(
            f"cannot write the report {report_path}: {exc.strerror}; it stays in the store"
            f" (phonecast campaign report {report.campaign} --report ...)"
        )


def progress_table(progress: Progress) -> Table:
    table = Table(title="campaign progress", show_header=True)
    for col in ("queued", "sending", "accepted", "confirmed", "failed", "rate/s", "ETA s"):
        table.add_column(col, justify="right")
    c = progress.counts
    eta = "-" if progress.eta is None else f"{progress.eta:.0f}"
    table.add_row(
        *(str(c.get(s, 0)) for s in ("queued", "sending", "accepted", "confirmed", "failed")),
        f"{progress.rate:.0f}",
        eta,
    )
    return table


def finish(
    store: CampaignStore,
    report: Report,
    params: dict[str, Any],
    report_path: str | None,
    as_json: bool,
) -> None:
    row = store.campaign(report.campaign)
    unsent = report.summary()["not_sent"]
    if row is not None and row.status == "stopped" and unsent:
        click.echo(
            f"phonecast: the dispatch deadline left {unsent} phone(s) not sent; campaign"
            f" {row.id} is stopped; phonecast campaign resume {row.id} --db {store.path}"
            " takes it up again (under the same --deadline)",
            err=True,
        )
    emit_report(report, report_path, as_json)
    sys.exit(0 if report.complete(confirm=params["confirm"]) else EXIT_INCOMPLETE)


def emit_report(report: Report, report_path: str | None, as_json: bool) -> None:
    """The report to ``--report`` (if given), then as JSON or a table."""
    if report_path:
        write_report(report, report_path)
    if as_json:
        click.echo(json.dumps(report.as_dict()))
    else:
        print_report(report)


def print_report(report: Report, *, limit: int = 50) -> None:
    """The report as tables: summary, groups, and the phones that need a look."""
    console = Console()
    summary = Table(title=f"campaign {report.campaign}")
    # The outcomes any phone has, and confirmed always: nine columns did not
    # fit a terminal's 80 and were cut to "confi…" (the JSON has every one).
    shown = {o: n for o, n in report.summary().items() if n or o == "confirmed"}
    for outcome in shown:
        summary.add_column(outcome, justify="right")
    summary.add_row(*(str(n) for n in shown.values()))
    console.print(summary)
    groups = report.groups()
    if len(groups) > 1:
        gt = Table(title="by group")
        gt.add_column("group")
        gt.add_column("outcomes")
        for name, counts in groups.items():
            gt.add_row(name, ", ".join(f"{k} {v}" for k, v in counts.items()))
        console.print(gt)
    doc = report.as_dict()
    problems = [p for p in doc["phones"] if p["outcome"] != "confirmed"]
    if problems:
        pt = Table(title=f"phones not confirmed ({len(problems)})")
        for col in ("name", "target", "outcome", "code", "reason", "attempts"):
            pt.add_column(col)
        for p in problems[:limit]:
            pt.add_row(
                p["name"],
                p["target"],
                p["outcome"],
                str(p["code"] or ""),
                p["reason"] or "",
                str(p["attempts"]),
            )
        console.print(pt)
        if len(problems) > limit:
            console.print(f"... and {len(problems) - limit} more (see --report)")
