"""Authenticated NOTIFYs per second: phonecast's pusher vs SIPp's UAC.

The same responder — SIPp as a phone that challenges with 401 and checks the
retry with ``verifyauth`` — receives N pushes (NOTIFY, 401, NOTIFY with
credentials, 200), first from SIPp's UAC at each rate of ``--sipp-rates``
(the sustained rate is the highest with zero failed calls), then from
phonecast's pusher with ``--window`` pushes in flight.  Prints completed pushes
per second, failures, CPU seconds per 1,000 pushes, and the ratio.
Run: ``.venv/bin/python bench/push_vs_sipp.py --count 5000``.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from phonecast.credentials import Secret
from phonecast.net.endpoint import SipEndpoint
from phonecast.push.payload import url_payload
from phonecast.push.pusher import Destination, Pusher, PushOptions
from phonecast.sip import SipUri

SCENARIOS = Path(__file__).resolve().parent.parent / "tests" / "interop" / "scenarios"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scenario(name: str, tmp: Path) -> Path:
    text = (SCENARIOS / name).read_text().replace("[$user]", "1001")
    path = tmp / name
    path.write_text(text.replace("[$password]", "secret"))
    return path


def start_uas(tmp: Path, port: int, calls: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            "sipp",
            "-sf",
            str(scenario("uas_notify_auth.xml", tmp)),
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-m",
            str(calls),
            "-nostdin",
            "-timeout",
            "120",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return proc


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def drive(tmp: Path, port: int, count: int, rate: int) -> tuple[bool, float]:
    """SIPp's UAC sends ``count`` authenticated NOTIFYs at ``rate`` to ``port``:
    (no call failed, calls per second achieved)."""
    t0 = time.monotonic()
    uac = subprocess.run(
        ["sipp", f"127.0.0.1:{port}", "-sf", str(scenario("uac_notify_auth.xml", tmp)),
         "-s", "1001", "-m", str(count), "-r", str(rate), "-i", "127.0.0.1",
         "-p", str(free_port()), "-nostdin", "-timeout", "120", "-timeout_error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return uac.returncode == 0, count / (time.monotonic() - t0)


def run_sipp(tmp: Path, count: int, rate: int) -> tuple[bool, float, float]:
    """(all succeeded, pushes/s, UAC CPU s per 1000) at ``rate``."""
    port = free_port()
    uas = start_uas(tmp, port, count)
    cpu0 = child_cpu()
    ok, achieved = drive(tmp, port, count, rate)
    uas.terminate()
    uas.wait()
    cpu = child_cpu() - cpu0  # includes the UAS's share after it exits: see README
    return ok, achieved, cpu / count * 1000


async def run_phonecast(tmp: Path, count: int, window: int) -> tuple[int, float, float]:
    port = free_port()
    uas = start_uas(tmp, port, count)
    ep = SipEndpoint()
    await ep.listen_udp("127.0.0.1", 0)
    pusher = Pusher(ep)
    target = SipUri("127.0.0.1", "1001", port=port)
    dest = [Destination("udp", "127.0.0.1", port)]
    payload = url_payload("http://127.0.0.1:9/alert.xml")
    opts = PushOptions(timeout=10)
    failures = 0
    sem = asyncio.Semaphore(window)

    async def one() -> None:
        nonlocal failures
        async with sem:
            out = await pusher.push(
                target, Secret("secret"), payload, options=opts, destinations=dest
            )
            failures += not out.delivered

    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    await asyncio.gather(*(one() for _ in range(count)))
    elapsed = time.monotonic() - t0
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    await ep.close()
    uas.terminate()
    uas.wait()
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    return failures, count / elapsed, cpu / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--sipp-rates", default="500,1000,2000,3000,5000")
    parser.add_argument("--window", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        best = 0.0
        for rate in (int(r) for r in args.sipp_rates.split(",")):
            ok, achieved, cpu = run_sipp(tmp, args.count, rate)
            print(
                f"sipp uac  rate {rate:>6}/s: {'ok    ' if ok else 'FAILED'} "
                f"{achieved:8,.0f} pushes/s, {cpu:.2f} CPU s per 1000 (uac+uas)",
                flush=True,
            )
            if ok:
                best = max(best, achieved)
        failures, achieved, cpu = asyncio.run(run_phonecast(tmp, args.count, args.window))
        print(
            f"phonecast window {args.window}: {failures} failed, {achieved:8,.0f} pushes/s, "
            f"{cpu:.2f} CPU s per 1000 (pusher only)"
        )
        if best:
            print(f"ratio phonecast / sipp sustained: {achieved / best:.2f}")


if __name__ == "__main__":
    main()
