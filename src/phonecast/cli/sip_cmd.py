"""``phonecast sip ...``: tools for people debugging SIP traces."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from phonecast.sip import (
    HeaderError,
    Message,
    ParseError,
    Request,
    SipError,
    UasPolicy,
    ValidationError,
    parse_message,
    validate,
)
from phonecast.sip.errors import redact_header


@click.group()
def sip() -> None:
    """SIP tools: parse and check messages."""


def _describe(path: str, data: bytes, policy: UasPolicy | None) -> dict[str, Any]:
    result: dict[str, Any] = {"file": path, "ok": False}
    try:
        msg = parse_message(data)
    except ParseError as exc:
        result.update(
            stage="parse",
            kind=exc.kind,
            line=exc.line,
            error=exc.message,
            status_code=exc.status_code,
        )
        return result
    result.update(_summary(msg))
    try:
        validate(msg, policy)
    except HeaderError as exc:
        result.update(
            stage="header", header=exc.header, error=exc.message, status_code=exc.status_code
        )
        return result
    except ValidationError as exc:
        result.update(
            stage="validate", error=exc.message, status_code=exc.status_code, reason=exc.reason
        )
        return result
    except SipError as exc:
        result.update(stage="validate", error=exc.message, status_code=exc.status_code)
        return result
    result["ok"] = True
    return result


def _summary(msg: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"start_line": msg.start_line()}
    if isinstance(msg, Request):
        out.update(type="request", method=msg.method, uri=str(msg.uri))
    else:
        out.update(type="response", status=msg.status_code, reason=msg.reason)  # type: ignore[attr-defined]
    out["headers"] = [[n, redact_header(n, v, limit=10_000)] for n, v in msg.headers]
    out["body_length"] = len(msg.body)
    return out


@sip.command("parse")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--json", "as_json", is_flag=True, help="One JSON document for machines.")
@click.option(
    "--uas-checks/--no-uas-checks",
    default=False,
    help="Also apply a UAS's application checks (416, 420, 415, 401, 406).",
)
def parse_cmd(files: tuple[str, ...], as_json: bool, uas_checks: bool) -> None:
    """Parse and validate SIP messages, one per FILE (``-`` for stdin).

    Exit status is 0 only if every file parsed and validated, 1 if any did
    not, 2 if a file could not be read.
    """
    policy = UasPolicy() if uas_checks else None
    results = []
    for path in files:
        try:
            data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        except OSError as exc:
            click.echo(f"phonecast: cannot read {path}: {exc.strerror}", err=True)
            sys.exit(2)
        results.append(_describe(path, data, policy))
    if as_json:
        click.echo(json.dumps(results, indent=2, ensure_ascii=False))
    else:
        _print_human(results)
    sys.exit(0 if all(r["ok"] for r in results) else 1)


def _print_human(results: list[dict[str, Any]]) -> None:
    """The results as tables.  What comes from the message is handed to rich
    as ``Text``, never as markup: a reason phrase ``OK [/]`` raised a
    MarkupError, and ``[bold]`` in a request line was silently eaten.  A
    file's start line and an error are one line each, never wrapped at the
    console's width (80 columns when piped), so that tools can grep them."""
    console = Console(highlight=False)
    for r in results:
        if "start_line" in r:
            console.print(
                Text.assemble((str(r["file"]), "bold"), f": {r['start_line']}"), soft_wrap=True
            )
        if not r["ok"]:
            where = f":{r['line']}" if r.get("line") else ""
            header = f" [{r['header']}]" if r.get("header") else ""
            code = f" (a UAS answers {r['status_code']})" if r.get("status_code") else ""
            line = f"{r['file']}{where}: {r['stage']} error{header}: {r['error']}{code}"
            console.print(Text(line, style="red"), soft_wrap=True)
            continue
        table = Table(show_header=True, header_style="bold", box=None)
        table.add_column("header")
        table.add_column("value", overflow="fold")
        for name, value in r["headers"]:
            table.add_row(Text(name), Text(value))
        console.print(table)
        console.print(f"body: {r['body_length']} octets\n", markup=False)
