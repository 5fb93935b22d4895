"""``phonecast phone`` and ``phonecast fleet``: emulated SPA phones."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import math
import os
import re
import resource
import signal
import socket
import string
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table

from phonecast.campaign.inventory import Phone, write_inventory_csv
from phonecast.cli.push_cmd import fail
from phonecast.credentials import Secret, SecretError, resolve_secret
from phonecast.net.endpoint import DEFAULT_MAX_SERVER_TRANSACTIONS
from phonecast.net.loop import run as run_loop
from phonecast.net.loop import settle
from phonecast.phone.config import LineConfig, PhoneConfig, PhoneSettings
from phonecast.phone.emulator import PhoneHost, PhoneState
from phonecast.phone.events import EventLog
from phonecast.sip import SipUri

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def parse_line(spec: str) -> LineConfig:
    """``USER[/AUTHID]:PASSWORD@PORT`` (PASSWORD may be env:VAR or file:PATH)."""
    shown = f"bad --line {_without_password(spec)!r}"
    head, at, port_text = spec.rpartition("@")
    if not at or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        fail(f"{shown}: expected USER[/AUTHID]:PASSWORD@PORT")
    ident, colon, password = head.partition(":")
    if not colon or not ident or not password:
        fail(f"{shown}: expected USER[/AUTHID]:PASSWORD@PORT")
    user, _, auth_id = ident.partition("/")
    try:
        secret = resolve_secret(password)
    except SecretError as exc:
        fail(f"{shown}: {exc}")
    return LineConfig(user, secret, int(port_text), auth_id or None)


def _without_password(spec: str) -> str:
    """A --line as an error may show it: whatever follows the first colon,
    up to the last @ after it, is the password (or where it comes from) and
    is shown as ``***``."""
    ident, colon, rest = spec.partition(":")
    if not colon:
        return spec
    _, at, port_text = rest.rpartition("@")
    return f"{ident}:***@{port_text}" if at else f"{ident}:***"


#: Where --register sends when no port is given (RFC 3261 19.1.2, UDP/TCP).
DEFAULT_SIP_PORT: Final = 5060


def parse_registrar(text: str) -> str:
    """``HOST[:PORT]`` or ``[IPV6][:PORT]`` as ``host:port`` (``[v6]:port``),
    the one form the emulator's REGISTER splits at its last colon.

    HOST must be an address: the emulator sends to it as it is, with no
    lookup (a name would be resolved by a blocking call on every datagram).
    A bare IPv6 address is refused rather than guessed at: in ``fe80::1:5060``
    nothing says whether 5060 is the port or the last group.
    """
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError("expected [IPV6] or [IPV6]:PORT")
        port_text = rest[1:] if rest else None
    elif text.count(":") > 1:
        raise ValueError("write an IPv6 address in brackets, as in [::1]:5060")
    else:
        host, colon, port_text_or_empty = text.partition(":")
        port_text = port_text_or_empty if colon else None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            "HOST must be an IP address (an IPv6 one in brackets); names are not looked up"
        ) from None
    if (address.version == 6) != text.startswith("["):
        raise ValueError("only an IPv6 address goes in brackets")
    port = DEFAULT_SIP_PORT
    if port_text is not None:
        digits = port_text.isascii() and port_text.isdigit() and len(port_text) <= 5
        if not (digits and 0 < int(port_text) < 65536):
            raise ValueError(f"PORT must be a number from 1 to 65535, not {port_text!r}")
        port = int(port_text)
    shown = f"[{address}]" if address.version == 6 else str(address)
    return f"{shown}:{port}"


#: The longest --nonce-lifetime, a day.  Servers keep a nonce minutes
#: (Kamailio's nonce_expire is 300 s, field guide); a day is past any test,
#: and far short of the lifetimes (~1e305 s) that overflow the digest
#: server's arithmetic in milliseconds.
MAX_NONCE_LIFETIME: Final = 86_400.0


def parse_seconds(text: str) -> float:
    """A positive, finite number of seconds (``nan`` and ``inf`` are not)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError("expected a positive number of seconds")
    return seconds


def parse_nonce_lifetime(text: str) -> float:
    """Seconds a nonce stays good: positive, at most :data:`MAX_NONCE_LIFETIME`."""
    seconds = parse_seconds(text)
    if seconds > MAX_NONCE_LIFETIME:
        raise ValueError(f"at most {MAX_NONCE_LIFETIME:.0f} seconds (a day)")
    return seconds


