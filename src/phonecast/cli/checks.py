"""What every command checks in its options, and how it says so.

Kept apart from the commands so that ``push`` and ``phone``/``fleet`` share
one spelling of an error (one line, exit 2) and one notion of a number of
seconds, with no import cycle between the commands.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Final, NoReturn, TypeVar

import click

from phonecast.credentials import redact_uri

#: Exit status of bad usage or input (README, "Exit status").
EXIT_USAGE: Final = 2

T = TypeVar("T")


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """One clear line on stderr, then exit."""
    click.echo(f"phonecast: {message}", err=True)
    sys.exit(code)


def parse_seconds(text: str) -> float:
    """A positive, finite number of seconds (``nan`` and ``inf`` are not)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError("expected a positive number of seconds")
    return seconds


def parsed_by(
    parse: Callable[[str], T],
) -> Callable[[click.Context, click.Parameter, str | None], T | None]:
    """A click callback that reads an option with ``parse`` while the command
    line is parsed, before anything starts: a ValueError becomes one line
    naming the option and the value (the form of :func:`fail`, exit 2)."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> T | None:
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as exc:
            fail(f"bad {param.opts[0]} {value!r}: {exc}")

    return callback


__all__ = ["EXIT_USAGE", "fail", "parse_seconds", "parsed_by", "redact_uri"]
