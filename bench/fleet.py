"""The emulator under SIPp load, side by side with SIPp's own UAS; fleet memory.

SIPp's UAC sends authenticated NOTIFYs (NOTIFY, 401, NOTIFY with
credentials, 200) at each rate of ``--rates`` to (a) SIPp as a phone and
(b) ``phonecast phone``; a rate is sustained when SIPp reports no failed
call.  Then a ``phonecast fleet`` of ``--fleet`` phones is started and its
resident memory per phone printed.
Run: ``.venv/bin/python bench/fleet.py --count 3000``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.campaign import rss_kib
from bench.push_vs_sipp import drive, free_port, start_uas
from phonecast.cli.demo_cmd import start_fleet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--rates", default="250,500,1000,2000")
    parser.add_argument("--fleet", type=int, default=10_000)
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for rate in rates:
            port = free_port()
            uas = start_uas(tmp, port, args.count)
            ok, achieved = drive(tmp, port, args.count, rate)
            uas.terminate()
            uas.wait()
            print(
                f"sipp uas       at {rate:>5}/s: {'ok    ' if ok else 'FAILED'} {achieved:7,.0f}/s",
                flush=True,
            )
        for rate in rates:
            port = free_port()
            phone = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "phonecast",
                    "phone",
                    "--line",
                    f"1001:secret@{port}",
                    "--quiet",
                    "--duration",
                    "300",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            assert phone.stderr is not None
            phone.stderr.readline()
            ok, achieved = drive(tmp, port, args.count, rate)
            phone.terminate()
            phone.wait()
            verdict = "ok    " if ok else "FAILED"
            print(f"phonecast phone at {rate:>5}/s: {verdict} {achieved:7,.0f}/s", flush=True)
        try:
            fleet, _ = start_fleet(tmp, args.fleet, duration=60)
        except SystemExit:
            print("fleet did not start here; bench/campaign.py measures the same figure")
            return
        kib = rss_kib(fleet.pid)
        fleet.terminate()
        fleet.wait()
    per_phone = kib / args.fleet
    print(f"fleet of {args.fleet}: {kib / 1024:.0f} MiB resident, {per_phone:.1f} KiB per phone")


if __name__ == "__main__":
    main()
