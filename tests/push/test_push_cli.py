"""`phonecast push`: bad input gives one clear line and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from phonecast.cli import cli


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sip:1001@exa mple.com", "--url", "http://x/a"], "bad target"),
        (["tel:+12345", "--url", "http://x/a"], "sip: or sips: URI"),
        (["sip:10.0.0.5", "--url", "http://x/a"], "name the line's user"),
        (
            ["sip:1001@127.0.0.1", "--password-file", "/nonexistent/pw", "--url", "http://x/a"],
            "cannot read password file",
        ),
        (
            [
                "sip:1001@127.0.0.1",
                "--execute",
                "Key:A",
                "--execute",
                "Key:B",
                "--execute",
                "Key:C",
                "--execute",
                "Key:D",
            ],
            "at most 3",
        ),
        (["sip:1001@127.0.0.1", "--execute", "SoftKey:Exit"], "SoftKey"),
        (["sip:1001@127.0.0.1", "--url", "ftp://x/a"], "http:// or https://"),
        (["sip:1001@127.0.0.1"], "nothing to push"),
        (["sip:1001@127.0.0.1", "--event", "report", "--vendor", "polycom"], "no event"),
        (["sip:1001@127.0.0.1:5070;transport=sctp", "--event", "resync"], "not udp, tcp or tls"),
        (["sip:1001@127.0.0.1:1", "--event", "resync", "--user", "1001\r\nX-Inj: 1"], "--user"),
        (["sip:1001@127.0.0.1:1", "--event", "resync", "--user", ""], "may not be empty"),
        (["sip:1001@127.0.0.1:1", "--event", "xml"], "give --url or --execute"),
        (["sip:1001@127.0.0.1:1", "--url", "http://x/a", "--content-type", ""], "may not be empty"),
        (
            ["sip:1001@127.0.0.1:1", "--event", "resync", "--subscription-state", " "],
            "may not be empty",
        ),
        (
            [
                *("sip:1001@127.0.0.1:1", "--event", "resync", "--password", "a"),
                *("--password-file", "/dev/null"),
            ],
            "cannot go together",
        ),
        (["sip:1001@h.test", "--event", "resync", "--nameserver", "127.0.0.1:99999"], "bad port"),
        (["sip:1001@h.test", "--event", "resync", "--nameserver", "[::1]x"], "bad port"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["push", *args], env={"PHONECAST_PASSWORD": "pw"})
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len([ln for ln in result.output.splitlines() if ln.startswith("phonecast:")]) == 1


def test_no_password_without_a_terminal_is_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["push", "sip:1001@127.0.0.1", "--url", "http://x/a"], env={"PHONECAST_PASSWORD": None}
    )  # type: ignore[dict-item]
    assert result.exit_code == 2 and "no password" in result.output


def test_plain_password_warns(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "push",
            "sip:1001@127.0.0.1:1",
            "--url",
            "http://x/a",
            "--password",
            "pw",
            "--timeout",
            "0.3",
        ],
    )
    assert "visible in the process list" in result.output
    assert result.exit_code == 5


def test_trace_shows_messages_with_digests_redacted(tmp_path: Path) -> None:
    from tests.interop.peers import emulated_phone, free_udp_port, phonecast

    port = free_udp_port()
    with emulated_phone(f"1001:s3cr3t-pw@{port}", events=tmp_path / "ev.jsonl"):
        run = phonecast(
            "push",
            f"sip:1001@127.0.0.1:{port}",
            "--url",
            "http://127.0.0.1:9/a",
            "--trace",
            env={"PHONECAST_PASSWORD": "s3cr3t-pw"},
        )
    assert run.returncode == 0, run.stderr
    trace = run.stderr
    assert trace.count("NOTIFY sip:1001@") == 2 and "SIP/2.0 401" in trace
    auth = [ln for ln in trace.splitlines() if ln.startswith("Authorization:")]
    assert len(auth) == 1 and 'response="<redacted>"' in auth[0]
    assert "s3cr3t-pw" not in trace + run.stdout


def test_trace_hides_the_passwords_of_the_uris_in_a_message() -> None:
    from phonecast.cli.push_cmd import redact_trace

    assert "SEMIPW" not in redact_trace(b"http://ad;min:SEMIPW@10.0.0.1/x")
    assert "QUOTEPW" not in redact_trace(b'URL="http://admin:it\'sQUOTEPW@h/x"')
    message = (
        b"NOTIFY sip:1001@h SIP/2.0\r\nContact: <sip:1001:CONTACTPW@10.0.0.1:5060>\r\n\r\n"
        b"http://uuu:BODYPW@127.0.0.1:28080/a.xml?q=a@b\r\n"
        b'<CiscoIPPhoneExecute><ExecuteItem URL="https://u:ITEMPW@h/x"/></CiscoIPPhoneExecute>'
    )
    shown = redact_trace(message)
    assert "PW" not in shown, shown
    assert "<sip:1001:***@10.0.0.1:5060>" in shown
    assert "http://uuu:***@127.0.0.1:28080/a.xml?q=a@b" in shown
    assert 'URL="https://u:***@h/x"' in shown
    assert "sip:1001@h SIP/2.0" in shown


def test_a_trace_that_cannot_be_written_does_not_change_the_outcome() -> None:
    """With stderr on a full disk the tracer's error was taken for a
    transport error: "unreachable", exit 5, for a push the phone took."""
    import os
    import subprocess
    import sys

    from tests.interop.peers import emulated_phone, free_udp_port

    port = free_udp_port()
    with (
        Path("/dev/full").open("w") as full,
        emulated_phone(f"1001:s3cr3t-pw@{port}", events=Path("/dev/null")),
    ):
        run = subprocess.run(
            [
                *(sys.executable, "-m", "phonecast", "push", f"sip:1001@127.0.0.1:{port}"),
                *("--event", "resync", "--trace"),
            ],
            stdout=subprocess.PIPE,
            stderr=full,
            text=True,
            timeout=60,
            env={**os.environ, "PHONECAST_PASSWORD": "s3cr3t-pw"},
        )
    assert run.returncode == 0, run.stdout
    assert run.stdout.startswith("delivered: 200")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_the_commands_push_to_the_emulator_over_each_transport(
    tmp_path: Path, transport: str
) -> None:
    """``phonecast push`` to ``phonecast phone``, both as users run them
    (on uvloop, whose transports differ from asyncio's), over UDP and TCP:
    the challenge is answered over that transport, the phone verifies the
    push once and its events name the transport each request came over."""
    import json

    from tests.interop.peers import emulated_phone, free_udp_port, phonecast

    port = free_udp_port()
    events = tmp_path / "ev.jsonl"
    with emulated_phone(f"1001:s3cr3t-pw@{port}", events=events):
        run = phonecast(
            "push",
            f"sip:1001@127.0.0.1:{port}",
            "--url",
            "http://127.0.0.1:9/a",
            "--transport",
            transport,
            "--json",
            env={"PHONECAST_PASSWORD": "s3cr3t-pw"},
        )
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    report = json.loads(run.stdout)
    assert report["outcome"] == "delivered" and report["challenged"], report
    assert report["target"] == f"{transport}:127.0.0.1:{port}"
    seen = [json.loads(line) for line in events.read_text().splitlines()]
    verdicts = [e["ok"] for e in seen if e["event"] == "auth"]
    assert verdicts == [False, True], seen
    assert {e["transport"] for e in seen if e["event"] == "request"} == {transport}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sip:1001:TOPSECRET@127.0.0.1:27052", "--url", "http://x/a"], "carries no password"),
        (["sip:1001:TOP SECRET@127.0.0.1:27052", "--url", "http://x/a"], "invalid password"),
        (["sip:1001:TOPSECRET@exa mple", "--url", "http://x/a"], "invalid host"),
        (["1001:TOPSECRET@127.0.0.1", "--url", "http://x/a"], "not a URI"),
    ],
)
def test_a_target_with_a_password_is_refused_and_never_echoed(
    args: list[str], message: str
) -> None:
    result = CliRunner().invoke(cli, ["push", *args], env={"PHONECAST_PASSWORD": "pw"})
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "SECRET" not in result.output and ":***@" in result.output


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--content-type", "text/html\r\nX-Evil: 1"),
        ("--subscription-state", "active\r\nX-Evil: 1"),
        ("--event", "XML-Service\nX-Evil: 1"),
        ("--event", "XML-Service\x00"),
    ],
)
def test_a_control_character_in_a_header_option_is_refused(option: str, value: str) -> None:
    result = CliRunner().invoke(
        cli,
        ["push", "sip:1001@127.0.0.1:1", "--url", "http://x/a", option, value],
        env={"PHONECAST_PASSWORD": "pw"},
    )
    assert result.exit_code == 2, result.output
    assert f"bad {option}" in result.output and "control character" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "x", "1e300"])
def test_a_timeout_that_is_not_a_positive_finite_number_is_refused(value: str) -> None:
    result = CliRunner().invoke(
        cli,
        ["push", "sip:1001@127.0.0.1:1", "--url", "http://x/a", "--timeout", value],
        env={"PHONECAST_PASSWORD": "pw"},
    )
    assert result.exit_code == 2, result.output
    assert "bad --timeout" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("proxy", ["bad:p=x", "pbx:99999", "a||b", "pbx:q=1", "[::1"])
def test_a_malformed_proxy_is_bad_usage_not_unreachable(proxy: str) -> None:
    result = CliRunner().invoke(
        cli,
        ["push", "sip:1001@127.0.0.1:1", "--url", "http://x/a", "--proxy", proxy],
        env={"PHONECAST_PASSWORD": "pw"},
    )
    assert result.exit_code == 2, result.output
    assert "bad --proxy" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "http://x/a", "--execute", "Key:Services"], "cannot go together"),
        (["--execute", "Key:Services", "--event", "resync"], "carries no body"),
        (["--url", "http://x/a", "--event", "reboot"], "carries no body"),
        (["--execute", "Key:Services", "--body", "url"], "--body"),
        (["--event", "resync", "--content-type", "text/plain"], "--content-type"),
    ],
)
def test_conflicting_options_are_refused(args: list[str], message: str) -> None:
    result = CliRunner().invoke(
        cli, ["push", "sip:1001@127.0.0.1:1", *args], env={"PHONECAST_PASSWORD": "pw"}
    )
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_an_event_beside_execute_is_the_notify_s_event() -> None:
    from phonecast.cli.push_cmd import build_payload

    payload = build_payload(None, ("Key:Services",), "x-custom", None, None, None)
    assert payload.event == "x-custom" and payload.kind == "execute"


def test_event_xml_is_the_xml_push_with_its_body() -> None:
    """--event xml was called an action with no body: refused with --url,
    and sent alone as an empty XML-Service NOTIFY the phone reports as an
    error, while the push said "delivered"."""
    from phonecast.cli.push_cmd import build_payload

    payload = build_payload("http://h/a.xml", (), "xml", None, None, None)
    assert payload.event == "XML-Service" and payload.body == b"http://h/a.xml"
    executed = build_payload(None, ("Key:Services",), "xml", None, None, None)
    assert executed.event == "XML-Service" and b"CiscoIPPhoneExecute" in executed.body


def test_an_outcome_line_draws_what_the_peer_sent_printable() -> None:
    """A reason phrase with BEL or an escape sequence reached the terminal."""
    from phonecast.cli.push_cmd import _describe
    from phonecast.push.pusher import Outcome

    line = _describe(Outcome("rejected", 403, "No\x07 \x1b[2Jway\x9b"))
    assert line == "rejected: 403 No\ufffd \ufffd[2Jway\ufffd"
