"""Starting real peers (SIPp, sipsak) and phonecast processes on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.ports import free_ports

SCENARIOS = Path(__file__).parent / "scenarios"


def free_udp_port() -> int:
    """A port free for UDP and TCP on 127.0.0.1, outside the ephemeral range."""
    return free_ports(1)[0]


def scenario(name: str, tmp: Path, **values: str) -> Path:
    """A SIPp scenario with ``[$key]`` placeholders filled in (verifyauth and
    [authentication] take literal credentials)."""
    text = (SCENARIOS / name).read_text()
    for key, value in values.items():
        text = text.replace(f"[${key}]", value)
    path = tmp / name
    path.write_text(text)
    return path


def phonecast(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the phonecast CLI to completion."""
    return subprocess.run(
        [sys.executable, "-m", "phonecast", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@contextmanager
def emulated_phone(
    *lines: str, events: Path, duration: int = 60, extra: list[str] | None = None
) -> Iterator[None]:
    """``phonecast phone`` in its own process, until the block ends."""
    args = [
        sys.executable,
        "-m",
        "phonecast",
        "phone",
        "--host",
        "127.0.0.1",
        "--quiet",
        "--duration",
        str(duration),
        "--events",
        str(events),
    ]
    for line in lines:
        args += ["--line", line]
    args += extra or []
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline().decode(errors="replace")
        if "listening" not in first:
            raise RuntimeError(f"phone did not start: {first}{proc.stderr.read().decode()}")
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def sipp_uas(scenario_file: Path, port: int, calls: int, tmp: Path) -> Iterator[None]:
    """SIPp as a phone on 127.0.0.1:``port`` for ``calls`` calls (bounded)."""
    proc = subprocess.Popen(
        [
            "sipp",
            "-sf",
            str(scenario_file),
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-m",
            str(calls),
            "-nostdin",
            "-timeout",
            "30",
            "-trace_err",
            "-error_file",
            str(tmp / "sipp_uas.err"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import time

        time.sleep(0.5)  # SIPp binds before it reads the first datagram
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def sipp_uac(
    scenario_file: Path,
    target_port: int,
    user: str,
    calls: int,
    tmp: Path,
    rate: int = 10,
    timeout: int = 20,
    extra: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """SIPp as the sender; exit code 0 means every call succeeded.
    ``extra`` adds options (a message trace, say)."""
    return subprocess.run(
        [
            "sipp",
            f"127.0.0.1:{target_port}",
            "-sf",
            str(scenario_file),
            "-s",
            user,
            "-m",
            str(calls),
            "-r",
            str(rate),
            "-i",
            "127.0.0.1",
            "-p",
            str(free_udp_port()),
            "-nostdin",
            "-timeout",
            str(timeout),
            "-timeout_error",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=timeout + 20,
    )


@contextmanager
def kamailio(template: str, tmp: Path) -> Iterator[int]:
    """Kamailio in the foreground on 127.0.0.1:<free port> with a config from
    ``scenarios/`` (``@PORT@`` filled in); yields the port."""
    import time

    port = free_udp_port()
    cfg = tmp / template
    cfg.write_text((SCENARIOS / template).read_text().replace("@PORT@", str(port)))
    check = subprocess.run(["kamailio", "-c", "-f", str(cfg)], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"kamailio rejected {template}: {check.stderr[-1500:]}")
    log = (tmp / "kamailio.log").open("w")
    proc = subprocess.Popen(
        ["kamailio", "-DD", "-E", "-f", str(cfg), "-P", str(tmp / "k.pid"), "-w", str(tmp)],
        stdout=log,
        stderr=log,
    )
    time.sleep(0.8)
    try:
        if proc.poll() is not None:
            raise RuntimeError(f"kamailio exited: {(tmp / 'kamailio.log').read_text()[-1500:]}")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
