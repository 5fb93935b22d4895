"""Authenticated NOTIFYs per second: phonecast's pusher vs SIPp's UAC.

The same responder — SIPp as a phone that challenges with 401 and checks the
retry with ``verifyauth`` — receives N pushes (NOTIFY, 401, NOTIFY with
credentials, 200), first from SIPp's UAC at each rate of ``--sipp-rates``
(the sustained rate is the highest with zero failed calls), then from
phonecast's pusher with ``--window`` pushes in flight (a fixed pool of
worker coroutines).  ``--memory-run N`` runs only the pusher, N pushes, and
samples its resident memory 20 times (flat means no leak per push).  Prints completed pushes
per second, failures, CPU seconds per 1,000 pushes, and the ratio.
Run: ``.venv/bin/python bench/push_vs_sipp.py --count 5000``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import resource
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from bench.campaign import rss_kib
from phonecast.credentials import Secret
from phonecast.net.endpoint import SipEndpoint
from phonecast.net.loop import run
from phonecast.push.payload import url_payload
from phonecast.push.pusher import Destination, Pusher, PushOptions
from phonecast.sip import SipUri
from tests.ports import free_ports

SCENARIOS = Path(__file__).resolve().parent.parent / "tests" / "interop" / "scenarios"
#: SIPp's send and receive buffers (``-buff_size``): the 4 MiB phonecast's UDP
#: sockets ask for, so that neither side of a comparison loses datagrams to
#: a smaller buffer than the other has (SIPp's own default is 64 KiB, and
#: its UAS drops requests at 8,000-13,000 calls/s with it).
SOCKET_BUFFER = 4 << 20


def free_port() -> int:
    """A loopback port free for UDP and TCP, below the ephemeral range (a
    port from bind(0) can be taken by an outgoing connection before the
    responder binds it; once, a phone failed to start that way)."""
    return free_ports(1)[0]


def scenario(name: str, tmp: Path) -> Path:
    text = (SCENARIOS / name).read_text().replace("[$user]", "1001")
    path = tmp / name
    path.write_text(text.replace("[$password]", "secret"))
    return path


def start_uas(tmp: Path, port: int, calls: int, timeout: int = 120) -> subprocess.Popen[bytes]:
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
            str(timeout),
            "-buff_size",
            str(SOCKET_BUFFER),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return proc


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Drive(NamedTuple):
    """What SIPp's UAC reported for one run."""

    ok: bool  # exit status 0: no call failed
    rate: float  # calls completed per second (wall clock, SIPp start to exit)
    failed: int
    retransmissions: int


