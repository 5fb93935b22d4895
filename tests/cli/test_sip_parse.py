"""``phonecast sip parse``: human and JSON output, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from phonecast.cli import cli
from tests.conftest import CORPUS

R = CORPUS / "rfc4475"


def test_valid_file_exits_zero_and_lists_headers() -> None:
    result = CliRunner().invoke(cli, ["sip", "parse", str(R / "wsinv.dat")])
    assert result.exit_code == 0, result.output
    assert "NewFangledHeader" in result.output


def test_json_reports_parse_error_with_kind() -> None:
    result = CliRunner().invoke(
        cli, ["sip", "parse", "--json", str(R / "ncl.dat"), str(R / "esc01.dat")]
    )
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc[0]["ok"] is False and doc[0]["stage"] == "parse"
    assert doc[0]["kind"] == "content-length"
    assert doc[1]["ok"] is True and doc[1]["method"] == "INVITE"


def test_header_error_names_header_and_code() -> None:
    result = CliRunner().invoke(cli, ["sip", "parse", str(R / "baddate.dat")])
    assert result.exit_code == 1
    assert "[Date]" in result.output and "400" in result.output


def test_uas_checks_flag_applies_policy() -> None:
    plain = CliRunner().invoke(cli, ["sip", "parse", str(R / "unkscm.dat")])
    assert plain.exit_code == 0
    checked = CliRunner().invoke(
        cli, ["sip", "parse", "--uas-checks", "--json", str(R / "unkscm.dat")]
    )
    assert checked.exit_code == 1 and json.loads(checked.output)[0]["status_code"] == 416


def test_unreadable_file_is_exit_two(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["sip", "parse", str(tmp_path / "missing.sip")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_authorization_is_redacted(tmp_path: Path) -> None:
    msg = (
        (R / "regaut01.dat")
        .read_bytes()
        .replace(
            b"NoOneKnowsThisScheme opaque-data=here", b'Digest username="u", response="deadbeef"'
        )
    )
    path = tmp_path / "auth.sip"
    path.write_bytes(msg)
    result = CliRunner().invoke(cli, ["sip", "parse", "--json", str(path)])
    assert result.exit_code == 0
    assert "deadbeef" not in result.output


def test_square_brackets_in_a_message_are_text_not_markup(tmp_path: Path) -> None:
    """A reason phrase ``OK [/]`` raised rich's MarkupError (exit 1, which
    also means "invalid message"); ``[bold]`` in a request line vanished."""
    good = tmp_path / "r1.sip"
    good.write_bytes(
        b"SIP/2.0 200 OK [/]\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n"
        b"To: <sip:b@h>\r\nCall-ID: x\r\nCSeq: 1 NOTIFY\r\nSubject: [red]x[/]\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    bad = tmp_path / "r2.sip"
    bad.write_bytes(b"garbage [bold]\r\n\r\n")
    shown = CliRunner().invoke(cli, ["sip", "parse", str(good)], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "200 OK [/]" in shown.output and "[red]x[/]" in shown.output
    refused = CliRunner().invoke(cli, ["sip", "parse", str(bad)], terminal_width=200)
    assert refused.exit_code == 1, refused.output
    assert "MarkupError" not in repr(refused.exception)
    assert "garbage [bold]" in refused.output


def test_a_start_line_or_an_error_is_one_line_however_long_the_path(tmp_path: Path) -> None:
    """Piped, rich wraps at 80 columns: a long path split the start line
    (``...r1.sip: SIP/2.0 200`` then ``OK``) and errors, which tools grep."""
    deep = tmp_path / ("d" * 60)
    deep.mkdir()
    good, bad = deep / "good.sip", deep / "bad.sip"
    good.write_bytes(
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n"
        b"To: <sip:b@h>\r\nCall-ID: x\r\nCSeq: 1 NOTIFY\r\nContent-Length: 0\r\n\r\n"
    )
    bad.write_bytes(b"garbage\r\n\r\n")
    result = CliRunner().invoke(cli, ["sip", "parse", str(good), str(bad)])
    assert f"{good}: SIP/2.0 200 OK\n" in result.output, result.output
    assert any(ln.startswith(f"{bad}") and "error" in ln for ln in result.output.splitlines())
