"""``phonecast alert`` and ``phonecast campaign ...``: a push to a whole fleet."""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import resource
import ssl
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, ParamSpec

import click
from rich.console import Console
from rich.live import Live

from phonecast.campaign.inventory import InventoryError, Phone, load_inventory, select
from phonecast.campaign.lock import CampaignBusy, campaign_lock
from phonecast.campaign.report import Report, make_report
from phonecast.campaign.runner import (
    CampaignRunner,
    Progress,
    RunOptions,
    affordable_concurrency,
    summary_line,
)
from phonecast.campaign.store import CampaignStore, StoreError
from phonecast.cli.campaign_views import (
    check_report,
    finish,
    progress_table,
)
from phonecast.cli.checks import (
    fail,
    parse_long_seconds,
    parse_public_url,
    parse_rate,
    parse_serve,
    parse_wait,
    parsed_by,
    redact_uri,
    serve_host,
    timeout_option,
)
from phonecast.cli.push_cmd import tls_context
from phonecast.content import ContentServer
from phonecast.net.endpoint import SipEndpoint
from phonecast.net.limits import DEFAULT_MAX_CONNECTIONS, StreamLimits
from phonecast.net.localaddr import local_ip_for
from phonecast.net.loop import run as run_loop
from phonecast.net.loop import settle
from phonecast.push.payload import Payload, PayloadError, execute_payload, url_payload
from phonecast.push.pusher import Pusher

P = ParamSpec("P")
#: The campaign store failed during a run: the campaign is left unfinished.
EXIT_STORE_FAILED = 7
DEFAULT_DB = "phonecast.db"


