"""CPU per authenticated NOTIFY inside the emulator, without a peer.

Feeds datagrams straight into the endpoint of a one-phone ``PhoneHost``
(NOTIFY, then the retry with credentials computed from the 401); its
answers go to a UDP socket of the bench's, read outside the measured part.
So the figure is the emulator's own cost per call: parse, validate,
transaction, digest, response, events, and the ``sendto`` of each answer
(no ``recvfrom``, no event loop turn).  The fetch a URL body triggers is
replaced by a no-op (``--fetch`` keeps it, pointed at a closed port; it
runs outside the measured part).  With ``--profile`` prints a cProfile
summary.  Run: ``.venv/bin/python bench/emulator_cpu.py --calls 5000``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import socket
import time

from phonecast.credentials import Secret
from phonecast.net.loop import run as loop_run
from phonecast.net.transport import Flow
from phonecast.phone.config import LineConfig, PhoneConfig
from phonecast.phone.emulator import PhoneHost
from phonecast.phone.fetcher import Done, FetchResult
from phonecast.sip import Response, parse_message
from phonecast.sip.digest import DigestClient

PORT = 25999


def notify(n: int, cseq: int, authorization: str | None, peer_port: int = 40000) -> bytes:
    auth = f"Authorization: {authorization}\r\n" if authorization else ""
    body = b"http://127.0.0.1:9/alert.xml"
    return (
        f"NOTIFY sip:1001@127.0.0.1:{PORT} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{peer_port};branch=z9hG4bK-{n}-{cseq}\r\n"
        f"From: <sip:sipp@127.0.0.1:{peer_port}>;tag=1sipp{n}\r\n"
        f"To: <sip:1001@127.0.0.1:{PORT}>\r\n"
        f"Call-ID: {n}-42@127.0.0.1\r\n"
        f"CSeq: {cseq} NOTIFY\r\n"
        "Max-Forwards: 70\r\n"
        "Event: XML-Service\r\n"
        f"{auth}"
        "Content-Type: text/html\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class _NoFetch:
    """A fetcher that fetches nothing (phonecast.phone.fetcher.PageFetcher)."""

    waiting = 0

    def start(self, url: str, done: Done) -> None:
        done(FetchResult(url, False, error="not fetched (bench)"))

    async def close(self) -> None:
        return None


async def run(
    calls: int, fetch: bool, profile: bool, profiler: cProfile.Profile | None = None
) -> None:
    """Drive ``calls`` calls; ``profile`` prints a summary, ``profiler``
    (if given) is enabled around the emulator's share only."""
    host = PhoneHost(fetcher=None if fetch else _NoFetch())
    await host.start()
    await host.add_phone(
        PhoneConfig("p1", "127.0.0.1", (LineConfig("1001", Secret("secret"), PORT),))
    )
    ep = host.endpoint
    assert ep is not None
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the answers land here
    peer.bind(("127.0.0.1", 0))
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    peer_port = peer.getsockname()[1]
    flow = Flow("udp", ("127.0.0.1", peer_port), ("127.0.0.1", PORT))
    client = DigestClient("1001", "secret")
    uri = f"sip:1001@127.0.0.1:{PORT}"
    # Pre-compute the first requests so that only the emulator is measured;
    # the retries depend on the challenge and are computed in the loop.
    firsts = [notify(n, 1, None, peer_port) for n in range(calls)]
    prof = profiler or (cProfile.Profile() if profile else None)
    ok = 0
    cpu_in_emulator = 0.0
    for n in range(calls):
        t0 = time.process_time()
        if prof:
            prof.enable()
        ep._on_data(firsts[n], flow)
        ep.flush()  # the answer's sendto is the emulator's cost too
        if prof:
            prof.disable()
        cpu_in_emulator += time.process_time() - t0
        challenge = parse_message(peer.recv(65535)).www_authenticate
        creds = client.respond(challenge, method="NOTIFY", uri=uri)
        retry = notify(n, 2, str(creds), peer_port)
        t0 = time.process_time()
        if prof:
            prof.enable()
        ep._on_data(retry, flow)
        ep.flush()
        if prof:
            prof.disable()
        cpu_in_emulator += time.process_time() - t0
        answer = parse_message(peer.recv(65535))
        ok += isinstance(answer, Response) and answer.status_code == 200
        if n % 256 == 0:
            await asyncio.sleep(0)  # let the fetch tasks run
    await asyncio.sleep(0.1)
    await host.close()
    peer.close()
    per_call = cpu_in_emulator / calls * 1e6
    print(
        f"{calls} calls, {ok} answered 200: {per_call:.0f} us CPU per call "
        f"(two requests) -> ceiling {1e6 / per_call:,.0f} calls/s on one core"
    )
    if prof and profile:
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--fetch", action="store_true")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    loop_run(run(args.calls, args.fetch, args.profile))  # the product's loop and GC settings


if __name__ == "__main__":
    main()
