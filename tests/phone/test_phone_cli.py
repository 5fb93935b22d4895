"""`phonecast phone` options that only the command line sets."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import re
import select
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from phonecast.campaign.inventory import Phone
from phonecast.cli import cli, phone_cmd
from phonecast.cli.phone_cmd import write_fleet_inventory
from phonecast.credentials import Secret
from phonecast.phone.config import LineConfig, PhoneConfig
from phonecast.phone.events import EventLog
from phonecast.sip import Request, Response, make_response, parse_message
from phonecast.sip.digest import authorize
from tests.interop.peers import emulated_phone, free_udp_port, phonecast
from tests.ports import free_ports
from tests.tls import make_pki


def _request(method: str, port: int, peer_port: int, n: int, host: str = "127.0.0.1") -> bytes:
    event = "Event: XML-Service\r\n" if method == "NOTIFY" else ""
    host = f"[{host}]" if ":" in host else host
    return (
        f"{method} sip:1001@{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{peer_port};branch=z9hG4bKcap{method}{n}\r\n"
        f"From: <sip:pc@{host}>;tag=c{n}\r\nTo: <sip:1001@{host}:{port}>\r\n"
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


def test_an_inventory_through_a_symlink_or_into_a_device_is_written_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Renamed over, the link became a file, and /dev/full (as root) would
    have."""

    async def bound_at_once(*_: Any, on_bound: Any = None, **__: Any) -> None:
        if on_bound is not None:
            on_bound()

    monkeypatch.setattr(phone_cmd, "_serve", bound_at_once)
    monkeypatch.setattr(phone_cmd, "run_loop", asyncio.run)
    real = tmp_path / "real.csv"
    real.write_text("")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    result = CliRunner().invoke(cli, ["fleet", "--count", "2", "--inventory-out", str(link)])
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and real.read_text().startswith("name,")
    full = CliRunner().invoke(cli, ["fleet", "--count", "2", "--inventory-out", "/dev/full"])
    assert full.exit_code == 2 and "No space left on device" in full.stderr
    assert Path("/dev/full").is_char_device()