def store_errors_said(command: Callable[P, None]) -> Callable[P, None]:
    """A store that cannot be used before anything is sent (a bad file, a
    full disk, a read-only one): one line naming it, exit 2, no traceback."""

    @functools.wraps(command)
    def said(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except StoreError as exc:
            fail(str(exc))

    return said


def text_object(title: str, text: str) -> bytes:
    """A CiscoIPPhoneText for ``--title``/``--text``."""
    from phonecast.ciscoxml import CiscoXmlError, Text, to_xml

    try:
        body: bytes = to_xml(Text(title=title, text=text))
        return body
    except CiscoXmlError as exc:
        fail(str(exc))


def file_object(path: str) -> bytes:
    """A Cisco XML object from a file, checked with the phone's own parser."""
    from phonecast.ciscoxml import CiscoXmlError, parse

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    try:
        parse(data)
    except CiscoXmlError as exc:
        fail(f"{path}: {exc}")
    return data


def load_phones(
    inventory: str, where: Sequence[str], tags: Sequence[str], skip_invalid: bool, quiet: bool
) -> list[Phone]:
    try:
        inv = load_inventory(inventory)
    except InventoryError as exc:
        fail(str(exc))
    for problem in inv.problems:
        click.echo(f"{problem}", err=True)
    if inv.problems and not skip_invalid:
        fail(f"{len(inv.problems)} invalid row(s) in {inventory}; fix them or pass --skip-invalid")
    try:
        phones = select(inv.phones, where=where, tags=tags)
    except ValueError as exc:
        fail(str(exc))
    if not phones:
        fail("no phone matches the selection")
    return phones


@click.command("alert")
@click.option(
    "--inventory",
    required=True,
    type=click.Path(dir_okay=False),
    help="Phones: CSV (or YAML/TOML) with name,target,user,password,...",
)
@click.option("--text", help="Message to show (a CiscoIPPhoneText).")
@click.option("--title", default="Alert", show_default=True, help="Title of the message.")
@click.option(
    "--file",
    "object_file",
    type=click.Path(dir_okay=False),
    help="A Cisco IP phone XML object to show instead of --text.",
)
@click.option("--url", help="Push this external URL instead (no delivery confirmation).")
@click.option(
    "--body",
    type=click.Choice(["url", "execute"]),
    default="url",
    show_default=True,
    help="NOTIFY body form.",
)
@click.option("--where", multiple=True, help="Select phones with tag key=value.")
@click.option("--tag", "tags", multiple=True, help="Select phones carrying this tag.")
@click.option(
    "--group-by", default="building", show_default=True, help="Tag key to group the report by."
)
@click.option("--skip-invalid", is_flag=True, help="Send to the valid rows despite bad ones.")
@click.option("--concurrency", type=click.IntRange(1, 100_000), default=200, show_default=True)
@click.option(
    "--max-connections",
    type=click.IntRange(1, 1_000_000),
    help=(
        "TCP (and, apart, TLS) connections to phones held at once; past it the least "
        "recently used idle one is closed, and a push waits for one to come free "
        f"(default: a quarter of the file limit, at most {DEFAULT_MAX_CONNECTIONS})."
    ),
)
@click.option(
    "--rate",
    default="0",
    show_default=True,
    metavar="PER_SECOND",
    callback=parsed_by(parse_rate),
    help="Pushes/s (0: no limit).",
)
@click.option("--retries", type=click.IntRange(0, 20), default=2, show_default=True)
@timeout_option("Seconds per push (at most an hour).")
@click.option(
    "--deadline",
    metavar="SECONDS",
    callback=parsed_by(parse_long_seconds),
    help="Stop dispatching after this many seconds.",
)
@click.option(
    "--confirm-timeout",
    default="15",
    metavar="SECONDS",
    callback=parsed_by(parse_wait),
    show_default=True,
    help="Seconds to wait for phones to fetch their content.",
)
@click.option("--no-confirm", is_flag=True, help="Count 200 OK as done (no fetch needed).")
@click.option("--db", default=DEFAULT_DB, show_default=True, help="SQLite campaign store.")
@click.option(
    "--serve",
    callback=parsed_by(parse_serve),
    help=(
        "HOST:PORT (or :PORT) for the content server (default: our address toward the"
        " phones, any port)."
    ),
)
@click.option(
    "--public-url",
    callback=parsed_by(parse_public_url),
    help="Base URL phones use to reach the content server (NAT).",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    help="Write the report (CSV, or JSON by extension).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the JSON report; progress as JSON lines on stderr.",
)
@click.option("--quiet", is_flag=True, help="No live progress.")
@click.option("--ca-file", help="TLS: trust this CA file for the phones' certificates.")
@click.option("--insecure", is_flag=True, help="TLS: do not verify the phones' certificates.")
@store_errors_said
def alert(
    inventory: str,
    text: str | None,
    title: str,
    object_file: str | None,
    url: str | None,
    body: str,
    where: tuple[str, ...],
    tags: tuple[str, ...],
    group_by: str,
    skip_invalid: bool,
    concurrency: int,
    max_connections: int | None,
    rate: float,
    retries: int,
    timeout: float,
    deadline: float | None,
    confirm_timeout: float,
    no_confirm: bool,
    db: str,
    serve: str | None,
    public_url: str | None,
    report_path: str | None,
    as_json: bool,
    quiet: bool,
    ca_file: str | None,
    insecure: bool,
) -> None:
    """Show a message on every selected phone and report which phones have it.

    Exit status: 0 when every phone confirmed (or accepted, with --no-confirm),
    2 bad input, 6 incomplete.
    """
    if sum(x is not None for x in (text, object_file, url)) != 1:
        fail("give exactly one of --text, --file or --url")
    if url is not None:
        _url_payload(url, body, "--url")  # a bad one: said once, before anything is stored
    elif serve is not None and public_url is None and _wildcard(serve_host(serve)):
        fail(
            f"--serve {serve} listens on every address, but the phones need one to fetch"
            " from: give --public-url too (or serve on an address)"
        )
    check_report(report_path)
    phones = load_phones(inventory, where, tags, skip_invalid, quiet or as_json)
    params: dict[str, Any] = {
        "inventory": str(Path(inventory).resolve()),
        "text": text,
        "title": title,
        "file": str(Path(object_file).resolve()) if object_file else None,
        "url": url,
        "body": body,
        "group_by": group_by,
        "confirm": not no_confirm and url is None,
        "serve": serve,
        "public_url": public_url,
        # Kept with the campaign, so that a resume trusts what the run trusted.
        "ca_file": str(Path(ca_file).resolve()) if ca_file else None,
        "insecure": insecure,
        "options": {
            "concurrency": concurrency,
            "max_connections": max_connections,
            "rate": rate,
            "retries": retries,
            "timeout": timeout,
            "deadline": deadline,
            "confirm_timeout": confirm_timeout,
        },
    }
    _client_tls(params)  # a CA file that cannot be read: said now, before anything is sent
    content = content_body(params)
    store = CampaignStore(db)
    groups = [(p.name, str(p.target), p.tag_value(group_by)) for p in phones]
    cid = store.create(params, groups)
    if not (quiet or as_json):
        click.echo(f"campaign {cid}: {len(phones)} phone(s)", err=True)
    report = run_campaign(
        store,
        cid,
        lambda: execute_campaign(
            store, cid, phones, params, content, quiet or as_json, as_json and not quiet
        ),
    )
    finish(store, report, params, report_path, as_json)


def run_campaign(
    store: CampaignStore, cid: str, prepare: Callable[[], Coroutine[Any, Any, Report]]
) -> Report:
    """Run a campaign holding its lock (another live process running it:
    refused, exit 2); a store that fails on the way stops it with one line
    that says so and how to resume it (exit 7), not a traceback.

    ``prepare`` is called only once the lock is held: whatever it writes to
    the store (a resume's new targets) must not touch a campaign that
    another process is running."""
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(campaign_lock(store.path.resolve(), cid))
        except CampaignBusy as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"cannot make the lock file of campaign {cid}: {exc.strerror} ({exc.filename})")
        return _run_locked(store, cid, prepare)


