"""A whole fleet in one process: memory per phone, and its rate under SIPp.

Starts ``phonecast fleet --count N`` in its own process (one UDP socket per
phone, TCP off as a fleet runs by default) and reads its resident memory
once it listens.  With ``--rates``, SIPp's UAC then sends ``--count``
authenticated NOTIFYs (NOTIFY, 401, NOTIFY with credentials, 200; the body
a URL on a closed port) at each rate to the fleet's first phone, side by
side with SIPp's own UAS answering the same load at the same rate (SIPp's
UAS first, then the fleet, rate by rate: this machine's speed drifts).  Each
line gives whether SIPp saw a failed call, the achieved rate and the
responder's CPU per 1,000 calls; the summary gives each side's sustained
rate (the highest achieved with zero failed calls) and the fleet's memory
after the load.  ``bench/phone_vs_sipp.py`` measures the same against a
one-phone process.  SIPp runs with phonecast's socket buffers (see
``push_vs_sipp.SOCKET_BUFFER``).
Run: ``.venv/bin/python -m bench.fleet --fleet 10000 --count 20000
--rates 4000,8000,12000,16000,20000`` (``--rates ''``: memory only).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.campaign import cpu_seconds, rss_kib
from bench.push_vs_sipp import drive, free_port, start_uas


def start_fleet(count: int, duration: int) -> tuple[subprocess.Popen[bytes], int]:
    """``phonecast fleet`` whose first phone is the one SIPp's scenarios
    address (user 1001, password ``secret``); (process, first port)."""
    for _attempt in range(5):
        base = random.randint(30000, 60000 - count)
        proc = subprocess.Popen(
            [sys.executable, "-m", "phonecast", "fleet", "--count", str(count),
             "--base-port", str(base), "--first-user", "1001", "--password-pattern", "secret",
             "--quiet", "--duration", str(duration)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert proc.stderr is not None
        line = proc.stderr.readline().decode(errors="replace")
        if "listening" in line:
            return proc, base
        proc.wait()  # a port of the range was taken: another range
    raise SystemExit(f"phonecast fleet did not start: {line.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleet", type=int, default=10_000)
    parser.add_argument("--count", type=int, default=20_000, help="calls per rate")
    parser.add_argument("--rates", default="4000,8000,12000,16000,20000")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",") if r]
    t0 = time.monotonic()
    fleet, base = start_fleet(args.fleet, duration=300 + 60 * len(rates))
    started = time.monotonic() - t0
    try:
        kib = rss_kib(fleet.pid)
        print(
            f"fleet of {args.fleet}: started in {started:.1f} s, {kib / 1024:.0f} MiB resident, "
            f"{kib / args.fleet:.1f} KiB per phone",
            flush=True,
        )
        if not rates:
            return
        sustained = {"sipp": 0.0, "fleet": 0.0}
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            for rate in rates:
                for name in ("sipp", "fleet"):
                    if name == "sipp":
                        port = free_port()
                        responder = start_uas(tmp, port, args.count)
                    else:
                        port, responder = base, fleet
                    cpu0 = cpu_seconds(responder.pid)
                    run = drive(tmp, port, args.count, rate)
                    cpu = (cpu_seconds(responder.pid) - cpu0) / args.count * 1000
                    if name == "sipp":
                        responder.terminate()
                        responder.wait()
                    if run.ok:
                        sustained[name] = max(sustained[name], run.rate)
                    print(
                        f"{name:<5} at {rate:>5}/s: {'ok    ' if run.ok else 'FAILED'} "
                        f"{run.rate:7,.0f} calls/s, {run.failed} failed, "
                        f"{run.retransmissions} retransmissions, "
                        f"{cpu:.2f} CPU s per 1,000 calls (responder only)",
                        flush=True,
                    )
        after = rss_kib(fleet.pid)
        ratio = f", ratio {sustained['fleet'] / sustained['sipp']:.2f}" if sustained["sipp"] else ""
        print(
            f"sustained (zero failed calls): sipp uas {sustained['sipp']:,.0f}/s, "
            f"fleet of {args.fleet} {sustained['fleet']:,.0f}/s{ratio}; "
            f"fleet resident after the load {after / 1024:.0f} MiB"
        )
    finally:
        fleet.terminate()
        fleet.wait()


if __name__ == "__main__":
    main()
