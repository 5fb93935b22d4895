"""cProfile summaries of the two hot paths, written next to the figures.

1. The pusher: ``--pushes`` authenticated NOTIFYs to SIPp as a phone (401
   with qop=auth, then verifyauth), ``--window`` in flight, fixed pool of
   worker coroutines.
2. The emulator: ``bench/emulator_cpu.py``'s in-process driver (datagrams fed
   straight into one phone's endpoint, no sockets, no fetch).

Each profile is printed sorted by own time and by cumulative time and saved
under ``bench/profiles/``.  cProfile roughly doubles the cost of every Python
call, so read the shares, not the absolute times.
Run: ``.venv/bin/python bench/profile_hot_paths.py``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import tempfile
from pathlib import Path

from bench import emulator_cpu
from bench.push_vs_sipp import run_phonecast
from phonecast.net.loop import run

OUT = Path(__file__).resolve().parent / "profiles"


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
    text = summary(pusher, f"pusher: {args.pushes} pushes to SIPp UAS", args.lines)
    (OUT / "pusher.txt").write_text(text)
    print(text)
    emulator = cProfile.Profile()
    run(emulator_cpu.run(args.calls, fetch=False, profile=False, profiler=emulator))
    text = summary(emulator, f"emulator: {args.calls} authenticated NOTIFY calls", args.lines)
    (OUT / "emulator.txt").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
