"""``phonecast push``: one NOTIFY to one phone line, with a clear outcome."""

from __future__ import annotations

import contextlib
import json
import os
import re
import ssl
import sys
from collections.abc import Callable
from typing import Any

import click

from phonecast.cli.checks import fail, parsed_by, redact_uri, timeout_option
from phonecast.credentials import Secret, SecretError, resolve_secret
from phonecast.net.endpoint import SipEndpoint
from phonecast.net.hostlist import HostListError, parse_host_list
from phonecast.net.localaddr import local_ip_for
from phonecast.net.locate import SPOKEN_TRANSPORTS
from phonecast.net.loop import run as run_loop
from phonecast.push.payload import (
    Payload,
    PayloadError,
    action_payload,
    check_header_value,
    execute_payload,
    url_payload,
)
from phonecast.push.profiles import ACTIONS, UnsupportedAction, get_profile
from phonecast.push.pusher import Outcome, Pusher, PushOptions
from phonecast.sip import ParseError, SipUri, UriError, parse_uri

#: Exit codes (shared with the other commands).
EXIT_OK, EXIT_USAGE, EXIT_AUTH, EXIT_REJECTED, EXIT_UNREACHABLE = 0, 2, 3, 4, 5
_EXIT_FOR = {
    "delivered": EXIT_OK,
    "auth_rejected": EXIT_AUTH,
    "rejected": EXIT_REJECTED,
    "timeout": EXIT_UNREACHABLE,
    "unreachable": EXIT_UNREACHABLE,
}

_RESPONSE_RE = re.compile(r'(response\s*=\s*)"[^"]*"', re.I)


__all__ = ["fail", "push", "redact_trace", "tls_context"]  # fail: the other commands'


#: Where a URI's userinfo may be in a message (an http URL in the body or an
#: Execute item's attribute, the whole authority up to its last ``@``, as
#: RFC 3986 allows ``;`` and ``'`` in it; a sip URI in a header): each is
#: shown as :func:`redact_uri` shows a URI, the one spelling of that.
_USERINFO_RE = re.compile(
    r"""https?://[^/?#\s<>"@]*(?:@[^/?#\s<>"@]*)*@|sips?:[^:@/\s<>"';?]*:[^@/\s<>"']*@""",
    re.I,
)


def _hide_passwords(line: str) -> str:
    return _USERINFO_RE.sub(lambda found: redact_uri(found.group(0)), line)


def redact_trace(data: bytes) -> str:
    """A SIP message for --trace with digest responses and the passwords
    of the URIs it names hidden."""
    text = data.decode("utf-8", "replace")
    out = []
    for line in text.split("\r\n"):
        if line.lower().startswith(("authorization", "proxy-authorization")):
            line = _RESPONSE_RE.sub(r'\1"<redacted>"', line)
        out.append(_hide_passwords(line))
    return "\n".join(out)


def parse_target(text: str) -> SipUri:
    """The target line's URI, or exit 2 with what is wrong.

    The target is echoed with any password of its userinfo as ``***``; a
    target that carries one is refused: it would go out in the
    Request-URI, the To and the digest's uri, and show in --trace (RFC 3261
    19.1.1: the password field SHOULD NOT be used)."""
    shown = f"bad target {redact_uri(text)!r}"
    try:
        uri = parse_uri(text)
    except ParseError as exc:
        fail(f"{shown}: {_uri_fault(exc)}")
    if not isinstance(uri, SipUri):
        fail(f"{shown}: push needs a sip: or sips: URI, not {uri.scheme}:")
    if uri.password is not None:
        fail(
            f"{shown}: a target carries no password (RFC 3261 19.1.1); give it with "
            "--password-env, --password-file or the prompt"
        )
    if not uri.user:
        fail(f"{shown}: name the line's user, e.g. sip:1001@{uri.host}")
    if uri.transport is not None and uri.transport.lower() not in SPOKEN_TRANSPORTS:
        fail(f"{shown}: transport={uri.transport} is not udp, tcp or tls")
    return uri


def _uri_fault(exc: ParseError) -> str:
    """What is wrong with a target, without the target: a UriError's
    message ends with the URI it quotes, which is already shown redacted
    (and may hold a password); any other message is redacted as a URI."""
    if isinstance(exc, UriError):
        quoted = exc.uri if len(exc.uri) <= 80 else exc.uri[:77] + "..."
        suffix = f": {quoted!r}"
        if exc.message.endswith(suffix):
            return exc.message[: -len(suffix)]
    return redact_uri(exc.message)


def read_password(env: str, file: str | None, literal: str | None) -> Secret:
    """The line's SIP password from --password-file, --password, $ENV or a prompt."""
    if file is not None and literal is not None:
        fail("--password-file and --password cannot go together: give one")
    if file is not None:
        try:
            return resolve_secret(f"file:{file}")
        except SecretError as exc:
            fail(str(exc))
    if literal is not None:
        click.echo(
            "phonecast: warning: --password is visible in the process list; "
            "prefer --password-env or --password-file",
            err=True,
        )
        return Secret(literal, "argument")
    value = os.environ.get(env)
    if value is not None:
        return Secret(value, f"env:{env}")
    if sys.stdin.isatty():
        return Secret(click.prompt("SIP password", hide_input=True), "prompt")
    fail(f"no password: set {env}, or use --password-file (or run interactively)")


