"""``phonecast demo``: the main job on embedded defaults.

Starts an emulated fleet in a separate process (as real phones would be),
runs an alert campaign against it with the embedded content server and
SQLite store, shows progress and the report, then says how to aim the same
command at real phones.
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import click

from phonecast.campaign.store import CampaignStore
from phonecast.cli.campaign_cmd import (
    content_body,
    execute_campaign,
    load_phones,
    text_alert_params,
)
from phonecast.cli.campaign_views import print_report
from phonecast.cli.push_cmd import fail
from phonecast.net.loop import run as run_loop


def start_fleet(
    workdir: Path,
    count: int,
    *,
    events: Path | None = None,
    duration: int = 300,
    options: Sequence[str] = (),
) -> tuple[subprocess.Popen[bytes], Path]:
    """A ``phonecast fleet`` process on a free port range, and its inventory;
    its event log goes to ``events`` if given (costs CPU per event);
    ``options``: more of the command's options (``--tcp``, say)."""
    inventory = workdir / "phones.csv"
    logging = ["--events", str(events)] if events is not None else []
    low, high = _ports_for_listeners(count)
    for _attempt in range(5):
        base = random.randint(low, high)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "phonecast",
                "fleet",
                "--count",
                str(count),
                "--base-port",
                str(base),
                "--inventory-out",
                str(inventory),
                "--quiet",
                *logging,
                "--duration",
                str(duration),
                *options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert proc.stderr is not None
        line = proc.stderr.readline().decode(errors="replace")
        if "listening" in line:
            return proc, inventory
        try:  # a fleet that refused to start exits by itself, having said why
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # Read through the buffer readline() filled: communicate(timeout=...)
        # reads the descriptor itself, and what that buffer held (the rest
        # of a usage error, say) was lost, leaving "Usage: ..." as the reason.
        rest = proc.stderr.read().decode(errors="replace")
        if "in use" not in line:  # not the port range: another draw will not help
            told = (line + rest).strip().splitlines()
            said = told[-1].removeprefix("phonecast: ") if told else "it exited without a word"
            fail(f"could not start the emulated fleet: {said}")
    fail("could not start the emulated fleet: no free port range after 5 tries")


def _ports_for_listeners(count: int) -> tuple[int, int]:
    """The range a fleet of ``count`` phones' first port is drawn from:
    below the kernel's ephemeral ports when the fleet fits there, since a
    TCP listener cannot bind a port that an outgoing connection's TIME_WAIT
    still holds (the fleet's own fetches leave those), and ``--tcp`` makes
    every line such a listener."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ranges:
            ephemeral_low = int(ranges.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    if ephemeral_low - count > 10000:
        return 10000, ephemeral_low - count
    return 30000, 60000 - count


@click.command("demo")
@click.option(
    "--count",
    type=click.IntRange(1, 10_000),
    default=300,
    show_default=True,
    help="Phones in the emulated fleet.",
)
@click.option("--keep", type=click.Path(file_okay=False), help="Keep the files in this folder.")
def demo(count: int, keep: str | None) -> None:
    """Alert an emulated fleet and print which phones confirmed."""
    with tempfile.TemporaryDirectory(prefix="phonecast-demo-") as tmp:
        workdir = Path(keep) if keep else Path(tmp)
        try:
            workdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file of that name, no permission, a read-only place
            fail(f"cannot use --keep {keep!r} as a folder: {exc.strerror or exc}")
        click.echo(f"phonecast demo: starting an emulated fleet of {count} SPA phones ...")
        proc, inventory = start_fleet(workdir, count, events=workdir / "fleet-events.jsonl")
        try:
            phones = load_phones(str(inventory), (), (), False, True)
            params = text_alert_params(
                inventory,
                title="Facilities",
                text="Fire drill at 10:00. Leave by the nearest exit; do not use the lifts.",
            )
            store = CampaignStore(workdir / "phonecast-demo.db")
            cid = store.create(params, [(p.name, str(p.target), None) for p in phones])
            click.echo(
                f"campaign {cid}: pushing to {len(phones)} phones (XML-Service NOTIFY, "
                "digest challenge, fetch of a per-phone URL) ..."
            )
            start = time.monotonic()
            report = run_loop(
                execute_campaign(
                    store, cid, phones, params, content_body(params), not sys.stderr.isatty()
                )
            )
            elapsed = time.monotonic() - start
            print_report(report)
            summary = report.summary()
            click.echo(
                f"\n{summary['confirmed']} of {len(phones)} phones fetched their "
                f"content (confirmed) in {elapsed:.1f} s."
            )
            click.echo(
                "\nTo do the same with real phones, describe them in an inventory\n"
                "(name,target,user,password[,proxy,transport,vendor,tags]) and run:\n"
                "  phonecast alert --inventory phones.csv --title Facilities "
                '--text "Fire drill at 10:00" --serve <this-host-ip>:8080\n'
                "The phones must reach <this-host-ip>:8080 to fetch (and so confirm)."
            )
            if keep:
                click.echo(
                    f"\nFiles kept in {workdir}: the store, the inventory and the "
                    "fleet's event log (fleet-events.jsonl)."
                )
            code = 0 if report.complete() else 6
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    sys.exit(code)
