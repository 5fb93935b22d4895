"""Instructions per authenticated NOTIFY inside the emulator (callgrind).

This machine's speed drifts by a quarter within minutes, so a timed A/B of
a change worth 2 % says nothing.  An instruction count does: valgrind's
callgrind counts the instructions the emulator's endpoint executes for
``--calls`` calls of ``bench/emulator_cpu.py`` (the first NOTIFY, its 401,
the retry with credentials, its 200; fetch replaced by a no-op), and only
inside ``SipEndpoint._on_data`` and ``flush`` (the bench's own client work
is not counted).  The same build gives the same count to a few parts in a
thousand run after run.  Instructions are not time (a cache miss or a
system call costs more than its count), so a change that wins here is then
confirmed under SIPp (``bench.phone_vs_sipp``).

The compiled build only (the function names it toggles on are mypyc's).
With ``--top N`` prints the N functions with the most instructions
(inclusive), the start of a profile without a sampler's noise; with
``--fetch`` each call's fetch (a GET to a closed port, started after the
answers) is made and counted too.
Needs valgrind (``apt-get install valgrind``).
Run: ``.venv/bin/python -m bench.instructions --calls 1000``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: mypyc's C names of the two entry points whose work is counted.
TOGGLES = ("CPyDef_endpoint___SipEndpoint____on_data", "CPyDef_endpoint___SipEndpoint___flush")
#: Where the emulator starts the fetches of a burst, after answering it.
FETCH_TOGGLE = "CPyDef_emulator___PhoneHost____start_fetches"


def count(calls: int, out: Path, *, fetch: bool = False) -> int:
    """Instructions inside the emulator over ``calls`` calls (callgrind file
    at ``out``); with ``fetch``, its fetches (to a closed port) too."""
    toggles = (*TOGGLES, FETCH_TOGGLE) if fetch else TOGGLES
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        *(f"--toggle-collect={name}" for name in toggles),
        sys.executable,
        str(HERE / "emulator_cpu.py"),
        "--calls",
        str(calls),
        *(["--fetch"] if fetch else []),
    ]
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise SystemExit(f"valgrind failed ({run.returncode}): {run.stderr.strip()[-400:]}")
    found = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
    if found is None or int(found.group(1)) == 0:
        raise SystemExit("callgrind counted nothing: is this the compiled build?")
    return int(found.group(1))


def top(out: Path, n: int) -> list[tuple[int, str]]:
    """The ``n`` compiled functions with the most inclusive instructions."""
    run = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    seen: dict[str, int] = {}
    for line in run.stdout.splitlines():
        found = re.match(r"\s*([\d,]+) .*CPyDef_(\S+)", line)
        if found:
            name = found.group(2)
            seen.setdefault(name, int(found.group(1).replace(",", "")))
    return sorted(((v, k) for k, v in seen.items()), reverse=True)[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--top", type=int, default=0)
    parser.add_argument(
        "--fetch", action="store_true", help="count each call's fetch (to a closed port) too"
    )
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        total = count(args.calls, out, fetch=args.fetch)
        per_call = total / args.calls
        what = "the emulator and its fetch" if args.fetch else "the emulator"
        print(f"{args.calls} calls: {per_call:,.0f} instructions per call in {what}")
        for instructions, name in top(out, args.top):
            print(f"{instructions / args.calls:>10,.0f}  {name}")


if __name__ == "__main__":
    main()