def _run_locked(
    store: CampaignStore, cid: str, prepare: Callable[[], Coroutine[Any, Any, Report]]
) -> Report:
    try:
        return run_loop(prepare())
    except StoreError as exc:
        fail(
            f"{exc}; campaign {cid} stopped and left unfinished: once the store is"
            f" writable, resume it with: phonecast campaign resume {cid} --db {store.path}",
            EXIT_STORE_FAILED,
        )


def text_alert_params(
    inventory: str | Path,
    *,
    title: str,
    text: str,
    concurrency: int = 200,
    timeout: float = 5.0,
    confirm_timeout: float = 15.0,
) -> dict[str, Any]:
    """Campaign parameters for a CiscoIPPhoneText alert on embedded defaults
    (what ``phonecast demo`` and ``bench/campaign.py`` run)."""
    return {
        "inventory": str(inventory),
        "text": text,
        "title": title,
        "file": None,
        "url": None,
        "body": "url",
        "group_by": "building",
        "confirm": True,
        "serve": None,
        "public_url": None,
        "options": {
            "concurrency": concurrency,
            "rate": 0.0,
            "retries": 2,
            "timeout": timeout,
            "deadline": None,
            "confirm_timeout": confirm_timeout,
        },
    }


def _client_tls(params: dict[str, Any]) -> ssl.SSLContext | None:
    """The TLS client context for phones with transport ``tls``: the system's
    trust store unless the campaign named a CA file or --insecure (stored
    campaigns from before these options have neither)."""
    ca_file, insecure = params.get("ca_file"), bool(params.get("insecure"))
    if ca_file is None and not insecure:
        return None
    return tls_context(insecure, ca_file)


def stream_limits(params: dict[str, Any]) -> StreamLimits:
    """What the pusher's TCP and TLS connections are bounded by: the
    campaign's ``--max-connections`` (stored campaigns from before it have
    none: the default cap)."""
    return StreamLimits(max_connections=params["options"].get("max_connections"))


def _url_payload(url: str, body: str, what: str) -> Payload:
    """The NOTIFY body that makes a phone fetch ``url``."""
    try:
        return execute_payload([url]) if body == "execute" else url_payload(url)
    except PayloadError as exc:
        fail(f"bad {what} {redact_uri(url)!r}: {exc}")


def _wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def content_body(params: dict[str, Any]) -> bytes | None:
    if params["url"]:
        return None
    if params["file"]:
        return file_object(params["file"])
    return text_object(params["title"], params["text"])


