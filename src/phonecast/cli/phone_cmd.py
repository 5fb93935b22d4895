"""``phonecast phone`` and ``phonecast fleet``: emulated SPA phones."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import resource
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

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


def parse_line(spec: str) -> LineConfig:
    """``USER[/AUTHID]:PASSWORD@PORT`` (PASSWORD may be env:VAR or file:PATH)."""
    head, at, port_text = spec.rpartition("@")
    if not at or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        fail(f"bad --line {spec!r}: expected USER[/AUTHID]:PASSWORD@PORT")
    ident, colon, password = head.partition(":")
    if not colon or not ident or not password:
        fail(f"bad --line {spec!r}: expected USER[/AUTHID]:PASSWORD@PORT")
    user, _, auth_id = ident.partition("/")
    try:
        secret = resolve_secret(password)
    except SecretError as exc:
        fail(f"bad --line {spec!r}: {exc}")
    return LineConfig(user, secret, int(port_text), auth_id or None)


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
        click.option("--nonce-lifetime", type=float, default=300.0, show_default=True),
        click.option("--strict-uri", is_flag=True, help="Require digest uri == Request-URI."),
        click.option(
            "--strict-url-body",
            is_flag=True,
            help="Refuse URL bodies with trailing CR/LF (SPA500 7.4.4+).",
        ),
        click.option("--restrict-source", help="Only accept SIP from this address (a proxy)."),
        click.option(
            "--call-mode",
            type=click.Choice(["answer", "busy", "decline"]),
            default="answer",
            show_default=True,
        ),
        click.option("--duration", type=float, help="Stop after this many seconds."),
        click.option(
            "--register",
            "registrar",
            help="REGISTER every line at HOST:PORT (digest with the line's credentials).",
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
@click.option(
    "--ring-seconds",
    type=click.FloatRange(0, 3600),
    default=PhoneSettings().ring_seconds,
    show_default=True,
    help="How long an INVITE rings (180, early dialog) before the phone answers 200.",
)
@_common
def phone(
    lines: tuple[str, ...],
    name: str,
    quiet: bool,
    ring_seconds: float,
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
    settings = dataclasses.replace(settings, ring_seconds=ring_seconds)
    config = PhoneConfig(name, host, configs, settings)
    console = Console(stderr=True)

    def show(state: PhoneState) -> None:
        if not quiet:
            console.print(f"[bold]{state.config.name}[/] shows:\n{state.screen.render()}")

    run_loop(_serve([config], events_path, duration, show, None, max_transactions))


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
@click.option("--quiet", is_flag=True, help="No live summary.")
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
    configs = []
    for n in range(1, count + 1):
        user = str(first_user + n - 1)
        try:
            password = password_pattern.format(n=n, user=user)
        except (KeyError, IndexError, ValueError) as exc:
            fail(f"bad --password-pattern {password_pattern!r}: {exc}")
        line = LineConfig(user, Secret(password, "fleet"), base_port + n - 1)
        configs.append(PhoneConfig(f"phone-{n}", host, (line,), settings))
    if inventory_out:
        write_fleet_inventory(inventory_out, configs)
    raise_fd_limit(count * (2 if tcp else 1) + 256)
    run_loop(
        _serve(configs, events_path, duration, None, None if quiet else count, max_transactions)
    )


def write_fleet_inventory(path: str | Path, configs: Sequence[PhoneConfig]) -> None:
    """The fleet in the inventory format ``phonecast alert`` reads."""
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
    write_inventory_csv(path, phones)


async def _serve(
    configs: Sequence[PhoneConfig],
    events_path: str | None,
    duration: float | None,
    on_screen: object,
    summary_of: int | None,
    max_transactions: int,
) -> None:
    events = EventLog(events_path)
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
                fail(
                    f"cannot listen for {cfg.name} on {cfg.host}:{cfg.lines[0].port}: "
                    f"{exc.strerror}"
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
        if summary_of is not None and sys.stderr.isatty():
            await _live_summary(events, stop)
        else:
            await stop.wait()
    finally:
        await host.close()


async def _live_summary(events: EventLog, stop: asyncio.Event) -> None:
    tally = {"challenges": 0, "verified": 0}

    def count(event: dict[str, object]) -> None:
        if event["event"] == "response" and event.get("code") == 401:
            tally["challenges"] += 1
        elif event["event"] == "auth" and event.get("ok"):
            tally["verified"] += 1

    events.subscribe(count)

    def table() -> Table:
        t = Table(title="phonecast fleet", show_header=True)
        for col in ("requests", "challenges", "verified", "fetches", "screens"):
            t.add_column(col, justify="right")
        c = events.counts
        t.add_row(
            str(c["request"]),
            str(tally["challenges"]),
            str(tally["verified"]),
            str(c["fetch_finished"]),
            str(c["screen"]),
        )
        return t

    with Live(table(), refresh_per_second=2, console=Console(stderr=True)) as live:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
            live.update(table())
