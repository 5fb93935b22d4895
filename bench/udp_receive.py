"""UDP receive paths on asyncio: DatagramProtocol vs add_reader with a drain.

An echo server runs one way or the other; a client process keeps 32
datagrams in flight over loopback for a fixed number of round trips.  Prints
round trips per second for each (the choice behind ``net/transport.py``).
Run: ``.venv/bin/python bench/udp_receive.py --count 100000``.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from typing import Any

from phonecast.net.transport import Flow, UdpTransport

CLIENT = r"""
import socket, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
payload = b"x" * 400
sent = got = 0
t0 = time.perf_counter()
while sent < 32:
    s.sendto(payload, ("127.0.0.1", port)); sent += 1
while got < count:
    try:
        s.recv(2048)
    except socket.timeout:
        break
    got += 1
    if sent < count:
        s.sendto(payload, ("127.0.0.1", port)); sent += 1
print(got / (time.perf_counter() - t0))
"""


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)


async def measure(style: str, count: int) -> float:
    loop = asyncio.get_running_loop()
    if style == "protocol":
        transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        port = transport.get_extra_info("sockname")[1]
        closer = transport.close
    else:
        holder: list[UdpTransport] = []

        def echo(data: bytes, flow: Flow) -> None:
            holder[0].sendto(data, flow.remote)

        udp = await UdpTransport.bind("127.0.0.1", 0, echo)
        holder.append(udp)
        port = udp.local[1]
        closer = udp.close
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENT, str(port), str(count), stdout=subprocess.PIPE
    )
    out, _ = await proc.communicate()
    closer()
    return float(out.decode().strip() or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    args = parser.parse_args()
    for style in ("protocol", "add_reader", "protocol", "add_reader"):
        rate = asyncio.run(measure(style, args.count))
        print(f"{style:<11} {rate:10,.0f} round trips/s", flush=True)


if __name__ == "__main__":
    main()