def parse_source_address(text: str) -> str:
    """An IPv4 or IPv6 address, spelt as a socket reports a datagram's source
    (``0:0::1`` as ``::1``): the phone compares the two as text."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError("expected an IP address (IPv4 or IPv6), the proxy's") from None
    if address.version == 6 and address.scope_id is None:
        return socket.inet_ntop(socket.AF_INET6, address.packed)
    return str(address)


def _parsed_by(
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


def raise_fd_limit(wanted: int) -> None:
    """A fleet needs a socket per line: lift the soft file limit if we can."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _settings(
    no_auth: bool,
    realm: str,
    algorithm: str,
    nonce_lifetime: float,
    strict_uri: bool,
    restrict_source: str | None,
    call_mode: str,
    strict_url_body: bool,
    registrar: str | None = None,
) -> PhoneSettings:
    return PhoneSettings(
        registrar=registrar,
        auth_notify=not no_auth,
        restrict_source_ip=restrict_source,
        realm=realm,
        algorithm=algorithm,
        nonce_lifetime=nonce_lifetime,
        strict_uri=strict_uri,
        call_mode=call_mode,
        strict_url_body=strict_url_body,
    )


def _common(func: F) -> F:
    options = [
        click.option(
            "--host", default="127.0.0.1", show_default=True, help="Address to listen on."
        ),
        click.option(
            "--events",
            "events_path",
            type=click.Path(dir_okay=False),
            help="Write one JSON object per event to this file.",
        ),
        click.option(
            "--no-auth",
            is_flag=True,
            help="Accept NOTIFYs without a digest (Auth_Resync-Reboot = no).",
        ),
        click.option("--realm", default="phonecast", show_default=True),
        click.option(
            "--algorithm",
            type=click.Choice(["MD5", "SHA-256", "SHA-512-256"]),
            default="MD5",
            show_default=True,
        ),
        click.option(
            "--nonce-lifetime",
            default="300",
            show_default=True,
            metavar="SECONDS",
            callback=_parsed_by(parse_nonce_lifetime),
            help="How long a challenge's nonce stays good (at most a day).",
        ),
        click.option("--strict-uri", is_flag=True, help="Require digest uri == Request-URI."),
        click.option(
            "--strict-url-body",
            is_flag=True,
            help="Refuse URL bodies with trailing CR/LF (SPA500 7.4.4+).",
        ),
        click.option(
            "--restrict-source",
            metavar="ADDRESS",
            callback=_parsed_by(parse_source_address),
            help="Only accept SIP from this IP address (a proxy's).",
        ),
        click.option(
            "--call-mode",
            type=click.Choice(["answer", "busy", "decline"]),
            default="answer",
            show_default=True,
        ),
        click.option(
            "--duration",
            metavar="SECONDS",
            callback=_parsed_by(parse_seconds),
            help="Stop after this many seconds.",
        ),
        click.option(
            "--register",
            "registrar",
            metavar="HOST[:PORT]",
            callback=_parsed_by(parse_registrar),
            help=(
                "REGISTER every line at this address (port 5060 if none; IPv6 in "
                "brackets), digest with the line's credentials."
            ),
        ),
        click.option(
            "--max-transactions",
            type=click.IntRange(1),
            default=DEFAULT_MAX_SERVER_TRANSACTIONS,
            show_default=True,
            help="Live SIP transactions (~2.2 KB each) before new requests are answered 503.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.command("phone")
@click.option(
    "--line",
    "lines",
    multiple=True,
    required=True,
    help="USER[/AUTHID]:PASSWORD@PORT, once per line.",
)
@click.option("--name", default="phone-1", show_default=True)
@click.option("--quiet", is_flag=True, help="Do not draw the screen.")
@_common
def phone(
    lines: tuple[str, ...],
    name: str,
    quiet: bool,
    host: str,
    events_path: str | None,
    no_auth: bool,
    realm: str,
    algorithm: str,
    nonce_lifetime: float,
    strict_uri: bool,
    strict_url_body: bool,
    restrict_source: str | None,
    call_mode: str,
    duration: float | None,
    registrar: str | None,
    max_transactions: int,
) -> None:
    """Emulate one SPA phone with one or more lines (one SIP port each)."""
    configs = tuple(parse_line(spec) for spec in lines)
    settings = _settings(
        no_auth,
        realm,
        algorithm,
        nonce_lifetime,
        strict_uri,
        restrict_source,
        call_mode,
        strict_url_body,
        registrar,
    )
    config = PhoneConfig(name, host, configs, settings)
    console = Console(stderr=True)

    def show(state: PhoneState) -> None:
        if not quiet:
            console.print(f"[bold]{state.config.name}[/] shows:\n{state.screen.render()}")

    events = open_event_log(events_path)
    run_loop(_serve([config], events, duration, show, False, max_transactions))


@click.command("fleet")
@click.option("--count", type=click.IntRange(1, 50_000), required=True)
@click.option("--base-port", type=click.IntRange(1024, 65535), default=20000, show_default=True)
@click.option(
    "--first-user",
    type=int,
    default=1001,
    show_default=True,
    help="User id of the first phone; the others count up.",
)
@click.option(
    "--password-pattern",
    default="pw{n}",
    show_default=True,
    help="Password of phone n ({n} and {user} are replaced).",
)
@click.option(
    "--inventory-out",
    type=click.Path(dir_okay=False),
    help="Write the fleet as a campaign inventory (CSV).",
)
@click.option(
    "--quiet",
    is_flag=True,
    help="No summary (live on a terminal, else one line at exit); spares the cost of counting it.",
)
@click.option("--tcp", is_flag=True, help="Also listen on TCP (one more socket per phone).")
@_common
def fleet(
    count: int,
    base_port: int,
    first_user: int,
    password_pattern: str,
    inventory_out: str | None,
    quiet: bool,
    tcp: bool,
    host: str,
    events_path: str | None,
    no_auth: bool,
    realm: str,
    algorithm: str,
    nonce_lifetime: float,
    strict_uri: bool,
    strict_url_body: bool,
    restrict_source: str | None,
    call_mode: str,
    duration: float | None,
    registrar: str | None,
    max_transactions: int,
) -> None:
    """Emulate COUNT phones in one process (one line each, consecutive ports)."""
    if base_port + count - 1 > 65535:
        fail(f"--base-port {base_port} + --count {count} runs past port 65535")
    settings = _settings(
        no_auth,
        realm,
        algorithm,
        nonce_lifetime,
        strict_uri,
        restrict_source,
        call_mode,
        strict_url_body,
        registrar,
    )
    settings = dataclasses.replace(settings, tcp=tcp)
    users = [str(first_user + i) for i in range(count)]
    passwords = fleet_passwords(password_pattern, users)
    configs = []
    for n, (user, password) in enumerate(zip(users, passwords, strict=True), 1):
        line = LineConfig(user, Secret(password, "fleet"), base_port + n - 1)
        configs.append(PhoneConfig(f"phone-{n}", host, (line,), settings))
    events = open_event_log(events_path)
    if inventory_out:
        try:
            write_fleet_inventory(inventory_out, configs)
        except OSError as exc:
            fail(f"cannot write --inventory-out {inventory_out!r}: {exc.strerror or exc}")
    raise_fd_limit(count * (2 if tcp else 1) + 256)
    run_loop(_serve(configs, events, duration, None, not quiet, max_transactions))


#: The longest password --password-pattern may make, in characters.  The
#: field guide gives no limit for an SPA line's password (nor does SIP for a
#: digest's), so the bound is the fleet's, not the phone's: far past any real
#: account password, it stops a runaway pattern such as ``pw{n:>300000000}``,
#: 300 MB for each phone before the first one listens, and keeps 50,000
#: phones' passwords to a few MB.
MAX_FLEET_PASSWORD: Final = 128


def fleet_passwords(pattern: str, users: Sequence[str]) -> list[str]:
    """Each phone's password from --password-pattern (phone n is ``users[n-1]``),
    or a one-line error.

    The format specs are looked at before anything is formatted:
    ``str.format`` builds a field's padding whole, so a width (or precision)
    over the bound is refused unbuilt, and so is a field nested in a spec,
    whose width is unknown until formatted.  A password must not be empty (a
    line needs one) nor longer than :data:`MAX_FLEET_PASSWORD`; that last
    error does not show the pattern, which may then be a long literal password.
    """
    shown = f"bad --password-pattern {pattern!r}"
    try:
        for _, field, spec, _ in string.Formatter().parse(pattern):
            if field is None or not spec:
                continue
            if "{" in spec:
                fail(f"{shown}: a field's format may not hold another field")
            for number in re.findall(r"\d+", spec):
                if len(number.lstrip("0")) > 4 or int(number) > MAX_FLEET_PASSWORD:
                    fail(
                        f"{shown}: {number} is wider than a password may be ({MAX_FLEET_PASSWORD})"
                    )
        passwords = [pattern.format(n=n, user=user) for n, user in enumerate(users, 1)]
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
        fail(f"{shown}: {exc}")
    for n, password in enumerate(passwords, 1):
        if not password:
            fail(f"{shown}: phone {n}'s password is empty (a line needs one)")
        if len(password) > MAX_FLEET_PASSWORD:
            fail(
                f"bad --password-pattern: phone {n}'s password would be {len(password)} "
                f"characters, over {MAX_FLEET_PASSWORD}"
            )
    return passwords


def write_fleet_inventory(path: str | Path, configs: Sequence[PhoneConfig]) -> None:
    """The fleet in the inventory format ``phonecast alert`` reads.

    Written before any phone starts, to a new file beside ``path`` that is
    then renamed over it: a write that fails (no such folder, disk full)
    leaves no half inventory and any earlier one whole, and the fleet never
    runs without the inventory that says how to reach it.  The file is the
    owner's only (``mkstemp``): it holds the fleet's passwords.
    """
    phones = []
    for i, cfg in enumerate(configs):
        line = cfg.lines[0]
        shown = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
        target = SipUri(shown, line.user, port=line.port)
        phones.append(
            Phone(
                cfg.name,
                target,
                line.digest_user,
                line.password,
                tags=frozenset({("fleet", None)}),
                line=i + 2,
            )
        )
    final = Path(path)
    fd, partial = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write_inventory_csv(partial, phones)
        os.replace(partial, final)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def open_event_log(path: str | None) -> EventLog:
    """The --events log, opened before any phone starts: a path that cannot
    be written is bad input, better refused at once than found out as a
    traceback once the phones are listening."""
    try:
        return EventLog(path)
    except OSError as exc:
        fail(f"cannot write --events {path!r}: {exc.strerror or exc}")


async def _serve(
    configs: Sequence[PhoneConfig],
    events: EventLog,
    duration: float | None,
    on_screen: object,
    summary: bool,
    max_transactions: int,
) -> None:
    """Run the phones until ``duration`` ends or a signal comes.

    With ``summary`` (a fleet without --quiet) the counts are shown live on
    a terminal; on anything else (a pipe, a log file, CI) a live table would
    be noise, so one plain line is printed when the fleet stops.
    """
    tally = FleetTally(events) if summary else None
    live = tally is not None and sys.stderr.isatty()
    host = PhoneHost(
        events=events,
        on_screen=on_screen,  # type: ignore[arg-type]
        max_server_transactions=max_transactions,
    )
    await host.start()
    try:
        for cfg in configs:
            try:
                await host.add_phone(cfg)
            except OSError as exc:
                line = _line_not_bound(host, cfg)
                fail(
                    f"cannot listen for {cfg.name} line {line.user} on {cfg.host}:{line.port}: "
                    f"{exc.strerror or exc}"
                )
        ports = f"{configs[0].lines[0].port}-{configs[-1].lines[-1].port}"
        click.echo(
            f"phonecast: {len(configs)} phone(s) listening on {configs[0].host} ports {ports}",
            err=True,
        )
        if configs[0].settings.registrar:
            codes = []
            for state in host.phones.values():
                codes += await host.register(state)
            ok = sum(code == 200 for code in codes)
            click.echo(
                f"phonecast: {ok} of {len(codes)} line(s) registered at "
                f"{configs[0].settings.registrar}",
                err=True,
            )
        settle()  # the phones are up: keep the collector off them
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        if duration is not None:
            loop.call_later(duration, stop.set)
        if tally is not None and live:
            await _live_summary(tally, stop)
        else:
            await stop.wait()
    finally:
        await host.close()
    if tally is not None and not live:
        click.echo(tally.line(), err=True)


def _line_not_bound(host: PhoneHost, cfg: PhoneConfig) -> LineConfig:
    """The line of ``cfg`` whose listen failed: ``add_phone`` binds the lines
    in order and records each once bound, so it is the first not recorded
    (counted, not looked up by port, so two lines on one port come out right)."""
    bound = sum(line.phone.config is cfg for line in host.lines.values())
    return cfg.lines[min(bound, len(cfg.lines) - 1)]


class FleetTally:
    """What the fleet's summary shows, counted from the phones' events.

    Challenges and verified digests are told apart only by an event's
    fields, so the tally listens to every event: the phones then make each
    event's fields (the cost --quiet spares a fleet under load)."""

    COLUMNS: Final = ("requests", "challenges", "verified", "fetches", "screens")

    def __init__(self, events: EventLog) -> None:
        self._events = events
        self._challenges = 0
        self._verified = 0
        events.subscribe(self._count)

    def _count(self, event: dict[str, object]) -> None:
        if event["event"] == "response" and event.get("code") == 401:
            self._challenges += 1
        elif event["event"] == "auth" and event.get("ok"):
            self._verified += 1

    def values(self) -> tuple[int, ...]:
        """The numbers under :attr:`COLUMNS`, so far."""
        counts = self._events.counts
        return (
            counts["request"],
            self._challenges,
            self._verified,
            counts["fetch_finished"],
            counts["screen"],
        )

    def line(self) -> str:
        """One plain line, for a stderr that is not a terminal."""
        shown = ", ".join(f"{n} {col}" for col, n in zip(self.COLUMNS, self.values(), strict=True))
        return f"phonecast: fleet summary: {shown}"

    def table(self) -> Table:
        """The live table, for a terminal."""
        table = Table(title="phonecast fleet", show_header=True)
        for col in self.COLUMNS:
            table.add_column(col, justify="right")
        table.add_row(*map(str, self.values()))
        return table


async def _live_summary(tally: FleetTally, stop: asyncio.Event) -> None:
    with Live(tally.table(), refresh_per_second=2, console=Console(stderr=True)) as live:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
            live.update(tally.table())
