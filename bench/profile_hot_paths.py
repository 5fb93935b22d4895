"""cProfile summaries of the two hot paths, written next to the figures.

1. The pusher: ``--pushes`` authenticated NOTIFYs to SIPp as a phone (401
   with qop=auth, then verifyauth), ``--window`` in flight, fixed pool of
   worker coroutines.
2. The emulator: ``bench/emulator_cpu.py``'s in-process driver (datagrams fed
   straight into one phone's endpoint, no sockets, no fetch).

Each profile is printed sorted by own time and by cumulative time and saved
under ``bench/profiles/``.  cProfile roughly doubles the cost of every Python
call, so read the shares, not the absolute times.  On the compiled build
(the default) the compiled modules' functions show only where interpreted
code calls them, as built-in calls (with the pusher and the emulator's
handler compiled too, that is nearly nothing now: ``bench/native_profile.py``
samples the compiled build with its C functions named); with
``PHONECAST_PURE=1`` every function shows, and the files are named
``*-pure.txt``.
Run: ``.venv/bin/python -m bench.profile_hot_paths``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import tempfile
from pathlib import Path

from bench import emulator_cpu
from bench.push_vs_sipp import run_phonecast
from phonecast.net.loop import run

OUT = Path(__file__).resolve().parent / "profiles"
PURE = os.environ.get("PHONECAST_PURE") == "1"
BUILD = "interpreted sources (PHONECAST_PURE=1)" if PURE else "compiled core"
SUFFIX = "-pure" if PURE else ""


def summary(profile: cProfile.Profile, title: str, lines: int) -> str:
    out = io.StringIO()
    out.write(f"{title}\n{'=' * len(title)}\n\n")
    stats = pstats.Stats(profile, stream=out)
    stats.strip_dirs()
    out.write("-- by own time --\n")
    stats.sort_stats("tottime").print_stats(lines)
    out.write("-- by cumulative time --\n")
    stats.sort_stats("cumulative").print_stats(lines)
    return out.getvalue()


async def profile_pusher(pushes: int, window: int) -> cProfile.Profile:
    profile = cProfile.Profile()
    with tempfile.TemporaryDirectory() as tmp:
        failed, rate, _, _ = await run_phonecast(Path(tmp), pushes, window, profiler=profile)
    print(f"pusher: {pushes} pushes, {failed} failed, {rate:,.0f}/s under cProfile")
    return profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=3000)
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--lines", type=int, default=30)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    pusher = run(profile_pusher(args.pushes, args.window))
    title = f"pusher: {args.pushes} pushes to SIPp UAS, {BUILD}"
    text = summary(pusher, title, args.lines)
    (OUT / f"pusher{SUFFIX}.txt").write_text(text)
    print(text)
    emulator = cProfile.Profile()
    run(emulator_cpu.run(args.calls, fetch=False, profile=False, profiler=emulator))
    title = f"emulator: {args.calls} authenticated NOTIFY calls, {BUILD}"
    text = summary(emulator, title, args.lines)
    (OUT / f"emulator{SUFFIX}.txt").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
