"""What every command checks in its options, and how it says so.

Kept apart from the commands so that ``push`` and ``phone``/``fleet`` share
one spelling of an error (one line, exit 2) and one notion of a number of
seconds, with no import cycle between the commands.
"""

from __future__ import annotations

import ipaddress
import math
import sys
from collections.abc import Callable
from typing import Final, NoReturn, TypeVar

import click

from phonecast.ciscoxml import is_http_url
from phonecast.credentials import redact_uri
from phonecast.sip._abnf import HOSTNAME_RE, small_number

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


#: The longest --timeout: an hour a target is past any phone's answer, and
#: far short of what overflows the event loop's timer arithmetic.
MAX_PUSH_TIMEOUT: Final = 3600.0

#: The longest --deadline and --confirm-timeout: thirty days.  Past that a
#: number is a typo, and ``inf`` or 1e300 would overflow the loop's timers.
MAX_CAMPAIGN_SECONDS: Final = 30 * 86400.0

#: The highest --rate: a million pushes a second is far past what any sender
#: here makes, so a larger figure is a typo; 0 is "no limit".
MAX_RATE: Final = 1_000_000.0


def seconds_up_to(most: float, spelt: str = "") -> Callable[[str], float]:
    """A reader of a positive, finite number of seconds, at most ``most``
    (``spelt`` says it in words, for the error)."""

    def parse(text: str) -> float:
        seconds = parse_seconds(text)
        if seconds > most:
            raise ValueError(f"at most {most:.0f} seconds{spelt}")
        return seconds

    return parse


#: --timeout: at most an hour.
parse_timeout: Final = seconds_up_to(MAX_PUSH_TIMEOUT)
#: --deadline: at most thirty days.
parse_long_seconds: Final = seconds_up_to(MAX_CAMPAIGN_SECONDS, " (thirty days)")


def number_from_zero(text: str, most: float, what: str) -> float:
    """A finite number from 0 to ``most`` (``what`` names it in the error)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 <= value <= most):
        raise ValueError(f"expected {what} from 0 to {most:.0f}")
    return value


def parse_wait(text: str) -> float:
    """--confirm-timeout: seconds from 0 (do not wait) to thirty days."""
    return number_from_zero(text, MAX_CAMPAIGN_SECONDS, "a number of seconds")


def parse_rate(text: str) -> float:
    """--rate: pushes a second, 0 for no limit."""
    return number_from_zero(text, MAX_RATE, "pushes a second")


def parse_serve(text: str) -> str:
    """--serve: ``HOST:PORT``, ``[IPV6]:PORT`` or ``:PORT`` (our address
    toward the phones); port 0 picks a free one.  Returned as given."""
    host, colon, port = text.rpartition(":")
    if not colon:
        raise ValueError("expected HOST:PORT (or :PORT)")
    if small_number(port) is None:
        raise ValueError(f"port {port!r} is not a number from 0 to 65535")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address") from None
    elif ":" in host:
        raise ValueError(f"an IPv6 address goes in brackets: [{host}]:{port}")
    elif host:
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            if HOSTNAME_RE.fullmatch(host) is None:
                raise ValueError(f"{host!r} is not a host name or IP address") from None
    return text


def serve_host(text: str) -> str:
    """The host of a checked --serve, without brackets ('' for :PORT)."""
    return text.rpartition(":")[0].strip("[]")


def parse_public_url(text: str) -> str:
    """--public-url: the http(s) base the phones fetch their pages under."""
    if not is_http_url(text):
        raise ValueError("expected an http:// or https:// URL with a host")
    return text


def timeout_option(help_text: str) -> Callable[[Callable[..., object]], Callable[..., object]]:
    """The --timeout of ``push`` and ``alert``: seconds per push, read by
    :func:`parse_timeout`."""
    return click.option(
        "--timeout",
        default="8",
        show_default=True,
        metavar="SECONDS",
        callback=parsed_by(parse_timeout),
        help=help_text,
    )


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
            # A URL's password, if the value has one, is not echoed.
            fail(f"bad {param.opts[0]} {redact_uri(value)!r}: {exc}")

    return callback


__all__ = [
    "EXIT_USAGE",
    "MAX_PUSH_TIMEOUT",
    "fail",
    "number_from_zero",
    "parse_long_seconds",
    "parse_public_url",
    "parse_rate",
    "parse_seconds",
    "parse_serve",
    "parse_timeout",
    "parse_wait",
    "parsed_by",
    "redact_uri",
    "seconds_up_to",
    "serve_host",
    "timeout_option",
]
