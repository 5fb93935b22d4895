"""A real DNS server for tests: dnsmasq on 127.0.0.1 with given records."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import require_binary
from tests.ports import free_ports


def free_udp_port() -> int:
    """A port free for UDP and TCP on 127.0.0.1, outside the ephemeral range."""
    return free_ports(1)[0]


@contextmanager
def dnsmasq(tmp: Path, records: list[str]) -> Iterator[str]:
    """Serve ``records`` (dnsmasq options such as ``--srv-host=...``) and
    nothing else; yields ``127.0.0.1:<port>`` for ``make_resolver``."""
    binary = require_binary("dnsmasq")
    port = free_udp_port()
    args = [
        binary, "--no-daemon", "--keep-in-foreground", f"--port={port}",
        "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
        "--conf-file=/dev/null", f"--pid-file={tmp / 'dnsmasq.pid'}", "--user=root",
        "--log-facility=-", *records,
    ]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.3)
    if proc.poll() is not None:
        err = proc.stderr.read().decode() if proc.stderr else ""
        pytest.fail(f"dnsmasq did not start: {err}")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=5)
