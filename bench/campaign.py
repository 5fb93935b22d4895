"""Campaign benchmark: N emulated phones (own process), one alert, all confirmed?

Starts ``phonecast fleet --count N`` in a separate process, runs the alert
campaign in this process (embedded content server, SQLite store), and prints
the time to all confirmed, phones per second, this runner's peak memory and
the fleet's resident memory per phone.
Run: ``.venv/bin/python bench/campaign.py --count 10000``.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from phonecast.campaign.store import CampaignStore
from phonecast.cli.campaign_cmd import (
    content_body,
    execute_campaign,
    load_phones,
    text_alert_params,
)
from phonecast.cli.demo_cmd import start_fleet
from phonecast.net.loop import run


def rss_kib(pid: int | str = "self") -> int:
    """Resident memory of a process (from /proc), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=200)  # `phonecast alert`'s default
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.monotonic()
        fleet, inventory = start_fleet(work, args.count, duration=900)
        started = time.monotonic() - t0
        fleet_kib = rss_kib(fleet.pid)
        try:
            phones = load_phones(str(inventory), (), (), False, True)
            params = text_alert_params(
                inventory,
                title="phonecast",
                text="Benchmark",
                concurrency=args.concurrency,
                timeout=8.0,
                confirm_timeout=30.0,
            )
            store = CampaignStore(work / "bench.db")
            cid = store.create(params, [(p.name, str(p.target), None) for p in phones])
            t1, wall1 = time.monotonic(), time.time()
            fleet_cpu0, runner_cpu0 = cpu_seconds(fleet.pid), cpu_seconds()
            report = run(execute_campaign(store, cid, phones, params, content_body(params), True))
            elapsed = time.monotonic() - t1
            fleet_cpu = cpu_seconds(fleet.pid) - fleet_cpu0
            runner_cpu = cpu_seconds() - runner_cpu0
            rows = store.phones(cid)
            first_sent = min((r.sent_at for r in rows if r.sent_at), default=wall1)
            last_confirmed = max((r.confirmed_at for r in rows if r.confirmed_at), default=wall1)
        finally:
            fleet.terminate()
            fleet.wait(timeout=30)
    summary = report.summary()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"phones: {args.count}; fleet started in {started:.1f} s, "
        f"{fleet_kib / args.count:.1f} KiB resident per phone ({fleet_kib / 1024:.0f} MiB)"
    )
    print(
        f"confirmed {summary['confirmed']} of {args.count} in {elapsed:.1f} s "
        f"({args.count / elapsed:,.0f} phones/s); other outcomes: "
        f"{ {k: v for k, v in summary.items() if v and k != 'confirmed'} }"
    )
    print(
        f"CPU per phone: runner {runner_cpu / args.count * 1e3:.2f} ms, "
        f"fleet {fleet_cpu / args.count * 1e3:.2f} ms"
    )
    print(
        f"phases: set-up {first_sent - wall1:.1f} s, first push to last confirmation "
        f"{last_confirmed - first_sent:.1f} s, wrap-up {elapsed - (last_confirmed - wall1):.1f} s"
    )
    print(f"runner peak memory: {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
