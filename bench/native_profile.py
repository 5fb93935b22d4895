"""Where the compiled build's CPU goes under real load: py-spy, native frames.

cProfile sees nothing inside compiled modules, and the hot paths are all
compiled now.  This samples a process with py-spy (``--native``: mypyc's C
functions, the interpreter and libc show, system calls as the libc call
that made them) while SIPp loads it, and prints what share of the samples
each function and each phase of the work is in:

- ``--target phone``: ``phonecast phone`` (one line) answering SIPp's UAC
  (authenticated NOTIFY, body a URL on a closed port) at ``--rate``;
- ``--target pusher``: the pusher (``push_vs_sipp``'s driver, window 200)
  pushing to SIPp as a phone (401, then ``verifyauth``).

Shares are of the samples taken while the process was on the CPU.  Names
are mypyc's, made readable (``CPyDef_wire___parse_message`` ->
``wire.parse_message``); code that the C compiler inlined is counted in its
caller, and py-spy sometimes names it after a neighbouring symbol
(``Py_DECREF`` stands for much of it).  The summary is also written to
``bench/profiles/<target>-native.txt``.
With ``--sampler perf`` (root and linux-perf needed) the kernel's frames
are sampled too, and written to ``<target>-perf.txt``: what the system calls
cost, e.g. waking the peer that a datagram is sent to.
Run: ``.venv/bin/python -m bench.native_profile --target phone``.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.phone_vs_sipp import start_phone
from bench.push_vs_sipp import SOCKET_BUFFER, free_port, scenario

OUT = Path(__file__).resolve().parent / "profiles"
#: "py-spy" or "perf" (set by --sampler).
SAMPLER = "py-spy"

#: Phase name -> frames (readable names) whose samples count for it.
PHASES = {
    "receive: recvfrom": ("sock_recvfrom",),
    "send: sendto": ("sock_sendto",),
    "kernel: waking the receiver of a datagram": ("sock_def_readable",),
    "kernel: TCP connect (the fetch)": ("__x64_sys_connect",),
    "parse a message": ("wire.parse_message",),
    "validate a request": ("validate.validate",),
    "stamp the Via": ("replies.stamp_via",),
    "transactions (new, match, step)": (
        "transaction.new_server_transaction",
        "transaction.new_client_transaction",
        "transaction.TransactionTable.match_request",
        "transaction.TransactionTable.match_response",
        "transaction.ServerTransaction.send_response",
        "transaction.ClientTransaction.handle_response",
    ),
    "digest: verify": ("_digest_server.DigestServer.verify",),
    "digest: challenge": (
        "_digest_server.DigestServer.challenge",
        "_digest_server.DigestServer.challenge_text",
    ),
    "digest: answer a challenge": ("digest.authorize",),
    "build a response": ("response.make_response",),
    "build a request": ("pusher.Pusher._build",),
    "serialise": ("message.Message.__bytes__",),
    "fetch attempt": ("fetcher.Fetcher.start", "fetcher.Fetcher._attempt"),
    "timer wheel": ("timers.TimerWheel._fire", "timers.TimerWheel.schedule"),
    "the phone's handler (all of it)": ("emulator.PhoneHost._on_request",),
    "the push coroutine (all of it)": ("pusher.push_Pusher_gen.__mypyc_generator_helper__",),
    "event log": ("EventLog.emit", "events.EventLog.emit", "events.EventLog.count"),
}


def readable(frame: str) -> str:
    """A py-spy frame ("name (file:line)") as a short readable name."""
    name = frame.split(" (", 1)[0]
    for prefix in ("CPyDef_", "CPyPy_"):
        if name.startswith(prefix):
            body = name[len(prefix) :]
            module, _, rest = body.partition("___")
            parts = [p for p in rest.split("___") if p] if rest else []
            return ".".join([module, *parts]) if parts else module
    return name


def summarise(raw: Path, title: str, top: int = 40) -> str:
    """py-spy's raw output (one "frame;frame;... count" line per stack) as text."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    phases: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [readable(f) for f in stack.split(";")]
        own[frames[-1]] += n
        names = set(frames)
        for name in names:
            inclusive[name] += n
        for phase, members in PHASES.items():
            if names.intersection(members):
                phases[phase] += n
    if not total:
        return f"{title}\n\nno samples (did the load reach the process?)\n"
    out = [title, "=" * len(title), "", f"{total} samples on the CPU", ""]
    out += ["-- by phase (share of samples with that work on the stack) --"]
    out += [f"{100 * phases[p] / total:6.1f}%  {p}" for p in PHASES]
    out += ["", "-- by function, inclusive --"]
    out += [f"{100 * n / total:6.1f}%  {name}" for name, n in inclusive.most_common(top)]
    out += ["", "-- by function, own samples --"]
    out += [f"{100 * n / total:6.1f}%  {name}" for name, n in own.most_common(top // 2)]
    return "\n".join(out) + "\n"


def _sampler() -> str:
    return "py-spy --native" if SAMPLER == "py-spy" else "perf, DWARF call graphs"


def record(pid: int, seconds: float, raw: Path) -> None:
    """Sample ``pid`` into ``raw`` (folded stacks) with the chosen sampler."""
    if SAMPLER == "perf":
        record_perf(pid, seconds, raw)
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    subprocess.run(
        [spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "500", "--native",
         "-f", "raw", "-o", str(raw)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def record_perf(pid: int, seconds: float, raw: Path) -> None:
    """``perf record`` with DWARF call graphs, folded as py-spy folds: the
    kernel's frames show (what a system call costs, e.g. waking the peer),
    and the C compiler's inlining is unwound rather than guessed."""
    data = raw.with_suffix(".perf")
    subprocess.run(
        ["perf", "record", "-F", "499", "--call-graph", "dwarf,16384", "-p", str(pid),
         "-o", str(data), "--", "sleep", str(seconds)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    script = subprocess.run(
        ["perf", "script", "-i", str(data), "-F", "ip,sym"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    stacks: collections.Counter[str] = collections.Counter()
    for block in script.split("\n\n"):
        frames = [line.split(None, 1)[1] for line in block.splitlines() if " " in line.strip()]
        if frames:  # perf lists the leaf first; folded stacks start at the root
            stacks[";".join(reversed([f.removesuffix(" (inlined)") for f in frames]))] += 1
    raw.write_text("".join(f"{stack} {n}\n" for stack, n in stacks.items()))


def profile_phone(tmp: Path, rate: int, seconds: float) -> str:
    port = free_port()
    phone = start_phone(port)
    count = int(rate * (seconds + 3))
    try:
        uac = subprocess.Popen(
            ["sipp", f"127.0.0.1:{port}", "-sf", str(scenario("uac_notify_auth.xml", tmp)),
             "-s", "1001", "-m", str(count), "-r", str(rate), "-i", "127.0.0.1",
             "-p", str(free_port()), "-nostdin", "-timeout", "120",
             "-buff_size", str(SOCKET_BUFFER)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1.0)  # past start-up
        raw = tmp / "phone.raw"
        record(phone.pid, seconds, raw)
        uac.wait()
    finally:
        phone.terminate()
        phone.wait()
    return summarise(raw, f"phone under SIPp's UAC at {rate}/s, compiled build ({_sampler()})")


def profile_pusher(tmp: Path, seconds: float) -> str:
    code = (
        "import sys, tempfile; from pathlib import Path;"
        "from bench.push_vs_sipp import run_phonecast; from phonecast.net.loop import run;"
        "d = tempfile.mkdtemp(); run(run_phonecast(Path(d), int(sys.argv[1]), 200))"
    )
    pusher = subprocess.Popen(
        [sys.executable, "-c", code, str(int(12_000 * (seconds + 4)))],
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(2.0)  # SIPp's UAS up, pushes flowing
        raw = tmp / "pusher.raw"
        record(pusher.pid, seconds, raw)
    finally:
        pusher.kill()
        pusher.wait()
    return summarise(raw, f"pusher against SIPp's UAS, window 200, compiled build ({_sampler()})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=("phone", "pusher"), default="phone")
    parser.add_argument("--rate", type=int, default=4000, help="SIPp's calls/s (phone)")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument(
        "--sampler", choices=("py-spy", "perf"), default="py-spy",
        help="perf (root, linux-perf) also samples the kernel: <target>-perf.txt",
    )  # fmt: skip
    args = parser.parse_args()
    global SAMPLER
    SAMPLER = args.sampler
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.target == "phone":
            text = profile_phone(tmp, args.rate, args.seconds)
        else:
            text = profile_pusher(tmp, args.seconds)
    print(text)
    OUT.mkdir(exist_ok=True)
    suffix = "native" if args.sampler == "py-spy" else "perf"
    (OUT / f"{args.target}-{suffix}.txt").write_text(text)


if __name__ == "__main__":
    main()
