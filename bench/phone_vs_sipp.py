"""The emulator under SIPp load, side by side with SIPp's own UAS.

SIPp's UAC sends ``--count`` authenticated NOTIFYs (NOTIFY, 401, NOTIFY with
credentials, 200; the body is a URL on a closed port, so the emulator's
fetch fails fast) at each rate of ``--rates``, to SIPp as a phone
(challenge + ``verifyauth``) and then to ``phonecast phone``, rate by rate.  For each run:
whether SIPp saw a failed call, the achieved call rate, whether it kept pace
(at least 95 % of the rate asked for), and the responder's own CPU seconds
per 1,000 calls (from /proc).  A responder's sustained rate is the highest
achieved with zero failed calls, as in ``push_vs_sipp`` and the performance
issue (until the tenth round this script also asked for the pace to be
kept); both figures are printed.  SIPp runs with the socket buffers
phonecast uses (``push_vs_sipp.SOCKET_BUFFER``): with its smaller default
its UAS drops requests and fails calls well below its CPU's ceiling.
Run: ``.venv/bin/python -m bench.phone_vs_sipp --count 5000``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.campaign import cpu_seconds
from bench.push_vs_sipp import Drive, drive, free_port, start_uas


def start_phone(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "phonecast", "phone", "--line", f"1001:secret@{port}",
         "--quiet", "--duration", "600"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline().decode(errors="replace")
    if "listening" not in line:  # e.g. the port was taken: say so, do not measure a dead phone
        proc.kill()
        raise SystemExit(f"phonecast phone did not start on port {port}: {line.strip()}")
    return proc


def measure(tmp: Path, name: str, rate: int, count: int) -> tuple[Drive, float]:
    """SIPp UAC's view of the run, and the responder's CPU s per 1,000 calls."""
    port = free_port()
    responder = start_uas(tmp, port, count) if name == "sipp" else start_phone(port)
    try:
        cpu0 = cpu_seconds(responder.pid)
        result = drive(tmp, port, count, rate)
        cpu = cpu_seconds(responder.pid) - cpu0
    finally:
        responder.terminate()
        responder.wait()
    return result, cpu / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--rates", default="500,1000,2000,3000,4000")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    sustained = {"sipp": 0.0, "phonecast": 0.0}
    paced = {"sipp": 0.0, "phonecast": 0.0}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        # Rate by rate, SIPp's UAS then the emulator: this machine's speed
        # drifts by a quarter within minutes, so the two sides of a ratio
        # are measured next to each other rather than one run after the other.
        for rate in rates:
            for name in ("sipp", "phonecast"):
                sipp, cpu = measure(tmp, name, rate, args.count)
                kept_pace = sipp.rate >= 0.95 * rate
                if sipp.ok:
                    sustained[name] = max(sustained[name], sipp.rate)
                    if kept_pace:
                        paced[name] = max(paced[name], sipp.rate)
                print(
                    f"{name:<9} uas at {rate:>5}/s: {'ok    ' if sipp.ok else 'FAILED'} "
                    f"{sipp.rate:7,.0f} calls/s {'(kept pace)' if kept_pace else '(fell behind)'}, "
                    f"{sipp.failed} failed, "
                    f"{sipp.retransmissions} retransmissions, "
                    f"{cpu:.2f} CPU s per 1,000 calls (responder only)",
                    flush=True,
                )
    for label, best in (("sustained (zero failed calls)", sustained), ("kept pace too", paced)):
        ratio = f", ratio {best['phonecast'] / best['sipp']:.2f}" if best["sipp"] else ""
        print(f"{label}: sipp {best['sipp']:,.0f}/s, phonecast {best['phonecast']:,.0f}/s{ratio}")


if __name__ == "__main__":
    main()
