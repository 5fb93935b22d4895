"""Fleet memory: resident memory of ``phonecast fleet --count N`` per phone.

Starts the fleet in its own process (one UDP socket per phone, TCP off as
``start_fleet`` runs it), waits for it to listen and reads its VmRSS.  The
emulator's request rate under SIPp load is ``bench/phone_vs_sipp.py``.
Run: ``.venv/bin/python -m bench.fleet --fleet 10000``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.campaign import rss_kib
from phonecast.cli.demo_cmd import start_fleet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleet", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        t0 = time.monotonic()
        fleet, _ = start_fleet(Path(tmp_name), args.fleet, duration=120)
        started = time.monotonic() - t0
        kib = rss_kib(fleet.pid)
        fleet.terminate()
        fleet.wait()
    print(
        f"fleet of {args.fleet}: started in {started:.1f} s, {kib / 1024:.0f} MiB resident, "
        f"{kib / args.fleet:.1f} KiB per phone"
    )


if __name__ == "__main__":
    main()