def build_payload(
    url: str | None,
    items: tuple[str, ...],
    event: str | None,
    body: str | None,
    content_type: str | None,
    vendor: str | None,
) -> Payload:
    """The payload the options describe, or exit 2.

    Options that cannot go together are refused rather than one of them
    dropped: a NOTIFY has one body (--url or --execute), an action
    (resync, reboot...) carries none, and --body shapes only --url."""
    if url is not None and items:
        fail("--url and --execute cannot go together: a NOTIFY has one body")
    if body is not None and url is None:
        fail("--body is the form of --url's body: give --url")
    if event == "xml":  # the XML push itself: its body is the point
        if url is None and not items:
            fail("--event xml is the XML push: give --url or --execute")
    elif event in ACTIONS and (url is not None or items):
        fail(f"--event {event} is an action and carries no body: drop --url/--execute")
    if content_type is not None and url is None and not items:
        fail("--content-type is the type of a body: give --url or --execute")
    try:
        if event == "xml":  # the vendor's spelling of it (XML-Service on an SPA)
            event = get_profile(vendor).event_for("xml")
        if items:
            return execute_payload(items, content_type=content_type, event=event or "XML-Service")
        if url is not None:
            if body == "execute":
                return execute_payload(
                    [url], content_type=content_type, event=event or "XML-Service"
                )
            return url_payload(url, content_type=content_type, event=event or "XML-Service")
        if event is None:
            fail("nothing to push: give --url, --execute or --event")
        if event in ACTIONS:
            return action_payload(event, vendor)
        return Payload(event)
    except (PayloadError, UnsupportedAction) as exc:
        fail(str(exc))


