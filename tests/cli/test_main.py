"""The ``phonecast`` entry point: exit statuses shared by every command."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys


def test_ctrl_c_is_one_line_and_status_130() -> None:
    """It was click's "Aborted!" and status 1, which README gives to other
    outcomes."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "phonecast", "push", f"sip:1001@127.0.0.1:{port}"),
                *("--event", "resync", "--timeout", "30"),
            ],
            env={**os.environ, "PHONECAST_PASSWORD": "x"},
            stderr=subprocess.PIPE,
            text=True,
        )
        silent.settimeout(15)
        silent.recv(4096)  # the NOTIFY came: the push is under way
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 130, err
    assert err.strip() == "phonecast: interrupted"


def test_help_and_version_still_exit_0_and_usage_errors_2() -> None:
    def run(*args: str) -> int:
        return subprocess.run(
            [sys.executable, "-m", "phonecast", *args], capture_output=True, timeout=60
        ).returncode

    assert run("--version") == 0 and run("--help") == 0 and run("push", "--help") == 0
    assert run("push") == 2 and run("no-such-command") == 2
