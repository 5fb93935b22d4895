"""``phonecast phone`` and ``phonecast fleet``: emulated SPA phones."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import os
import resource
import signal
import ssl
import stat
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text as RichText

from phonecast.campaign.inventory import Phone, write_inventory_csv
from phonecast.campaign.report import written_in_place
from phonecast.cli.checks import fail
from phonecast.cli.phone_options import (
    check_line_ports,
    common_phone_options,
    fleet_addresses,
    fleet_passwords,
    parse_line,
    registration_transport,
    server_tls_context,
    settings_from_options,
    stream_limit_options,
)
from phonecast.credentials import Secret
from phonecast.net.limits import DEFAULT_STREAM_LIMITS, StreamLimits
from phonecast.net.loop import STREAM_FILES, raise_fd_limit, settle
from phonecast.net.loop import run as run_loop
from phonecast.phone.config import LineConfig, PhoneConfig
from phonecast.phone.emulator import PhoneHost
from phonecast.phone.events import EventLog
from phonecast.phone.state import PhoneState
from phonecast.sip import SipUri

F = TypeVar("F", bound=Callable[..., Any])


@click.command("phone")
@click.option(
    "--line",
    "lines",
    multiple=True,
    required=True,
    help=(
        "USER[/AUTHID]:PASSWORD@PORT, once per line.  A PASSWORD starting with env: "
        "or file: is read from that environment variable (env:VAR) or file (file:PATH, "
        "without its trailing newline), so it stays out of the process list; a "
        "literal password that itself starts with env: or file: must be given that way."
    ),
)
@click.option("--name", default="phone-1", show_default=True)
@click.option("--quiet", is_flag=True, help="Do not draw the screen.")
@common_phone_options
@stream_limit_options
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
    notify_types: frozenset[str] | None,
    restrict_source: str | None,
    call_mode: str,
    ring_seconds: float,
    duration: float | None,
    registrar: str | None,
    register_transport: str,
    registrar_ca: str | None,
    registrar_name: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    max_transactions: int,
    stream_limits: StreamLimits,
) -> None:
    """Emulate one SPA phone with one or more lines (one SIP port each)."""
    configs = tuple(parse_line(spec) for spec in lines)
    check_line_ports(configs)
    settings = settings_from_options(
        no_auth,
        realm,
        algorithm,
        nonce_lifetime,
        strict_uri,
        restrict_source,
        call_mode,
        strict_url_body,
        registrar,
        ring_seconds,
    )
    server_ssl = server_tls_context(tls_cert, tls_key)
    settings = dataclasses.replace(settings, tls=server_ssl is not None, notify_types=notify_types)
    settings, client_ssl = registration_transport(
        settings, register_transport, registrar_ca, registrar_name
    )
    config = PhoneConfig(name, host, configs, settings)
    show = None if quiet else screen_printer(Console(stderr=True))
    events = open_event_log(events_path)
    run_loop(
        _serve(
            [config],
            events,
            duration,
            show,
            False,
            max_transactions,
            server_ssl=server_ssl,
            client_ssl=client_ssl,
            stream_limits=stream_limits,
        )
    )


def screen_printer(console: Console) -> Callable[[PhoneState], None]:
    """What draws a phone's screen on ``console`` each time it changes.

    The emulator calls it for every page shown, and a campaign pushes the
    same page again and again: a phone whose rendering is the one last
    drawn is not drawn again (the ``screen`` event still records each).

    A console that cannot be written any more (stderr a closed pipe, as in
    ``phonecast phone ... 2>&1 | head -1``) ends the drawing, not the
    phone: the drawing is rendered apart and written here, since rich
    answers a broken pipe with SystemExit, which would stop the phone
    answering SIP."""
    drawn: dict[str, str] = {}
    broken: list[bool] = []

    def show(state: PhoneState) -> None:
        if broken:
            return
        name, drawing = state.config.name, state.screen.render()
        if drawn.get(name) == drawing:
            return
        drawn[name] = drawing
        # The drawing is a pushed page's text: printed as it is, never read
        # as rich markup ("[/]" in a title would stop the drawing, "[red]"
        # would vanish).
        with console.capture() as capture:
            console.print(RichText.assemble((name, "bold"), " shows:\n", drawing))
        try:
            console.file.write(capture.get())
            console.file.flush()
        except (OSError, ValueError):  # ValueError: the file was closed
            broken.append(True)

    return show


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
@click.option(
    "--address-per-phone",
    is_flag=True,
    help=(
        "Give each phone its own address, counting up from --host (127.0.0.1, 127.0.0.2, "
        "...), all on --base-port, as a real fleet sits on port 5060 of its own hosts; "
        "without it the phones share --host on consecutive ports."
    ),
)
@common_phone_options
@stream_limit_options
def fleet(
    count: int,
    base_port: int,
    first_user: int,
    password_pattern: str,
    inventory_out: str | None,
    quiet: bool,
    tcp: bool,
    address_per_phone: bool,
    host: str,
    events_path: str | None,
    no_auth: bool,
    realm: str,
    algorithm: str,
    nonce_lifetime: float,
    strict_uri: bool,
    strict_url_body: bool,
    notify_types: frozenset[str] | None,
    restrict_source: str | None,
    call_mode: str,
    ring_seconds: float,
    duration: float | None,
    registrar: str | None,
    register_transport: str,
    registrar_ca: str | None,
    registrar_name: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    max_transactions: int,
    stream_limits: StreamLimits,
) -> None:
    """Emulate COUNT phones in one process (one line each, consecutive ports
    or, with --address-per-phone, consecutive addresses)."""
    if address_per_phone:
        hosts = fleet_addresses(host, count)
        ports = [base_port] * count
    else:
        if base_port + count - 1 > 65535:
            fail(f"--base-port {base_port} + --count {count} runs past port 65535")
        hosts = [host] * count
        ports = [base_port + i for i in range(count)]
    settings = settings_from_options(
        no_auth,
        realm,
        algorithm,
        nonce_lifetime,
        strict_uri,
        restrict_source,
        call_mode,
        strict_url_body,
        registrar,
        ring_seconds,
    )
    server_ssl = server_tls_context(tls_cert, tls_key)
    settings = dataclasses.replace(
        settings, tcp=tcp, tls=server_ssl is not None, notify_types=notify_types
    )
    settings, client_ssl = registration_transport(
        settings, register_transport, registrar_ca, registrar_name
    )
    users = [str(first_user + i) for i in range(count)]
    passwords = fleet_passwords(password_pattern, users)
    configs = []
    for n, (user, password, address, port) in enumerate(
        zip(users, passwords, hosts, ports, strict=True), 1
    ):
        line = LineConfig(user, Secret(password, "fleet"), port)
        configs.append(PhoneConfig(f"phone-{n}", address, (line,), settings))
    # A socket per line (two with a stream listener), beside the streams'.
    sockets = count * (2 if tcp or server_ssl else 1)
    limit = raise_fd_limit(sockets + 256 + STREAM_FILES)
    if limit != resource.RLIM_INFINITY and limit < sockets + 64:
        fail(
            f"--count {count} needs {sockets} sockets and more, but this process may open "
            f"{limit} files (raise it with ulimit -n)"
        )
    events = open_event_log(events_path)
    pending = _inventory_for(inventory_out, configs)
    try:
        run_loop(
            _serve(
                configs,
                events,
                duration,
                None,
                not quiet,
                max_transactions,
                server_ssl=server_ssl,
                client_ssl=client_ssl,
                stream_limits=stream_limits,
                on_bound=pending.commit if pending is not None else None,
            )
        )
    finally:
        if pending is not None:
            pending.discard()


def _inventory_for(path: str | None, configs: Sequence[PhoneConfig]) -> PendingInventory | None:
    """--inventory-out written now (an unwritable path refused before any
    phone starts), put in place once every phone listens."""
    if not path:
        return None
    if Path(path).suffix.lower() in (".yaml", ".yml", ".toml", ".json"):
        fail(
            f"bad --inventory-out {path!r}: the fleet writes CSV, and alert reads a file "
            "by its extension: name it .csv"
        )
    try:
        return PendingInventory(path, configs)
    except OSError as exc:
        fail(f"cannot write --inventory-out {path!r}: {exc.strerror or exc}")


class PendingInventory:
    """The fleet in the inventory format ``phonecast alert`` reads.

    Written before any phone starts, to a new file beside ``path`` that
    :meth:`commit` renames over it once every phone listens: a write that
    fails (no such folder, disk full) leaves no half inventory and any
    earlier one whole, the fleet never runs without the inventory that says
    how to reach it, and a fleet that cannot start (its ports taken by a
    running one) leaves that one's inventory as it was, where it once put
    its own passwords in its place.  The file is the owner's only
    (``mkstemp``): it holds the fleet's passwords.  A FIFO or a device
    (``written_in_place``) is written at once, there being nothing to keep.
    """

    def __init__(self, path: str | Path, configs: Sequence[PhoneConfig]) -> None:
        phones = _inventory_phones(configs)
        self._partial: str | None = None
        # Through a symbolic link to the file it names; into a FIFO or a
        # device (/dev/stdout) as it is: renamed over, /dev/full became a file.
        if written_in_place(path):
            write_inventory_csv(path, phones)
            return
        self._final = Path(os.path.realpath(path))
        fd, partial = tempfile.mkstemp(
            dir=self._final.parent, prefix=f".{self._final.name}.", suffix=".tmp"
        )
        os.close(fd)
        try:
            write_inventory_csv(partial, phones)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
        self._partial = partial

    def commit(self) -> None:
        """Put the inventory in place (every phone listens now)."""
        partial, self._partial = self._partial, None
        if partial is None:
            return
        try:
            os.replace(partial, self._final)
        except OSError as exc:
            Path(partial).unlink(missing_ok=True)
            fail(f"cannot write --inventory-out {str(self._final)!r}: {exc.strerror or exc}")

    def discard(self) -> None:
        """Remove the new inventory if it was never put in place."""
        partial, self._partial = self._partial, None
        if partial is not None:
            Path(partial).unlink(missing_ok=True)


def write_fleet_inventory(path: str | Path, configs: Sequence[PhoneConfig]) -> None:
    """:class:`PendingInventory` written and put in place at once."""
    PendingInventory(path, configs).commit()


def _inventory_phones(configs: Sequence[PhoneConfig]) -> list[Phone]:
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
                transport="tls" if cfg.settings.tls else None,
                tags=frozenset({("fleet", None)}),
                line=i + 2,
            )
        )
    return phones


def open_event_log(path: str | None) -> EventLog:
    """The --events log, opened before any phone starts: a path that cannot
    be written is bad input, better refused at once than found out as a
    traceback once the phones are listening."""
    with contextlib.ExitStack() as probe:
        if path is not None and not _fifo_reader_held(path, probe):
            # Opening a FIFO for writing waits for a reader, as it should
            # (no event is lost), but said nothing: the phone looked hung.
            with contextlib.suppress(OSError):
                click.echo(
                    f"phonecast: --events {path!r} is a FIFO with no reader yet;"
                    " waiting for one before the phones start",
                    err=True,
                )
        try:
            return EventLog(path)
        except OSError as exc:
            fail(f"cannot write --events {path!r}: {exc.strerror or exc}")


def _fifo_reader_held(path: str, stack: contextlib.ExitStack) -> bool:
    """False if ``path`` is a FIFO that nothing reads yet (a non-blocking
    open for writing says ENXIO then).  One with a reader stays open on
    ``stack`` until the log has its own: closing the probe at once would be
    the reader's end of file, before the log's first line."""
    try:
        if not stat.S_ISFIFO(os.stat(path).st_mode):
            return True
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        return exc.errno != errno.ENXIO
    stack.callback(os.close, fd)
    return True


#: REGISTERs of a fleet under way at once: a dead registrar costs each line
#: Timer F (32 s), so one after another would hold a big fleet for hours,
#: and all at once would be a flood a real registrar sheds.
REGISTERING_AT_ONCE: Final = 64


async def _register_and_report(host: PhoneHost, registrar: str) -> None:
    codes = await _register_all(host)
    ok = sum(code is not None and 200 <= code < 300 for code in codes)
    with contextlib.suppress(OSError):  # a closed stderr must not stop the phones
        click.echo(f"phonecast: {ok} of {len(codes)} line(s) registered at {registrar}", err=True)


async def _register_all(host: PhoneHost) -> list[int | None]:
    """Register every phone of ``host``, at most :data:`REGISTERING_AT_ONCE`
    at a time; each phone's final codes, in the phones' order."""
    gate = asyncio.Semaphore(REGISTERING_AT_ONCE)

    async def one(state: PhoneState) -> list[int | None]:
        async with gate:
            return await host.register(state)

    results = await asyncio.gather(*(one(state) for state in host.phones.values()))
    return [code for codes in results for code in codes]


async def _serve(
    configs: Sequence[PhoneConfig],
    events: EventLog,
    duration: float | None,
    on_screen: object,
    summary: bool,
    max_transactions: int,
    *,
    server_ssl: ssl.SSLContext | None = None,
    client_ssl: ssl.SSLContext | None = None,
    stream_limits: StreamLimits = DEFAULT_STREAM_LIMITS,
    on_bound: Callable[[], None] | None = None,
) -> None:
    """Run the phones until ``duration`` ends or a signal comes
    (``on_bound``: called once every phone listens).

    With ``summary`` (a fleet without --quiet) the counts are shown live on
    a terminal; on anything else (a pipe, a log file, CI) a live table would
    be noise, so one plain line is printed when the fleet stops.
    """
    tally = FleetTally(events) if summary else None
    registering: asyncio.Future[None] | None = None
    live = tally is not None and sys.stderr.isatty()
    host = PhoneHost(
        events=events,
        on_screen=on_screen,  # type: ignore[arg-type]
        max_server_transactions=max_transactions,
        server_ssl=server_ssl,
        client_ssl=client_ssl,
        stream_limits=stream_limits,
    )
    await host.start()
    try:
        for cfg in configs:
            try:
                await host.add_phone(cfg)
            except OSError as exc:
                line = _line_not_bound(host, cfg)
                shown = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
                fail(
                    f"cannot listen for {cfg.name} line {line.user} on {shown}:{line.port}: "
                    f"{exc.strerror or exc}"
                )
        if on_bound is not None:
            on_bound()
        first, last = configs[0], configs[-1]
        low, high = first.lines[0].port, last.lines[-1].port
        ports = f"{low}-{high}" if high != low else f"{low}"
        where = (
            f"{first.host} ports {ports}"
            if first.host == last.host
            else f"{first.host}-{last.host} port {first.lines[0].port}"  # one address each
        )
        with contextlib.suppress(OSError, ValueError):  # stderr full or closed: phones first
            click.echo(f"phonecast: {len(configs)} phone(s) listening on {where}", err=True)
        # The signals and --duration hold from here on, while the lines
        # register too (a dead registrar costs each REGISTER 32 s).
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        if duration is not None:
            loop.call_later(duration, stop.set)
        registrar = configs[0].settings.registrar
        if registrar:
            registering = asyncio.ensure_future(_register_and_report(host, registrar))
        settle()  # the phones are up: keep the collector off them
        if tally is not None and live:
            await _live_summary(tally, stop)
        else:
            await stop.wait()
    finally:
        if registering is not None and not registering.done():
            registering.cancel()
        await host.close()
    if tally is not None and not live:
        with contextlib.suppress(OSError):  # stderr may be a closed pipe by now
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

    #: "fetches failed" of the fetches: a page not fetched, not text/xml or
    #: not readable shows no screen, which "fetches" alone did not tell.
    COLUMNS: Final = (
        "requests",
        "challenges",
        "verified",
        "fetches",
        "fetches failed",
        "screens",
    )

    def __init__(self, events: EventLog) -> None:
        self._events = events
        self._challenges = 0
        self._verified = 0
        self._failed_fetches = 0
        events.subscribe(self._count)

    def _count(self, event: dict[str, object]) -> None:
        kind = event["event"]
        if kind == "response" and event.get("code") == 401:
            self._challenges += 1
        elif kind == "auth" and event.get("ok"):
            self._verified += 1
        elif kind == "fetch_finished" and not event.get("ok"):
            self._failed_fetches += 1

    def values(self) -> tuple[int, ...]:
        """The numbers under :attr:`COLUMNS`, so far."""
        counts = self._events.counts
        return (
            counts["request"],
            self._challenges,
            self._verified,
            counts["fetch_finished"],
            self._failed_fetches,
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