def _refused_here(monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    """The command run in this process, refused as bad usage before any phone
    starts; returns its one line of stderr."""
    started: list[object] = []
    monkeypatch.setattr(phone_cmd, "run_loop", started.append)
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not started
    return result.stderr.strip()


@pytest.mark.parametrize(
    "text",
    ["nohost", "127.0.0.1:abc", "127.0.0.1:0", "127.0.0.1:65536", "::1", "[::1", "[1.2.3.4]", ""],
)
@pytest.mark.parametrize("command", ["phone", "fleet"])
def test_a_registrar_that_is_not_host_and_port_is_refused(
    command: str, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each was a ValueError traceback from the emulator once the phone ran;
    names are refused too (the emulator sends to the address as it is)."""
    base = (
        ["phone", "--line", "1001:secret@5070"] if command == "phone" else ["fleet", "--count", "1"]
    )
    line = _refused_here(monkeypatch, *base, "--register", text)
    assert line.startswith(f"phonecast: bad --register {text!r}: ")


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_the_phone_registers_at_the_address_given(host: str) -> None:
    """The CLI's one form of the address (``[v6]:port`` for IPv6) is the one
    the emulator's REGISTER reaches."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    registrar = socket.socket(family, socket.SOCK_DGRAM)
    registrar.bind((host, 0))
    registrar.settimeout(10)
    registered: list[str] = []

    def answer() -> None:
        with contextlib.suppress(OSError):
            data, peer = registrar.recvfrom(65535)
            request = parse_message(data)
            assert isinstance(request, Request)
            registered.append(request.method)
            registrar.sendto(bytes(make_response(request, 200, to_tag="r")), peer)

    shown = f"[{host}]" if ":" in host else host
    thread = threading.Thread(target=answer)
    thread.start()
    try:
        result = phonecast(
            "phone",
            "--host",
            host,
            "--line",
            f"1001:secret@{free_udp_port()}",
            "--register",
            f"{shown}:{registrar.getsockname()[1]}",
            "--quiet",
            "--duration",
            "0.2",
        )
    finally:
        thread.join()
        registrar.close()
    assert result.returncode == 0, result.stderr
    assert registered == ["REGISTER"]
    assert f"1 of 1 line(s) registered at {shown}:" in result.stderr


@pytest.mark.parametrize("option", ["--nonce-lifetime", "--duration"])
@pytest.mark.parametrize("value", ["-5", "0", "nan", "inf", "soon"])
@pytest.mark.parametrize("command", ["phone", "fleet"])
def test_seconds_that_are_not_a_positive_number_are_refused(
    command: str, option: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A nonce lifetime of 0 or less was a ValueError traceback from the
    digest server; a --duration of nan one from the event loop."""
    base = (
        ["phone", "--line", "1001:secret@5070"] if command == "phone" else ["fleet", "--count", "1"]
    )
    line = _refused_here(monkeypatch, *base, option, value)
    assert line == f"phonecast: bad {option} {value!r}: expected a positive number of seconds"


def test_a_nonce_lifetime_past_a_day_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """1e306 s overflowed the digest server's milliseconds when it pruned."""
    line = _refused_here(monkeypatch, "fleet", "--count", "1", "--nonce-lifetime", "1e306")
    assert line == "phonecast: bad --nonce-lifetime '1e306': at most 86400 seconds (a day)"


def test_a_nonce_lifetime_reaches_the_phone(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[Any] = []
    monkeypatch.setattr(phone_cmd, "_serve", lambda configs, *_, **__: served.append(configs))
    monkeypatch.setattr(phone_cmd, "run_loop", lambda _: None)
    args = ["phone", "--line", "1001:secret@5070", "--nonce-lifetime", "2.5"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert served[0][0].settings.nonce_lifetime == 2.5


@pytest.mark.parametrize("command", ["phone", "fleet"])
def test_notify_types_reach_the_phones(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[Any] = []
    monkeypatch.setattr(phone_cmd, "_serve", lambda configs, *_, **__: served.append(configs))
    monkeypatch.setattr(phone_cmd, "run_loop", lambda _: None)
    where = ["--line", "1001:secret@5070"] if command == "phone" else ["--count", "1"]
    args = [command, *where, "--notify-types", "text/plain,Application/XML"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert served[0][0].settings.notify_types == frozenset({"text/plain", "application/xml"})
    line = _refused_here(monkeypatch, command, *where, "--notify-types", "xml")
    assert line.startswith("phonecast: bad --notify-types 'xml': 'xml' is not a media type")


def test_a_busy_port_named_is_the_one_that_is_busy() -> None:
    """With the second line's port taken, the error named the first's."""
    first, second = free_ports(2)
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", second))
    try:
        result = phonecast(
            "phone", "--line", f"1001:secret@{first}", "--line", f"1002:other@{second}"
        )
    finally:
        taken.close()
    _refused(result, f"line 1002 on 127.0.0.1:{second}: Address already in use")
    assert str(first) not in result.stderr


@pytest.mark.parametrize("text", ["notanip", "10.0.0", "[::1]", "proxy.example", ""])
@pytest.mark.parametrize("command", ["phone", "fleet"])
def test_a_restrict_source_that_is_not_an_address_is_refused(
    command: str, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was taken, and the phone then dropped every request it got."""
    base = (
        ["phone", "--line", "1001:secret@5070"] if command == "phone" else ["fleet", "--count", "1"]
    )
    line = _refused_here(monkeypatch, *base, "--restrict-source", text)
    assert line.startswith(f"phonecast: bad --restrict-source {text!r}: expected an IP address")


def _options_answered(port: int, host: str, tmp_path: Path, restrict: str, *, wait: float) -> bool:
    """Whether the phone answers an OPTIONS within ``wait`` seconds."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    peer = socket.socket(family, socket.SOCK_DGRAM)
    peer.bind((host, 0))
    peer.settimeout(wait)
    extra = ["--host", host, "--restrict-source", restrict]
    try:
        with emulated_phone(f"1001:secret@{port}", events=tmp_path / "ev.jsonl", extra=extra):
            peer.sendto(_request("OPTIONS", port, peer.getsockname()[1], 1, host), (host, port))
            try:
                return isinstance(parse_message(peer.recv(65535)), Response)
            except TimeoutError:
                return False
    finally:
        peer.close()


def test_restrict_source_lets_the_proxy_in_however_its_address_is_written(
    tmp_path: Path,
) -> None:
    """``0:0::1`` is ::1, the source the phone sees; another address is shut out."""
    # An answer comes at once (a generous wait costs nothing); only the
    # silence is waited out.
    assert _options_answered(free_udp_port(), "::1", tmp_path, "0:0::1", wait=10.0)
    assert not _options_answered(free_udp_port(), "127.0.0.1", tmp_path, "127.0.0.2", wait=1.5)


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("", "phone 1's password is empty (a line needs one)"),
        ("{user:.0}", "phone 1's password is empty (a line needs one)"),
        ("pw{n:>300000000}", "300000000 is wider than a password may be (128)"),
        ("pw{n:x>129}", "129 is wider than a password may be (128)"),
        ("pw{n:>{user}}", "a field's format may not hold another field"),
        ("{n[0]}", "a field that is neither {n} nor {user}"),
        ("{n.x}", "a field that is neither {n} nor {user}"),
        ("{n.real}", "a field that is neither {n} nor {user}"),  # it was taken
        ("pw{", "an unmatched '{' or '}' (a literal brace is written {{ or }})"),
        ("pw}x", "an unmatched '{' or '}' (a literal brace is written {{ or }})"),
        ("{n:s3cret}", "a field's format does not apply (ValueError)"),
        ("{s3cret}", "a field that is neither {n} nor {user}"),
    ],
)
def test_a_password_pattern_that_makes_no_password_or_a_huge_one_is_refused(
    pattern: str, why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty password is one --line refuses; pw{n:>300000000} built 300 MB
    for each phone; the last two were tracebacks.  The pattern is not shown:
    its literal text may be a password."""
    line = _refused_here(monkeypatch, "fleet", "--count", "3", "--password-pattern", pattern)
    assert line == f"phonecast: bad --password-pattern: {why}"


def test_a_password_is_at_most_128_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    """Phone 9's password is 128 characters, phone 10's 129: the error names
    phone 10 and does not show the pattern (it may be a long literal)."""
    pattern = "x" * 127 + "{n}"
    served: list[Any] = []
    monkeypatch.setattr(phone_cmd, "_serve", lambda configs, *_, **__: served.append(configs))
    monkeypatch.setattr(phone_cmd, "run_loop", lambda _: None)
    args = ["fleet", "--count", "9", "--password-pattern", pattern]
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert served[0][-1].lines[0].password.reveal() == "x" * 127 + "9"
    line = _refused_here(monkeypatch, "fleet", "--count", "10", "--password-pattern", pattern)
    assert line == (
        "phonecast: bad --password-pattern: phone 10's password would be 129 characters, over 128"
    )


def _fleet_answering_two_notifies(*extra: str) -> str:
    """A one-phone fleet, its stderr a pipe, for 2 s: the phone gets a NOTIFY
    without credentials (challenged) and then with them (verified).
    Returns the fleet's stderr."""
    base = free_udp_port()
    args = ["fleet", "--count", "1", "--base-port", str(base), "--duration", "2", *extra]
    proc = subprocess.Popen(
        [sys.executable, "-m", "phonecast", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(5)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert "listening" in first, first + proc.stderr.read()
        raw = _request("NOTIFY", base, peer.getsockname()[1], 1)
        peer.sendto(raw, ("127.0.0.1", base))
        challenge = parse_message(peer.recv(65535))
        request = parse_message(raw)
        assert isinstance(challenge, Response) and isinstance(request, Request)
        assert challenge.status_code == 401
        name, value = authorize(challenge, request, "1001", "pw1")
        again = raw.replace(b"CSeq: 1 ", b"CSeq: 2 ").replace(b"cap", b"again")
        again = again.replace(b"Content-Length", f"{name}: {value}\r\nContent-Length".encode())
        peer.sendto(again, ("127.0.0.1", base))
        answer = parse_message(peer.recv(65535))
        assert isinstance(answer, Response) and answer.status_code == 200
        proc.wait(timeout=30)
        rest = proc.stderr.read()  # through readline()'s buffer, as demo_cmd reads it
    finally:
        peer.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, rest
    return first + rest


def test_a_fleet_without_a_terminal_prints_one_summary_line_at_exit() -> None:
    """Without a terminal nothing was shown at all, not even at exit."""
    stderr = _fleet_answering_two_notifies()
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        r"phonecast: fleet summary: 2 requests, 1 challenges, 1 verified, \d+ fetches, "
        r"\d+ fetches failed, \d+ screens",
        last,
    ), stderr
    assert stderr.count("fleet summary") == 1


def test_a_quiet_fleet_prints_no_summary() -> None:
    stderr = _fleet_answering_two_notifies("--quiet")
    assert "summary" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr


def test_the_fleet_tally_counts_challenges_and_verified_digests() -> None:
    """The numbers the live table and the exit line show."""
    events = EventLog()
    tally = phone_cmd.FleetTally(events)
    for kind, fields in [
        ("request", {}),
        ("response", {"code": 401}),
        ("request", {}),
        ("auth", {"ok": False}),
        ("auth", {"ok": True}),
        ("response", {"code": 200}),
        ("fetch_finished", {"status": 200, "ok": True}),
        ("fetch_finished", {"status": 404, "ok": False}),
        ("screen", {}),
    ]:
        events.emit(kind, **fields)
    assert tally.values() == (2, 1, 1, 2, 1, 1)
    assert tally.line() == (
        "phonecast: fleet summary: 2 requests, 1 challenges, 1 verified, 2 fetches, "
        "1 fetches failed, 1 screens"
    )
    row = [next(iter(column.cells)) for column in tally.table().columns]
    assert row == ["2", "1", "1", "2", "1", "1"]


@pytest.mark.parametrize(
    ("spec", "shown", "why"),
    [
        ("1001:hunter2@99999", "1001:***@99999", "expected USER[/AUTHID]:PASSWORD@PORT"),
        ("1001:hunter2", "1001:***", "expected USER[/AUTHID]:PASSWORD@PORT"),
        ("1001:hun@ter2@x", "1001:***", "expected USER[/AUTHID]:PASSWORD@PORT"),
        ("1001:p@ssw0rd", "1001:***", "expected USER[/AUTHID]:PASSWORD@PORT"),
        ("1001@5070", "***@5070", "expected USER[/AUTHID]:PASSWORD@PORT"),
        ("1001=hunter2@5070", "***@5070", "expected USER[/AUTHID]:PASSWORD@PORT"),
        ("1001:hunter2@5²", "1001:***", "expected USER[/AUTHID]:PASSWORD@PORT"),
        ("1001:env:NO_SUCH_PHONECAST_VAR@5070", "1001:***@5070", "environment variable"),
    ],
)
def test_a_bad_line_is_named_without_its_password(
    spec: str, shown: str, why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The error showed the whole --line, password and all."""
    line = _refused_here(monkeypatch, "phone", "--line", spec)
    assert line.startswith(f"phonecast: bad --line {shown!r}: {why}")
    assert "hunter2" not in line and "ter2" not in line and "ssw0rd" not in line


def test_a_fleet_with_an_address_per_phone_takes_an_alert_at_each_address(
    tmp_path: Path,
) -> None:
    """--address-per-phone: each phone listens on its own loopback address,
    all on one port, as a real fleet sits on port 5060 of its own hosts; the
    inventory names each phone's address, and an alert through it is
    confirmed by every phone.  A push for one phone sent to another's
    address is refused (the address is the phone)."""
    (port,) = free_ports(1)
    inventory = tmp_path / "phones.csv"
    args = [sys.executable, "-m", "phonecast", "fleet", "--count", "3", "--address-per-phone",
            "--host", "127.9.0.1", "--base-port", str(port), "--inventory-out", str(inventory),
            "--quiet", "--duration", "60"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert f"3 phone(s) listening on 127.9.0.1-127.9.0.3 port {port}" in first, first
        targets = [row.split(",")[1] for row in inventory.read_text().splitlines()[1:]]
        assert targets == [f"sip:100{n}@127.9.0.{n}:{port}" for n in (1, 2, 3)]
        alert = phonecast(
            "alert", "--inventory", str(inventory), "--text", "Fire drill", "--json",
            "--confirm-timeout", "10", "--db", str(tmp_path / "c.db"), timeout=60,
        )  # fmt: skip
        assert alert.returncode == 0, alert.stdout + alert.stderr
        outcomes = [p["outcome"] for p in json.loads(alert.stdout)["phones"]]
        assert outcomes == ["confirmed"] * 3
        misdirected = phonecast(
            "push", f"sip:1001@127.9.0.2:{port}", "--url", "http://127.0.0.1:9/a",
            "--timeout", "3", env={"PHONECAST_PASSWORD": "pw1"},
        )  # fmt: skip
        assert misdirected.returncode in (3, 4), misdirected.stdout + misdirected.stderr
    finally:
        proc.terminate()
        proc.wait()


@pytest.mark.parametrize(
    ("host", "count", "message"),
    [
        ("localhost", "2", "needs --host to be an IP address"),
        ("255.255.255.254", "3", "runs past the last IPv4 address"),
    ],
)
def test_addresses_per_phone_that_cannot_be_counted_up_are_refused(
    host: str, count: str, message: str
) -> None:
    result = CliRunner().invoke(
        cli, ["fleet", "--count", count, "--address-per-phone", "--host", host]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "3601", "soon"])
def test_a_ring_time_that_is_not_0_to_3600_seconds_is_refused(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``nan`` got through click's FloatRange and left an INVITE ringing for ever."""
    line = _refused_here(monkeypatch, "phone", "--line", "1001:pw@5070", "--ring-seconds", value)
    assert line == (
        f"phonecast: bad --ring-seconds {value!r}: expected a number of seconds from 0 to 3600"
    )


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--register-transport", "tcp"], "--register-transport tcp needs --register"),
        (
            ["--register", "127.0.0.1:5060", "--registrar-ca", "ca.pem"],
            "--registrar-ca needs --register-transport tls",
        ),
        (
            ["--register", "127.0.0.1:5060", "--register-transport", "tls"],
            "--register-transport tls needs --tls-cert",
        ),
        (
            ["--register", "127.0.0.1:5060", "--registrar-name", "sip.example.com"],
            "--registrar-name needs --register-transport tls",
        ),
        (
            ["--register", "127.0.0.1:5060", "--register-transport", "tcp"],
            "the lines' TCP listener, which is off (a fleet takes TCP with --tcp)",
        ),
    ],
)
def test_a_registration_transport_the_lines_cannot_take_is_refused(
    extra: list[str], says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registrar reaches a line over the transport its Contact names:
    one the line does not listen on would register a line nobody can
    reach, so each mismatch is one line before any phone starts."""
    line = _refused_here(monkeypatch, "fleet", "--count", "1", *extra)
    assert says in line, line


def test_a_registrar_ca_that_cannot_be_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki = make_pki(tmp_path)
    missing = tmp_path / "nowhere.pem"
    line = _refused_here(
        monkeypatch,
        "phone",
        "--line",
        "1001:secret@5070",
        "--tls-cert",
        str(pki.cert_file),
        "--tls-key",
        str(pki.key_file),
        "--register",
        "127.0.0.1:5061",
        "--register-transport",
        "tls",
        "--registrar-ca",
        str(missing),
    )
    assert line.startswith(f"phonecast: cannot use --registrar-ca {str(missing)!r}: "), line


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """True if the phone ends ``sock``'s connection within ``seconds``."""
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_the_stream_limits_reach_the_phone(tmp_path: Path) -> None:
    """``--max-connections 2``: a third connection closes the least recently
    used idle one at once; ``--idle-timeout 3``: an idle one is closed after
    three seconds, not 120."""
    port = free_udp_port()
    extra = ["--max-connections", "2", "--idle-timeout", "3"]
    with emulated_phone(f"1001:secret@{port}", events=tmp_path / "ev.jsonl", extra=extra):
        first = socket.create_connection(("127.0.0.1", port))
        second = socket.create_connection(("127.0.0.1", port))
        try:
            second.sendall(b"\r\n\r\n")  # a ping: the second is the more recent
            assert second.recv(2) == b"\r\n"  # its pong
            third = socket.create_connection(("127.0.0.1", port))
            try:
                assert _closed_within(first, 1.0)  # evicted, well before idling out
                assert not _closed_within(third, 0.5)
                assert _closed_within(third, 5.0)  # idle past its three seconds
            finally:
                third.close()
        finally:
            first.close()
            second.close()


@pytest.mark.parametrize(("option", "value"), [("--max-connections", "0"), ("--idle-timeout", "0")])
def test_stream_limits_that_cannot_be_are_refused(option: str, value: str) -> None:
    result = phonecast("phone", "--line", "1001:pw@5999", option, value)
    assert result.returncode == 2 and option in result.stderr, result.stderr


def test_a_phone_whose_stderr_is_full_still_answers() -> None:
    """Its "listening" line on a full stderr ended the phone at its start."""
    import time

    from tests.interop.peers import free_udp_port, phonecast

    port = free_udp_port()
    with Path("/dev/full").open("w") as full:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "phonecast", "phone", "--host", "127.0.0.1"),
                *("--line", f"1001:s3cr3t@{port}", "--duration", "20", "--quiet"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=full,
        )
    try:
        deadline = time.monotonic() + 15
        while True:  # bounded: until the phone answers, or 15 s
            run = phonecast(
                "push",
                f"sip:1001@127.0.0.1:{port}",
                "--event",
                "resync",
                "--timeout",
                "1",
                env={"PHONECAST_PASSWORD": "s3cr3t"},
            )
            if run.returncode == 0 or time.monotonic() > deadline or proc.poll() is not None:
                break
        assert run.returncode == 0, (run.stdout, run.stderr, proc.poll())
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)


def test_an_events_fifo_without_a_reader_is_said_and_waited_for(tmp_path: Path) -> None:
    """Opening a FIFO for writing waits for its reader; the phone sat
    silent meanwhile, as if hung.  It now says so, starts once a reader
    opens the FIFO, and the reader gets every event from the first."""
    fifo = tmp_path / "events"
    os.mkfifo(fifo)
    port = free_udp_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "phonecast", "phone", "--host", "127.0.0.1", "--quiet",
         "--line", f"1001:secret@{port}", "--events", str(fifo), "--duration", "30"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        # bounded: without the notice, a bare readline would wait forever
        assert select.select([proc.stderr], [], [], 20)[0], "the phone said nothing"
        first = proc.stderr.readline()
        assert first == (
            f"phonecast: --events {str(fifo)!r} is a FIFO with no reader yet;"
            " waiting for one before the phones start\n"
        ), first
        with fifo.open(encoding="utf-8") as reader:
            assert "listening" in proc.stderr.readline()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind(("127.0.0.1", 0))
                sock.settimeout(10)
                sock.sendto(
                    _request("OPTIONS", port, sock.getsockname()[1], 1), ("127.0.0.1", port)
                )
                assert sock.recv(65535).startswith(b"SIP/2.0 200 ")
            event = json.loads(reader.readline())
            assert event["event"] == "request" and event["method"] == "OPTIONS", event
            proc.terminate()
            proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.parametrize(("host", "why"), [("", "give an address"), ("  ", "give an address"),
                                           ("a b", "not an address")])  # fmt: skip
def test_a_host_that_names_no_address_is_refused(
    host: str, why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--host ''`` bound every interface, and said "listening on  ports"."""
    line = _refused_here(monkeypatch, "phone", "--line", "1001:pw@5070", "--host", host)
    assert line.startswith("phonecast: bad --host") and why in line


def test_a_bracketed_ipv6_host_is_the_address_inside(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[Any] = []
    monkeypatch.setattr(phone_cmd, "_serve", lambda configs, *_, **__: served.append(configs))
    monkeypatch.setattr(phone_cmd, "run_loop", lambda _: None)
    result = CliRunner().invoke(cli, ["phone", "--line", "1001:pw@5070", "--host", "[::1]"])
    assert result.exit_code == 0, result.output
    assert served[0][0].host == "::1"


def test_two_lines_on_one_port_are_refused_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    """They were reported as the port being in use, by the phone itself."""
    line = _refused_here(
        monkeypatch, "phone", "--line", "1001:pw@5070", "--line", "1002:other@5070"
    )
    assert line == (
        "phonecast: bad --line: 1001 and 1002 both on port 5070 (each line has its own SIP port)"
    )
    assert "pw" not in line and "other" not in line


def test_a_fleet_that_cannot_listen_leaves_the_earlier_inventory_whole(tmp_path: Path) -> None:
    """Its inventory was renamed into place before the phones bound: a
    second fleet on a running one's ports overwrote that one's inventory
    with its own passwords, and then failed to start."""
    inventory = tmp_path / "phones.csv"
    inventory.write_text("the running fleet's inventory\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = phonecast(
            "fleet", "--count", "1", "--base-port", str(port), "--inventory-out", str(inventory)
        )
    assert result.returncode == 2 and "cannot listen" in result.stderr
    assert inventory.read_text() == "the running fleet's inventory\n"
    assert sorted(tmp_path.iterdir()) == [inventory]  # no new file left beside it


def test_a_plain_file_under_dev_is_replaced_owner_only_not_written_in_place() -> None:
    """/dev/shm/x.csv counted as a device: written in place it kept 0644,
    the fleet's passwords readable by every user."""
    from phonecast.campaign.report import written_in_place

    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.skip("no /dev/shm on this machine")
    with tempfile.NamedTemporaryFile(dir=shm, suffix=".csv") as plain:
        os.chmod(plain.name, 0o644)
        assert not written_in_place(plain.name)
        write_fleet_inventory(
            plain.name, [PhoneConfig("p", "127.0.0.1", (LineConfig("1001", Secret("pw"), 5070),))]
        )
        assert stat.S_IMODE(os.stat(plain.name).st_mode) == 0o600
    assert written_in_place("/dev/null") and written_in_place("/dev/stdout")


@pytest.mark.parametrize("name", ["phones.yaml", "phones.toml", "phones.json"])
def test_an_inventory_named_for_another_format_is_refused(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fleet writes CSV and alert reads a file by its extension."""
    line = _refused_here(monkeypatch, "fleet", "--count", "1", "--inventory-out", name)
    assert "name it .csv" in line


def test_a_password_that_is_not_utf8_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Undecodable bytes in argv (surrogate escapes) made a traceback later."""
    bad = "pw\udcff{n}"
    line = _refused_here(monkeypatch, "fleet", "--count", "1", "--password-pattern", bad)
    assert line == "phonecast: bad --password-pattern: not valid UTF-8 text"
    line = _refused_here(monkeypatch, "phone", "--line", "1001:pw\udcff@5070")
    assert line.endswith("the password is not valid UTF-8 text")


def test_a_fleet_the_file_limit_cannot_hold_is_refused_up_front() -> None:
    """With --tcp past the limit, uvloop handed back a listener without
    sockets and the fleet died of an IndexError, after writing its inventory."""
    import resource

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (300, 300))

    result = subprocess.run(
        [sys.executable, "-m", "phonecast", "fleet", "--count", "200", "--tcp",
         "--base-port", "30000", "--duration", "1"],  # refused before any bind
        capture_output=True, text=True, timeout=60, preexec_fn=low_limit,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "phonecast: --count 200 needs 400 sockets and more, but this process may open "
        "300 files (raise it with ulimit -n)"
    )
