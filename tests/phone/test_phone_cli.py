"""`phonecast phone` options that only the command line sets."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest
from click.testing import CliRunner

from phonecast.campaign.inventory import Phone
from phonecast.cli import cli, phone_cmd
from phonecast.sip import Response, parse_message
from tests.interop.peers import emulated_phone, free_udp_port, phonecast


def _request(method: str, port: int, peer_port: int, n: int) -> bytes:
    event = "Event: XML-Service\r\n" if method == "NOTIFY" else ""
    return (
        f"{method} sip:1001@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{peer_port};branch=z9hG4bKcap{method}{n}\r\n"
        f"From: <sip:pc@127.0.0.1>;tag=c{n}\r\nTo: <sip:1001@127.0.0.1:{port}>\r\n"
        f"Call-ID: cap-{n}@h\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n{event}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def test_max_transactions_bounds_what_a_flood_can_make_the_phone_hold(tmp_path: Path) -> None:
    """With --max-transactions 2 the third new request meanwhile is answered
    503 with Retry-After; pushes without credentials are challenged without
    a transaction, so however many come they are never refused for want of
    room; a bound of 0 is refused as bad usage."""
    port = free_udp_port()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(5)
    extra = ["--max-transactions", "2"]
    try:
        with emulated_phone(f"1001:secret@{port}", events=tmp_path / "ev.jsonl", extra=extra):
            answers = []
            for method, n in [("NOTIFY", n) for n in range(5)] + [("OPTIONS", n) for n in range(3)]:
                peer.sendto(_request(method, port, peer.getsockname()[1], n), ("127.0.0.1", port))
                answer = parse_message(peer.recv(65535))
                assert isinstance(answer, Response)
                answers.append((answer.status_code, answer.get("Retry-After")))
    finally:
        peer.close()
    assert answers == [(401, None)] * 5 + [(200, None), (200, None), (503, "5")]
    refused = phonecast("phone", "--line", f"1001:secret@{port}", "--max-transactions", "0")
    assert refused.returncode == 2 and "--max-transactions" in refused.stderr


def _refused(result: subprocess.CompletedProcess[str], *named: str) -> None:
    """Bad usage: exit status 2 and one line naming what is wrong, no traceback."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for text in named:
        assert text in result.stderr, result.stderr


@pytest.mark.parametrize("path", ["/nonexistent/dir/ev.jsonl", "/proc/ev.jsonl"])
@pytest.mark.parametrize("command", ["phone", "fleet"])
def test_an_events_file_that_cannot_be_written_is_refused_before_any_phone_starts(
    command: str, path: str
) -> None:
    """The log is opened before the phones listen: a missing folder or a place
    nothing may be created in is one clear line, not a traceback later."""
    port = free_udp_port()
    if command == "phone":
        args = ["phone", "--line", f"1001:secret@{port}"]
    else:
        args = ["fleet", "--count", "1", "--base-port", str(port)]
    result = phonecast(*args, "--events", path, "--duration", "5")
    _refused(result, "--events", path)
    assert "listening" not in result.stderr


def test_an_inventory_that_cannot_be_written_is_refused_before_the_fleet_starts() -> None:
    """No fleet runs without the inventory that says how to reach it."""
    port = free_udp_port()
    result = phonecast(
        "fleet", "--count", "3", "--base-port", str(port), "--inventory-out", "/nonexistent/x.csv"
    )
    _refused(result, "--inventory-out", "/nonexistent/x.csv")
    assert "listening" not in result.stderr


def test_an_inventory_write_that_fails_part_way_leaves_the_earlier_one_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that fills mid-write: the old inventory stays as it was, no
    half-written file is left beside it, and the fleet does not start."""
    inventory = tmp_path / "phones.csv"
    inventory.write_text("the earlier inventory\n")

    def fill_the_disk(path: str | Path, phones: Iterable[Phone], **_: object) -> None:
        Path(path).write_text("name,target,")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(phone_cmd, "write_inventory_csv", fill_the_disk)
    started = []
    monkeypatch.setattr(phone_cmd, "run_loop", started.append)
    result = CliRunner().invoke(
        cli, ["fleet", "--count", "2", "--inventory-out", str(inventory), "--duration", "1"]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        f"phonecast: cannot write --inventory-out {str(inventory)!r}: No space left on device"
    )
    assert inventory.read_text() == "the earlier inventory\n"
    assert sorted(tmp_path.iterdir()) == [inventory]
    assert not started