def header_option(
    header: str,
) -> Callable[[click.Context, click.Parameter, str | None], str | None]:
    """A click callback refusing a value that would break out of ``header``
    (CR/LF, other controls): named by option, exit 2, before any send."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip():  # was dropped silently
            fail(f"bad {param.opts[0]}: {header} may not be empty")
        try:
            return check_header_value(header, value)
        except PayloadError as exc:
            fail(f"bad {param.opts[0]}: {exc}")

    return callback


def parse_proxy(text: str) -> str:
    """--proxy: a Cisco host list, checked here so that a malformed one is
    bad usage (exit 2) rather than "unreachable" (exit 5) at delivery."""
    try:
        parse_host_list(text)
    except HostListError as exc:
        raise ValueError(str(exc)) from None
    return text


def tls_context(insecure: bool, ca_file: str | None) -> ssl.SSLContext:
    """Client TLS: verify by default; a CA file; or --insecure."""
    if insecure:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        fail(f"cannot load CA file {ca_file}: {exc}")


@click.command("push")
@click.argument("target")
@click.option("--url", help="URL the phone fetches (the XML-Service body).")
@click.option(
    "--execute",
    "items",
    multiple=True,
    help="CiscoIPPhoneExecute item (URL or internal URI such as Key:Services); "
    "repeat up to 3 times.",
)
@click.option(
    "--event",
    callback=header_option("Event"),
    help="Event, or an action: " + ", ".join(ACTIONS) + ".",
)
@click.option("--body", type=click.Choice(["url", "execute"]), help="Body form for --url.")
@click.option(
    "--content-type",
    callback=header_option("Content-Type"),
    help="Override the body's Content-Type.",
)
@click.option("--vendor", help="Vendor profile for --event actions (default cisco-spa).")
@click.option(
    "--user",
    # Quoted into the Authorization header: refused here, before anything is
    # sent (a CR LF was found only after the first NOTIFY had gone).
    callback=header_option("Authorization"),
    help="Digest user (default: the target's user).",
)
@click.option(
    "--password-env",
    default="PHONECAST_PASSWORD",
    show_default=True,
    help="Environment variable holding the password.",
)
@click.option("--password-file", type=str, help="File holding the password.")
@click.option("--password", "password_literal", help="The password (visible to other users!).")
@click.option(
    "--proxy",
    callback=parsed_by(parse_proxy),
    help="Outbound proxy host list: host[:port][:p=N][:w=N][:A=ip]|...",
)
@click.option("--transport", type=click.Choice(["udp", "tcp", "tls"]))
@click.option("--nameserver", help="DNS server HOST[:PORT] for SRV/NAPTR lookups.")
@timeout_option("Seconds to wait for each target (at most an hour).")
@click.option(
    "--subscription-state",
    callback=header_option("Subscription-State"),
    help="Add a Subscription-State header (e.g. active).",
)
@click.option("--insecure", is_flag=True, help="TLS: do not verify the phone's certificate.")
@click.option("--ca-file", type=str, help="TLS: trust this CA file.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--trace", is_flag=True, help="Print every SIP message (digests redacted).")
def push(
    target: str,
    url: str | None,
    items: tuple[str, ...],
    event: str | None,
    body: str | None,
    content_type: str | None,
    vendor: str | None,
    user: str | None,
    password_env: str,
    password_file: str | None,
    password_literal: str | None,
    proxy: str | None,
    transport: str | None,
    nameserver: str | None,
    timeout: float,
    subscription_state: str | None,
    insecure: bool,
    ca_file: str | None,
    as_json: bool,
    trace: bool,
) -> None:
    """Push a URL, an Execute object or an event to one phone line (TARGET,
    e.g. sip:1001@10.0.0.5:5060) and report what the phone answered.

    Exit status: 0 delivered, 2 bad usage or input, 3 authentication
    rejected, 4 rejected by the phone, 5 timed out or unreachable.
    """
    uri = parse_target(target)
    if len(items) > 3:
        fail("at most 3 --execute items (CiscoIPPhoneExecute limit)")
    if vendor is not None:
        try:
            get_profile(vendor)
        except UnsupportedAction as exc:
            fail(str(exc))
    payload = build_payload(url, items, event, body, content_type, vendor)
    secret = read_password(password_env, password_file, password_literal)
    ssl_ctx = tls_context(insecure, ca_file) if (transport == "tls" or uri.secure) else None
    opts = PushOptions(
        proxy=proxy, transport=transport, timeout=timeout, subscription_state=subscription_state
    )
    outcome = run_loop(_run(uri, secret, payload, user, opts, nameserver, ssl_ctx, trace))
    # The outcome's exit status stands even if stdout cannot take its line
    # (a full disk, a closed pipe): the push happened either way.
    with contextlib.suppress(OSError, ValueError):
        click.echo(json.dumps(outcome.as_dict()) if as_json else _describe(outcome))
    sys.exit(_EXIT_FOR.get(outcome.status, EXIT_UNREACHABLE))


async def _run(
    uri: SipUri,
    secret: Secret,
    payload: Payload,
    user: str | None,
    opts: PushOptions,
    nameserver: str | None,
    ssl_ctx: ssl.SSLContext | None,
    trace: bool,
) -> Outcome:
    resolver: Any = None
    if nameserver:
        from phonecast.net.locate import make_resolver

        try:
            resolver = make_resolver(nameserver)
        except ValueError as exc:
            fail(f"bad --nameserver {nameserver!r}: {exc}")
    endpoint = SipEndpoint(client_ssl=ssl_ctx)
    if trace:

        def show(direction: str, data: bytes, where: object) -> None:
            # A trace that cannot be written (stderr a full disk or a closed
            # pipe) stops; raised into the endpoint it was taken for a
            # transport error, and the push reported unreachable.
            arrow = ">>" if direction == "send" else "<<"
            try:
                click.echo(f"{arrow} {where}\n{redact_trace(data)}", err=True)
            except (OSError, ValueError):
                endpoint.tracer = None

        endpoint.tracer = show
    pusher = Pusher(endpoint, resolver=resolver)
    try:
        try:
            dests = await pusher.locate(uri, opts)
        except Exception as exc:
            return Outcome("unreachable", detail=f"cannot locate {uri.host}: {exc}")
        if not dests:
            return Outcome("unreachable", detail=f"no target found for {uri.host}")
        local = local_ip_for(dests[0].host, dests[0].port)
        await endpoint.listen_udp(local, 0)
        return await pusher.push(uri, secret, payload, user=user, options=opts, destinations=dests)
    finally:
        await endpoint.close()


#: C0 and C1 controls and DEL: a phone's reason phrase or an error's text
#: is printed to the operator's terminal, where they would ring or steer it.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    return _CONTROLS.sub("\N{REPLACEMENT CHARACTER}", text)


def _describe(outcome: Outcome) -> str:
    """The outcome in one line, what the peer sent drawn printable."""
    return _printable(_line_of(outcome))


def _line_of(outcome: Outcome) -> str:
    code = f" {outcome.code} {outcome.reason or ''}".rstrip() if outcome.code else ""
    where = f" by {outcome.target}" if outcome.target else ""
    tried = ", ".join(f"{a.target} ({a.code or a.result})" for a in outcome.tried)
    lines = {
        "delivered": f"delivered:{code}{where} in {outcome.elapsed_ms:.0f} ms"
        f"{' (after digest challenge)' if outcome.challenged else ''}",
        "auth_rejected": f"authentication rejected:{code}{where}: {outcome.detail}",
        "rejected": f"rejected:{code}{where}",
        "timeout": f"timed out: no answer from {tried or 'any target'}",
        "unreachable": f"unreachable: {outcome.detail or tried}",
    }
    return lines.get(outcome.status, outcome.status)