def drive(tmp: Path, port: int, count: int, rate: int) -> Drive:
    """SIPp's UAC sends ``count`` authenticated NOTIFYs at ``rate`` to ``port``."""
    stats = tmp / f"uac-{port}.csv"
    t0 = time.monotonic()
    uac = subprocess.run(
        ["sipp", f"127.0.0.1:{port}", "-sf", str(scenario("uac_notify_auth.xml", tmp)),
         "-s", "1001", "-m", str(count), "-r", str(rate), "-i", "127.0.0.1",
         "-p", str(free_port()), "-nostdin", "-timeout", "120", "-timeout_error",
         "-trace_stat", "-stf", str(stats), "-fd", "3600", "-buff_size", str(SOCKET_BUFFER)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    elapsed = time.monotonic() - t0
    failed = retrans = -1
    with contextlib.suppress(OSError, IndexError, ValueError):
        lines = stats.read_text().splitlines()
        row = dict(zip(lines[0].split(";"), lines[-1].split(";"), strict=False))
        failed, retrans = int(row["FailedCall(C)"]), int(row["Retransmissions(C)"])
    return Drive(uac.returncode == 0, count / elapsed, failed, retrans)


def run_sipp(tmp: Path, count: int, rate: int) -> tuple[Drive, float]:
    """SIPp UAC against SIPp UAS at ``rate``: the run, UAC CPU s per 1,000."""
    port = free_port()
    uas = start_uas(tmp, port, count)
    cpu0 = child_cpu()
    result = drive(tmp, port, count, rate)
    cpu = child_cpu() - cpu0  # the UAC only: it has exited, the UAS has not
    uas.terminate()
    uas.wait()
    return result, cpu / count * 1000


async def run_phonecast(
    tmp: Path,
    count: int,
    window: int,
    *,
    samples: int = 0,
    profiler: cProfile.Profile | None = None,
) -> tuple[int, float, float, int]:
    """Push ``count`` times with a fixed pool of ``window`` workers (no task
    per push): (failures, pushes/s, CPU s per 1,000, retransmissions).  With ``samples``,
    print this process's resident memory that many times along the way;
    ``profiler`` is enabled around the pushes only."""
    port = free_port()
    uas = start_uas(tmp, port, count, timeout=count // 500 + 120)
    ep = SipEndpoint()
    await ep.listen_udp("127.0.0.1", 0)
    pusher = Pusher(ep)
    target = SipUri("127.0.0.1", "1001", port=port)
    dest = [Destination("udp", "127.0.0.1", port)]
    payload = url_payload("http://127.0.0.1:9/alert.xml")
    opts = PushOptions(timeout=10)
    failures = 0
    requests = 0
    left = count
    done = 0
    every = count // samples if samples else 0
    rss: list[float] = []
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()

    async def worker() -> None:
        nonlocal failures, left, done, requests
        while left > 0:
            left -= 1
            out = await pusher.push(
                target, Secret("secret"), payload, options=opts, destinations=dest
            )
            failures += not out.delivered
            requests += out.requests
            done += 1
            if every and done % every == 0:
                rss.append(rss_kib() / 1024)
                rate = done / (time.monotonic() - t0)
                print(
                    f"{done:>9,} pushes  rss {rss[-1]:6.1f} MiB  {rate:7,.0f} pushes/s", flush=True
                )

    if profiler is not None:
        profiler.enable()
    await asyncio.gather(*(worker() for _ in range(window)))
    if profiler is not None:
        profiler.disable()
    elapsed = time.monotonic() - t0
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    retransmissions = ep.stats.sent - requests
    await ep.close()
    uas.terminate()
    uas.wait()
    if rss:
        print(f"rss first {rss[0]:.1f} MiB, last {rss[-1]:.1f} MiB, max {max(rss):.1f} MiB")
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    return failures, count / elapsed, cpu / count * 1000, retransmissions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--sipp-rates", default="500,1000,2000,3000,5000")
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument(
        "--memory-run",
        type=int,
        default=0,
        metavar="N",
        help="only the pusher: N pushes, resident memory sampled 20 times",
    )
    args = parser.parse_args()
    if args.memory_run:
        with tempfile.TemporaryDirectory() as tmp_name:
            failures, achieved, cpu, _ = run(
                run_phonecast(Path(tmp_name), args.memory_run, args.window, samples=20)
            )
        print(
            f"{args.memory_run} pushes, {failures} failed, {achieved:,.0f}/s, {cpu:.2f} CPU s/1000"
        )
        return
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        best = 0.0
        for rate in (int(r) for r in args.sipp_rates.split(",")):
            sipp, cpu = run_sipp(tmp, args.count, rate)
            print(
                f"sipp uac  rate {rate:>6}/s: {'ok    ' if sipp.ok else 'FAILED'} "
                f"{sipp.rate:8,.0f} pushes/s, {sipp.failed} failed, "
                f"{sipp.retransmissions} retransmissions, {cpu:.2f} CPU s per 1000 (uac)",
                flush=True,
            )
            if sipp.ok:
                best = max(best, sipp.rate)
        failures, achieved, cpu, retrans = run(run_phonecast(tmp, args.count, args.window))
        print(
            f"phonecast window {args.window}: {achieved:8,.0f} pushes/s, {failures} failed, "
            f"{retrans} retransmissions, {cpu:.2f} CPU s per 1000 (pusher)"
        )
        if best:
            print(f"ratio phonecast / sipp sustained: {achieved / best:.2f}")


if __name__ == "__main__":
    main()
