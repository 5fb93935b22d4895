"""SIP over TLS to emulated phones (an SPA line set to TLS), through the
commands as users run them: push, fleet, inventory and alert."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from phonecast.cli import cli
from tests.conftest import require_binary
from tests.interop.peers import emulated_phone, phonecast
from tests.ports import free_ports
from tests.tls import LoopbackPki

PASSWORD = {"PHONECAST_PASSWORD": "s3cr3t"}


def _tls_args(pki: LoopbackPki) -> list[str]:
    return ["--tls-cert", str(pki.cert_file), "--tls-key", str(pki.key_file)]


def _push(port: int, *extra: str) -> subprocess.CompletedProcess[str]:
    return phonecast(
        "push", f"sip:1001@127.0.0.1:{port}", "--url", "http://127.0.0.1:9/a", "--json",
        "--timeout", "3", *extra, env=PASSWORD,
    )  # fmt: skip


def test_a_phone_set_to_tls_takes_a_push_over_tls_and_is_verified(
    pki: LoopbackPki, tmp_path: Path
) -> None:
    """The phone presents its certificate; the pusher verifies it against
    the CA it was given, answers the challenge over the same connection,
    and the phone records both requests as having come over TLS."""
    (port,) = free_ports(1)
    events = tmp_path / "ev.jsonl"
    with emulated_phone(f"1001:s3cr3t@{port}", events=events, extra=_tls_args(pki)):
        run = _push(port, "--transport", "tls", "--ca-file", str(pki.ca_file))
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert report["outcome"] == "delivered" and report["target"] == f"tls:127.0.0.1:{port}"
    seen = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["transport"] for e in seen if e["event"] == "request"] == ["tls", "tls"]


def test_a_phone_set_to_tls_is_not_reached_untrusted_or_in_plain_tcp(
    pki: LoopbackPki, tmp_path: Path
) -> None:
    """Without the CA the certificate is refused (the system's trust store
    does not know it), and plain TCP to the TLS port is not SIP to it:
    neither push is delivered, and neither leaves a traceback."""
    (port,) = free_ports(1)
    with emulated_phone(f"1001:s3cr3t@{port}", events=tmp_path / "e", extra=_tls_args(pki)):
        untrusted = _push(port, "--transport", "tls")
        plain = _push(port, "--transport", "tcp")
    for run in (untrusted, plain):
        assert run.returncode == 5, run.stdout + run.stderr
        assert json.loads(run.stdout)["outcome"] in ("unreachable", "timeout")
        assert "Traceback" not in run.stderr


def _requests(port: int) -> bytes:
    """An OPTIONS and a NOTIFY without credentials, as one TLS client's writes."""
    out = b""
    for method, cseq, extra in (
        ("OPTIONS", 1, ""),
        ("NOTIFY", 2, "Event: xml-service\r\nContent-Type: text/plain\r\n"),
    ):
        body = "http://127.0.0.1:9/a.xml" if method == "NOTIFY" else ""
        out += (
            f"{method} sip:1001@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKossl{cseq}\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:admin@127.0.0.1>;tag=o1\r\n"
            f"To: <sip:1001@127.0.0.1:{port}>\r\nCall-ID: openssl-{cseq}@127.0.0.1\r\n"
            f"CSeq: {cseq} {method}\r\n{extra}Content-Length: {len(body)}\r\n\r\n{body}"
        ).encode()
    return out


def _status_lines(proc: subprocess.Popen[bytes], count: int, within: float) -> list[bytes]:
    """The first ``count`` SIP status lines ``proc`` prints, within ``within`` s."""
    import select
    import time

    assert proc.stdout is not None
    deadline = time.monotonic() + within
    buffered, found = b"", []
    while len(found) < count and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if not ready:
            continue
        chunk = proc.stdout.read1(65536)
        if not chunk:
            break
        buffered += chunk
        *lines, buffered = buffered.split(b"\n")
        found += [line.strip() for line in lines if line.startswith(b"SIP/2.0 ")]
    return found


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_openssl_as_a_tls_client_gets_sip_answers(
    pki: LoopbackPki, tmp_path: Path, version: str
) -> None:
    """OpenSSL's own client (not Python's ssl on both ends), over TLS 1.2 and
    1.3, verifying the phone's certificate: the OPTIONS is answered 200 and
    the NOTIFY without credentials 401, on the connection they came over."""
    openssl = require_binary("openssl")
    (port,) = free_ports(1)
    with emulated_phone(f"1001:s3cr3t@{port}", events=tmp_path / "e", extra=_tls_args(pki)):
        proc = subprocess.Popen(
            [openssl, "s_client", "-connect", f"127.0.0.1:{port}", version, "-quiet",
             "-CAfile", str(pki.ca_file), "-verify_return_error", "-verify_ip", "127.0.0.1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            assert proc.stdin is not None
            proc.stdin.write(_requests(port))
            proc.stdin.flush()
            statuses = _status_lines(proc, 2, within=10)
        finally:
            proc.kill()
            proc.wait(timeout=10)
    assert [line.split(b" ")[1] for line in statuses] == [b"200", b"401"], statuses


def test_a_tls_fleet_writes_tls_into_its_inventory_and_takes_an_alert(
    pki: LoopbackPki, tmp_path: Path
) -> None:
    """``fleet --tls-cert``: the inventory says transport tls, and an alert
    trusting the CA (``--ca-file``) is confirmed by every phone."""
    base = free_ports(1)[0]
    inventory = tmp_path / "phones.csv"
    args = [sys.executable, "-m", "phonecast", "fleet", "--count", "3", "--base-port", str(base),
            "--inventory-out", str(inventory), "--quiet", "--duration", "60",
            *_tls_args(pki)]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        assert "3 phone(s) listening" in proc.stderr.readline()
        rows = inventory.read_text().splitlines()
        assert rows[0].split(",")[5] == "transport"
        assert [row.split(",")[5] for row in rows[1:]] == ["tls"] * 3
        alert = phonecast(
            "alert", "--inventory", str(inventory), "--text", "Over TLS", "--json",
            "--confirm-timeout", "10", "--ca-file", str(pki.ca_file),
            "--db", str(tmp_path / "c.db"), timeout=60,
        )  # fmt: skip
    finally:
        proc.terminate()
        proc.wait()
    assert alert.returncode == 0, alert.stdout + alert.stderr
    outcomes = [p["outcome"] for p in json.loads(alert.stdout)["phones"]]
    assert outcomes == ["confirmed"] * 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tls-cert", "/nonexistent/cert.pem"], "cannot read --tls-cert"),
        (["--tls-key", "/nonexistent/key.pem"], "--tls-key needs --tls-cert"),
    ],
)
def test_a_certificate_that_cannot_be_used_is_one_line_before_any_phone_starts(
    extra: list[str], message: str
) -> None:
    result = CliRunner().invoke(cli, ["phone", "--line", "1001:pw@25999", *extra])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_a_file_that_is_not_a_certificate_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    result = CliRunner().invoke(cli, ["fleet", "--count", "1", "--tls-cert", str(junk)])
    assert result.exit_code == 2, result.output
    assert "not a PEM certificate" in result.output and "Traceback" not in result.output
