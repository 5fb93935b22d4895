"""What the server side of TLS costs now that an accepted connection runs its
own TLS (net.tls_session) instead of the event loop's.

Two listeners on loopback, one after the other in one process, on the loop
the commands use (uvloop when installed):

- ``loop``: the fourteenth round's way, ``create_server(ssl=...)`` with the
  stream transport's own connection protocol, TLS done by the loop;
- ``own``: ``StreamTransport("tls").listen``, TLS over memory BIOs.

Each answers every SIP message with a fixed 200 on its connection.  The
clients (the loop's TLS, the same in both runs) open ``--connections``
connections, time the handshakes, then send ``--messages`` messages in all,
``--window`` in flight per connection.  Printed: handshakes a second, and
messages a second with the process's CPU per message (clients included, the
same work in both runs, so the difference is the server's).

    .venv/bin/python -m bench.tls_server --connections 200 --messages 40000
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import ssl
import tempfile
import time
from pathlib import Path

from phonecast.net.limits import StreamLimits
from phonecast.net.loop import run
from phonecast.net.stream import StreamTransport
from phonecast.net.transport import Flow
from tests.tls import make_pki

REQUEST = (
    b"OPTIONS sip:1001@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKbench\r\n"
    b"Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:1001@127.0.0.1>\r\n"
    b"Call-ID: bench@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)
RESPONSE = (
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKbench\r\n"
    b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:1001@127.0.0.1>;tag=2\r\n"
    b"Call-ID: bench@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)


def _answer(data: bytes, flow: Flow) -> None:
    if flow.connection is not None:
        flow.connection.send(RESPONSE)


def _cpu() -> float:
    """This process's CPU seconds, to the microsecond (bench.campaign's
    cpu_seconds reads /proc in clock ticks, 10 ms: too coarse for the
    fraction of a second 200 handshakes take)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _listen(
    mode: str, server_ctx: ssl.SSLContext
) -> tuple[StreamTransport, asyncio.AbstractServer | None, int]:
    streams = StreamTransport(
        "tls", _answer, server_ssl=server_ctx, limits=StreamLimits(max_connections=100_000)
    )
    if mode == "own":
        _, port = await streams.listen("127.0.0.1", 0)
        return streams, None, port
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: streams._factory(None, None), "127.0.0.1", 0, ssl=server_ctx
    )
    port = server.sockets[0].getsockname()[1]
    return streams, server, port


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, messages: int, window: int
) -> None:
    sent = 0
    while sent < messages:
        batch = min(window, messages - sent)
        writer.write(REQUEST * batch)
        await reader.readexactly(len(RESPONSE) * batch)
        sent += batch


async def measure(mode: str, connections: int, messages: int, window: int) -> dict[str, float]:
    pki = make_pki(Path(tempfile.mkdtemp()))
    server_ctx, client_ctx = pki.server_context(), pki.client_context()
    streams, server, port = await _listen(mode, server_ctx)
    try:
        started, cpu = time.perf_counter(), _cpu()
        pairs = [
            await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx)
            for _ in range(connections)
        ]
        shake_s, shake_cpu = time.perf_counter() - started, _cpu() - cpu
        each = messages // connections
        started, cpu = time.perf_counter(), _cpu()
        await asyncio.gather(*(_exchange(r, w, each, window) for r, w in pairs))
        wall, used = time.perf_counter() - started, _cpu() - cpu
        for _, writer in pairs:
            writer.close()
        done = each * connections
        return {
            "handshakes_per_s": connections / shake_s,
            "handshake_cpu_ms": shake_cpu / connections * 1000,
            "messages_per_s": done / wall,
            "cpu_us_per_message": used / done * 1e6,
        }
    finally:
        await streams.close()
        if server is not None:
            server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--messages", type=int, default=40_000)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for round_ in range(1, args.rounds + 1):
        for mode in ("loop", "own"):
            figures = run(measure(mode, args.connections, args.messages, args.window))
            print(
                f"round {round_} {mode:4}: {figures['handshakes_per_s']:7.0f} handshakes/s"
                f" ({figures['handshake_cpu_ms']:.2f} CPU ms each),"
                f" {figures['messages_per_s']:8.0f} messages/s"
                f" ({figures['cpu_us_per_message']:.1f} CPU us each, clients included)"
            )


if __name__ == "__main__":
    main()
