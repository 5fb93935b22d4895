"""phonecast on both sides: the pusher against an emulated fleet.

Starts ``phonecast fleet --count N`` in its own process, reads the inventory
it writes, and pushes one authenticated XML-Service NOTIFY to every phone from
this process with a fixed pool of ``--window`` worker coroutines (no task per
push), ``--passes`` times over.  The body is a URL on a closed port, so each
phone's fetch fails fast: this measures SIP end to end (the campaign
benchmark adds the content server and the fetches).  Prints pushes per
second, failures, and CPU seconds per 1,000 pushes of each side.
Run: ``.venv/bin/python -m bench.push_vs_fleet --count 2000 --passes 3``;
``--transport tcp`` pushes over TCP (the fleet listens with ``--tcp``), and
``--max-connections N`` caps the pusher's connections (``StreamLimits``), so
that with N below the fleet's size every pass evicts and redials.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import tempfile
import time
from pathlib import Path

from bench.campaign import cpu_seconds
from phonecast.campaign.inventory import Phone, load_inventory
from phonecast.cli.demo_cmd import start_fleet
from phonecast.net.endpoint import SipEndpoint
from phonecast.net.limits import StreamLimits
from phonecast.net.loop import run
from phonecast.push.payload import url_payload
from phonecast.push.pusher import Destination, Pusher, PushOptions


async def push_all(
    phones: list[Phone], window: int, passes: int, transport: str, limits: StreamLimits
) -> tuple[int, int, float]:
    """(pushes, failures, seconds)."""
    ep = SipEndpoint(stream_limits=limits)
    await ep.listen_udp("127.0.0.1", 0)
    pusher = Pusher(ep)
    payload = url_payload("http://127.0.0.1:9/alert.xml")
    opts = PushOptions(timeout=10)
    queue = collections.deque(phones * passes)
    failures = 0

    async def worker() -> None:
        nonlocal failures
        while queue:
            phone = queue.popleft()
            target = phone.target
            dest = [Destination(transport, target.hostname, target.port or 5060)]
            out = await pusher.push(
                target, phone.password, payload, user=phone.user, options=opts, destinations=dest
            )
            failures += not out.delivered

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(window)))
    elapsed = time.monotonic() - t0
    await ep.close()
    return len(phones) * passes, failures, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument("--passes", type=int, default=1)
    parser.add_argument("--transport", choices=("udp", "tcp"), default="udp")
    parser.add_argument("--max-connections", type=int, default=None)
    args = parser.parse_args()
    limits = StreamLimits(max_connections=args.max_connections)
    tcp = ["--tcp"] if args.transport == "tcp" else []
    with tempfile.TemporaryDirectory() as tmp:
        fleet, inventory = start_fleet(Path(tmp), args.count, duration=900, options=tcp)
        try:
            phones = list(load_inventory(inventory).phones)
            fleet_cpu0, own_cpu0 = cpu_seconds(fleet.pid), cpu_seconds()
            pushes, failures, elapsed = run(
                push_all(phones, args.window, args.passes, args.transport, limits)
            )
            fleet_cpu = cpu_seconds(fleet.pid) - fleet_cpu0
            own_cpu = cpu_seconds() - own_cpu0
        finally:
            fleet.terminate()
            fleet.wait()
    print(
        f"{pushes} pushes over {args.transport} to {args.count} emulated phones, "
        f"{failures} failed: "
        f"{pushes / elapsed:,.0f} pushes/s; CPU s per 1,000 pushes: "
        f"pusher {own_cpu / pushes * 1000:.2f}, fleet {fleet_cpu / pushes * 1000:.2f}"
    )


if __name__ == "__main__":
    main()
