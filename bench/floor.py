"""The floor under any Python phone: a responder that does almost nothing.

The emulator misses SIPp's UAS rate by about half (``phone_vs_sipp``).  How
much of a call's CPU is the emulator's own work, and how much would any
Python program on this loop pay?  This starts a deliberately minimal
responder, not a SIP implementation: on uvloop, one UDP socket read with a
drain loop (as ``net/transport.py`` reads), each request split into lines,
the five headers a response echoes copied, a fixed 401 (a constant nonce)
to a request without Authorization and 200 to one with it, credentials
never checked, no transaction, no validation, no fetch.  SIPp's UAC drives
it, SIPp's UAS and ``phonecast phone`` at the same ``--rates``, rate by
rate, and each line gives the achieved rate and the responder's CPU per
1,000 calls.  The floor's CPU per call is what the interpreter, the loop
and the system calls cost before any SIP is done: what remains of the
emulator's is what a faster design could still win.
Run: ``.venv/bin/python -m bench.floor --count 20000 --rates 8000,16000,20000``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.campaign import cpu_seconds
from bench.phone_vs_sipp import start_phone
from bench.push_vs_sipp import SOCKET_BUFFER, drive, free_port, start_uas

RESPONDER = r"""
import asyncio, socket, sys
import uvloop

port, buffer = int(sys.argv[1]), int(sys.argv[2])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer)
sock.bind(("127.0.0.1", port))
sock.setblocking(False)
ECHOED = {b"via", b"v", b"from", b"f", b"call-id", b"i", b"cseq"}
TO = {b"to", b"t"}
CHALLENGE = (
    b'WWW-Authenticate: Digest realm="phonecast", nonce="0123456789abcdef0123456789abcdef", '
    b'qop="auth", algorithm=MD5\r\nContent-Length: 0\r\n\r\n'
)
DONE = b"Content-Length: 0\r\n\r\n"

def readable():
    recvfrom, sendto = sock.recvfrom, sock.sendto
    while True:
        try:
            data, source = recvfrom(65535)
        except BlockingIOError:
            return
        lines = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        out = []
        authorized = False
        for line in lines[1:]:
            name = line.split(b":", 1)[0].strip().lower()
            if name in ECHOED:
                out.append(line)
            elif name in TO:
                out.append(line + b";tag=floor")
            elif name == b"authorization":
                authorized = True
        status = b"SIP/2.0 200 OK\r\n" if authorized else b"SIP/2.0 401 Unauthorized\r\n"
        sendto(status + b"\r\n".join(out) + b"\r\n" + (DONE if authorized else CHALLENGE), source)

async def main():
    asyncio.get_running_loop().add_reader(sock.fileno(), readable)
    print("listening", file=sys.stderr, flush=True)
    await asyncio.sleep(3600)

uvloop.run(main())
"""


def start_floor(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-c", RESPONDER, str(port), str(SOCKET_BUFFER)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    if "listening" not in proc.stderr.readline().decode(errors="replace"):
        proc.kill()
        raise SystemExit("the floor responder did not start")
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="calls per rate")
    parser.add_argument("--rates", default="8000,16000,20000")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",") if r]
    best: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for rate in rates:
            for name in ("sipp", "floor", "phonecast"):
                port = free_port()
                if name == "sipp":
                    responder = start_uas(tmp, port, args.count)
                elif name == "floor":
                    responder = start_floor(port)
                else:
                    responder = start_phone(port)
                try:
                    cpu0 = cpu_seconds(responder.pid)
                    run = drive(tmp, port, args.count, rate)
                    cpu = (cpu_seconds(responder.pid) - cpu0) / args.count * 1000
                finally:
                    responder.terminate()
                    responder.wait()
                time.sleep(0.2)
                if run.ok and run.rate > best.get(name, (0.0, 0.0))[0]:
                    best[name] = (run.rate, cpu)
                print(
                    f"{name:<9} at {rate:>5}/s: {'ok    ' if run.ok else 'FAILED'} "
                    f"{run.rate:7,.0f} calls/s, {run.failed} failed, "
                    f"{cpu:.3f} CPU s per 1,000 calls (responder only)",
                    flush=True,
                )
    for name, (top, cpu) in best.items():
        print(f"{name:<9} sustained {top:,.0f} calls/s (zero failed), {cpu:.3f} CPU ms a call")


if __name__ == "__main__":
    main()