def _concurrency(asked: int, phones: Sequence[Phone], quiet: bool, json_progress: bool) -> int:
    """``--concurrency``, lowered (and said so) to what the file limit carries."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return asked
    streams = any(p.transport_or() != "udp" for p in phones)
    allowed = affordable_concurrency(asked, soft, streams=streams)
    if allowed < asked and (json_progress or not quiet):
        why = (
            f"--concurrency {asked} lowered to {allowed}: this process may open {soft} files,"
            f" and each push in flight may hold {'two' if streams else 'one'}"
            " (raise the limit with ulimit -n)"
        )
        _warn(why, json_progress)
    return allowed


def _warn(why: str, json_progress: bool) -> None:
    """A warning on stderr: a JSON line among ``--json`` progress, else text."""
    message = json.dumps({"warning": why}) if json_progress else f"phonecast: {why}"
    click.echo(message, err=True)


async def execute_campaign(
    store: CampaignStore,
    cid: str,
    phones: Sequence[Phone],
    params: dict[str, Any],
    content_body: bytes | None,
    quiet: bool,
    json_progress: bool = False,
) -> Report:
    """Run (or resume) a campaign; progress as a rich table, JSON lines on
    stderr (``json_progress``, for scripts), or nothing (``quiet``)."""
    o = params["options"]
    concurrency = _concurrency(o["concurrency"], phones, quiet, json_progress)
    try:
        options = RunOptions(
            concurrency=concurrency,
            rate=o["rate"],
            retries=o["retries"],
            push_timeout=o["timeout"],
            deadline=o["deadline"],
            confirm=params["confirm"],
            confirm_timeout=o["confirm_timeout"],
        )
    except ValueError as exc:  # a store written before the options were checked
        fail(f"the campaign's stored options cannot run: {exc}")
    local = local_ip_for(phones[0].target.hostname, phones[0].target.port or 5060)
    endpoint = SipEndpoint(client_ssl=_client_tls(params), stream_limits=stream_limits(params))
    await endpoint.listen_udp(local, 0)
    runner = CampaignRunner(store, Pusher(endpoint), None, options)
    server: ContentServer | None = None
    if content_body is not None:
        body: bytes = content_body
        serve = params["serve"] or ":0"
        server = ContentServer(
            serve_host(serve) or local,
            int(serve.rpartition(":")[2]),
            public_url=params["public_url"],
            on_fetch=runner.record_fetch,
        )
        try:
            await server.start()
        except (OSError, ValueError) as exc:
            fail(f"cannot serve content on {params['serve'] or local}: {exc}")
        runner.content = server
        urls = runner.publish(cid, phones, lambda p: body, "text/xml; charset=utf-8")
    else:
        urls = {p.name: params["url"] for p in phones}

    settle()  # inventory loaded, content published: keep the collector off them

    # Built before any push, so that a URL no payload can carry (a store
    # from before --url was checked) is one line, not one per worker.
    payloads = {name: _url_payload(u, params["body"], "URL") for name, u in urls.items()}

    def payload_for(phone: Phone) -> Payload:
        return payloads[phone.name]

    async def drive() -> Report:
        if json_progress:
            last = [float("-inf")]

            def emit(prog: Progress) -> None:
                now = time.monotonic()
                if now - last[0] >= 1.0:
                    last[0] = now
                    click.echo(json.dumps({"progress": summary_line(prog)}), err=True)

            runner.on_progress = emit
            return await runner.run(cid, phones, payload_for)
        if quiet:
            return await runner.run(cid, phones, payload_for)
        with Live(
            progress_table(Progress(len(phones))),
            console=Console(stderr=True),
            refresh_per_second=4,
        ) as live:
            runner.on_progress = lambda prog: live.update(progress_table(prog))
            return await runner.run(cid, phones, payload_for)

    try:
        report = await drive()
    finally:
        await endpoint.close()
        if server is not None:
            await server.stop()
    if store.pending:
        # A fetch answered after the run's last flush, while the server shut
        # down: the phone has its page, so it is committed and reported
        # (left buffered, it was lost, and a resume pushed the phone again).
        try:
            store.flush()
        except StoreError as exc:
            # The campaign is finished, so "resume" is not the answer: the
            # phones named did get their page, which the report cannot show.
            names = store.buffered_fetch_phones
            why = (
                f"{exc}: the fetches of {len(names)} phone(s) answered as the content server"
                f" stopped are not in the store, and the report counts them unconfirmed,"
                f" though they have their page: {', '.join(names[:20])}"
                + (" ..." if len(names) > 20 else "")
            )
            _warn(why, json_progress)
        report = make_report(cid, store.phones(cid))
    return report
