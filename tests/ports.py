"""Loopback ports for tests that need to know a port before binding it.

A port picked by binding to port 0 comes from the kernel's ephemeral range,
the same range outgoing TCP connections (the fetcher's, aiohttp's) take their
source ports from: between the pick and the bind, one of those may take it,
and the listen fails with "address already in use".  So ports come from below
the ephemeral range, and each is checked free for both UDP and TCP (a phone
line listens on both).
"""

from __future__ import annotations

import random
import socket
from pathlib import Path


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct ports free for UDP and TCP on ``host``, outside the
    ephemeral range (at most 10 tries per port, then an error)."""
    low, high = 10_000, min(_ephemeral_low(), 30_000) - 1
    rng = random.Random()
    found: list[int] = []
    for _ in range(10 * n + 100):
        if len(found) == n:
            return found
        port = rng.randint(low, high)
        if port in found:
            continue
        try:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind((host, port))
        except OSError:
            continue
        found.append(port)
    if len(found) == n:
        return found
    raise RuntimeError(f"no {n} free ports found on {host}")
