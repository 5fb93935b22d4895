"""Reading the options of ``phonecast phone`` and ``phonecast fleet``.

Each reader turns an option's text into what the emulator takes, while the
command line is read and before any phone starts; bad input is one line
naming the option and the value (exit 2), never a traceback later, and
never shows a line's password.  The options both commands take, and the
PhoneSettings they amount to, are here too (:func:`common_phone_options`).
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import re
import ssl
import string
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar, cast

import click

from phonecast.cli.checks import (
    fail,
    number_from_zero,
    parse_seconds,
    parsed_by,
    seconds_up_to,
)
from phonecast.credentials import SecretError, resolve_secret
from phonecast.net.endpoint import DEFAULT_MAX_SERVER_TRANSACTIONS
from phonecast.net.limits import DEFAULT_MAX_CONNECTIONS, StreamLimits
from phonecast.phone.config import LineConfig, PhoneSettings, source_spelling
from phonecast.sip._abnf import USER_RE, small_number

T = TypeVar("T")


def parse_line(spec: str) -> LineConfig:
    """``USER[/AUTHID]:PASSWORD@PORT`` (PASSWORD may be env:VAR or file:PATH)."""
    shown = f"bad --line {_without_password(spec)!r}"
    head, at, port_text = spec.rpartition("@")
    port = small_number(port_text)
    if not at or not port:
        fail(f"{shown}: expected USER[/AUTHID]:PASSWORD@PORT")
    ident, colon, password = head.partition(":")
    if not colon or not ident or not password:
        fail(f"{shown}: expected USER[/AUTHID]:PASSWORD@PORT")
    user, slash, auth_id = ident.partition("/")
    if not user or (slash and not auth_id):
        fail(f"{shown}: expected USER[/AUTHID]:PASSWORD@PORT, USER and AUTHID not empty")
    for part, value in (("USER", user), ("AUTHID", auth_id)):
        if value and not is_sip_user(value):
            fail(
                f"{shown}: {part} {value!r} is not a SIP user (RFC 3261 25.1: letters, digits, "
                "-_.!~*'()&=+$,;? and %XX escapes)"
            )
    try:
        secret = resolve_secret(password)
    except SecretError as exc:
        fail(f"{shown}: {exc}")
    try:
        secret.reveal().encode("utf-8")
    except UnicodeEncodeError:
        # Bytes the locale could not decode: the digest could not be made
        # (a traceback once the phone started), nor sent by any client.
        fail(f"{shown}: the password is not valid UTF-8 text")
    return LineConfig(user, secret, port, auth_id or None)


def is_sip_user(text: str) -> bool:
    """Whether ``text`` is a SIP URI's user part (RFC 3261 25.1 ``user``):
    a line's user goes into the From, To, Contact and Call-ID the phone
    makes, and its auth id into a digest's quoted ``username``, so a space,
    ``>``, ``"``, ``@``, ``:`` or a control character would break them."""
    return USER_RE.fullmatch(text) is not None


def parse_realm(text: str) -> str:
    """--realm: the content of the challenge's quoted ``realm`` (RFC 3261
    25.1 ``qdtext``): no control character (a CR/LF would end the
    WWW-Authenticate header, and every push would get a 500), no ``"`` or
    ``\\`` (which would end or escape the quoted string)."""
    for char in text:
        if ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F:
            raise ValueError(f"a realm may not contain the control character {char!r}")
        if char in '"\\':
            raise ValueError(f"a realm may not contain {char!r} (it is quoted in the challenge)")
    if not text.strip():
        raise ValueError("a realm may not be empty")
    return text


def _without_password(spec: str) -> str:
    """A --line as an error may show it: whatever follows the first colon,
    up to the last @ after it, is the password (or where it comes from) and
    is shown as ``***``."""
    ident, colon, rest = spec.partition(":")
    # What follows the last @ is shown only if it is a port: with the port
    # forgotten (``1001:p@ssw0rd``) it is the end of the password.
    _, at, port_text = (rest if colon else spec).rpartition("@")
    tail = f"@{port_text}" if at and _is_ascii_number(port_text) else ""
    # No colon: where the user ends is unknown, so all of it may be the
    # password (``1001=s3cret@5060``).
    return f"{ident}:***{tail}" if colon else f"***{tail}"


def _is_ascii_number(text: str) -> bool:
    """Digits 0-9 only: ``str.isdigit`` is also true of ``²``, which ``int``
    refuses."""
    return text.isascii() and text.isdigit()


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
        given = small_number(port_text)
        if not given:
            raise ValueError(f"PORT must be a number from 1 to 65535, not {port_text!r}")
        port = given
    shown = f"[{address}]" if address.version == 6 else str(address)
    return f"{shown}:{port}"


#: The longest --nonce-lifetime, a day.  Servers keep a nonce minutes
#: (Kamailio's nonce_expire is 300 s, field guide); a day is past any test,
#: and far short of the lifetimes (~1e305 s) that overflow the digest
#: server's arithmetic in milliseconds.
MAX_NONCE_LIFETIME: Final = 86_400.0


#: The longest --ring-seconds: an hour (the phone sends a 180 every minute
#: meanwhile, RFC 3261 13.3.1.1).
MAX_RING_SECONDS: Final = 3600.0


def parse_ring_seconds(text: str) -> float:
    """Seconds an INVITE rings: 0 (answer at once) up to an hour; ``nan``
    and ``inf`` are refused (click's FloatRange lets ``nan`` through, and a
    deadline of ``nan`` would leave the phone ringing for ever)."""
    return number_from_zero(text, MAX_RING_SECONDS, "a number of seconds")


#: Seconds a nonce stays good: positive, at most :data:`MAX_NONCE_LIFETIME`.
parse_nonce_lifetime: Final = seconds_up_to(MAX_NONCE_LIFETIME, " (a day)")


#: A media type's ``type/subtype`` (RFC 9110 8.3.1: tokens).
_MEDIA_TYPE: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def parse_notify_types(text: str) -> frozenset[str]:
    """--notify-types: comma-separated ``type/subtype`` media types, compared
    without regard to case (a parameter such as ``;charset`` is no part of
    a type here: the phone compares types, not their parameters)."""
    types = [part.strip() for part in text.split(",") if part.strip()]
    if not types:
        raise ValueError("give at least one media type, e.g. text/plain,application/xml")
    for media in types:
        if not _MEDIA_TYPE.fullmatch(media):
            raise ValueError(f"{media!r} is not a media type (type/subtype, e.g. text/plain)")
    return frozenset(media.lower() for media in types)


def parse_host(text: str) -> str:
    """--host: an address to listen on, ``[::1]`` as ``::1`` (as --register
    writes it).  An empty one bound every interface, which nobody asks for
    by leaving the address out; 0.0.0.0 or :: says so."""
    host = text.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise ValueError("give an address to listen on (0.0.0.0 or :: for every interface)")
    if any(char.isspace() or char in "[]/@" for char in host):
        raise ValueError("not an address or host name")
    return host


def check_line_ports(lines: Sequence[LineConfig]) -> None:
    """Each line of a phone has its own SIP port (field guide): two --line
    on one port were reported as the port being in use, by the phone itself."""
    seen: dict[int, LineConfig] = {}
    for line in lines:
        first = seen.setdefault(line.port, line)
        if first is not line:
            fail(
                f"bad --line: {first.user} and {line.user} both on port {line.port}"
                " (each line has its own SIP port)"
            )


def parse_source_address(text: str) -> str:
    """An IPv4 or IPv6 address, spelt as a socket reports a datagram's source
    (``0:0::1`` as ``::1``): the phone compares the two as text."""
    try:
        return source_spelling(text)
    except ValueError:
        raise ValueError("expected an IP address (IPv4 or IPv6), the proxy's") from None


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
    No error shows the pattern: its literal text may be (part of) a password.
    """
    shown = "bad --password-pattern"
    try:
        pattern.encode("utf-8")
    except UnicodeEncodeError:
        # Bytes the locale could not decode (argv's surrogate escapes): no
        # client could send such a password, and writing it failed later.
        fail(f"{shown}: not valid UTF-8 text")
    try:
        fields = list(string.Formatter().parse(pattern))
    except ValueError:
        fail(f"{shown}: an unmatched '{{' or '}}' (a literal brace is written {{{{ or }}}})")
    try:
        for _, field, spec, _ in fields:
            if field is None:
                continue
            if field not in ("n", "user"):
                # {n.real}, {user[0]}: attribute and index lookups are no
                # part of a pattern (and reach into Python objects).
                fail(f"{shown}: a field that is neither {{n}} nor {{user}}")
            if not spec:
                continue
            if "{" in spec:
                fail(f"{shown}: a field's format may not hold another field")
            for number in re.findall(r"\d+", spec):
                if len(number.lstrip("0")) > 4 or int(number) > MAX_FLEET_PASSWORD:
                    fail(
                        f"{shown}: {number} is wider than a password may be ({MAX_FLEET_PASSWORD})"
                    )
        passwords = [pattern.format(n=n, user=user) for n, user in enumerate(users, 1)]
    except KeyError:
        fail(f"{shown}: a field that is neither {{n}} nor {{user}}")
    except (IndexError, ValueError, AttributeError, TypeError) as exc:
        # The message of a format error can quote the pattern (a format
        # spec, a field name): only its kind is shown.
        fail(f"{shown}: a field's format does not apply ({type(exc).__name__})")
    for n, password in enumerate(passwords, 1):
        if not password:
            fail(f"{shown}: phone {n}'s password is empty (a line needs one)")
        if len(password) > MAX_FLEET_PASSWORD:
            fail(
                f"bad --password-pattern: phone {n}'s password would be {len(password)} "
                f"characters, over {MAX_FLEET_PASSWORD}"
            )
    return passwords


def fleet_addresses(first: str, count: int) -> list[str]:
    """``count`` consecutive addresses from ``first`` (--address-per-phone):
    one host per phone, as a real fleet has.  ``first`` must be an IP
    address (a name would have to be looked up per phone) and the range
    must not run past the end of its family's address space; whether each
    address can be bound (on Linux all of 127.0.0.0/8 can) shows when the
    phone listens, with its own line named."""
    try:
        start = ipaddress.ip_address(first)
    except ValueError:
        fail(f"--address-per-phone needs --host to be an IP address, not {first!r}")
    top = (1 << (32 if start.version == 4 else 128)) - 1
    if int(start) + count - 1 > top:
        fail(f"--host {first} + --count {count} runs past the last IPv{start.version} address")
    # Counted on the address itself, which keeps its family: an int goes
    # back to an address by its size (``ip_address(1)`` is 0.0.0.1, not ::1).
    return [str(start + i) for i in range(count)]


def server_tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """The TLS server context of --tls-cert/--tls-key, or None without a
    certificate.  Read before any phone starts, so that a missing file, a
    file that is not PEM or a key that does not match is one line (exit 2)
    rather than a failure at the first connection."""
    if cert is None:
        if key is not None:
            fail("--tls-key needs --tls-cert")
        return None
    for option, path in (("--tls-cert", cert), ("--tls-key", key)):
        if path is not None:
            try:
                with open(path, "rb"):
                    pass
            except OSError as exc:
                fail(f"cannot read {option} {path!r}: {exc.strerror or exc}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        pair = f"--tls-cert {cert!r}" + (f" with --tls-key {key!r}" if key else "")
        fail(f"cannot use {pair}: not a PEM certificate (chain) and its private key ({exc})")
    return context


def registration_transport(
    settings: PhoneSettings, transport: str, ca_file: str | None, tls_name: str | None = None
) -> tuple[PhoneSettings, ssl.SSLContext | None]:
    """``settings`` registering over --register-transport, and the context
    that checks a TLS registrar (--registrar-ca, else the system's trust
    store).  The line's stream listener must speak what its Contact will
    name, since the registrar reaches the line there: each mismatch, and an
    unreadable CA file, is one line (exit 2) before any phone starts."""
    if transport != "udp" and settings.registrar is None:
        fail(f"--register-transport {transport} needs --register")
    if ca_file is not None and transport != "tls":
        fail("--registrar-ca needs --register-transport tls")
    if tls_name is not None and transport != "tls":
        fail("--registrar-name needs --register-transport tls")
    if transport == "tls" and settings.stream_transport != "tls":
        fail("--register-transport tls needs --tls-cert: the registrar reaches the lines over TLS")
    if transport == "tcp" and settings.stream_transport != "tcp":
        listener = "TLS (--tls-cert)" if settings.tls else "off (a fleet takes TCP with --tcp)"
        fail(f"--register-transport tcp needs the lines' TCP listener, which is {listener}")
    client = None
    if transport == "tls":
        try:
            client = ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            fail(f"cannot use --registrar-ca {ca_file!r}: {getattr(exc, 'strerror', None) or exc}")
    changed = dataclasses.replace(
        settings, register_transport=transport, registrar_tls_name=tls_name
    )
    return changed, client


Command = TypeVar("Command", bound=Callable[..., None])


def stream_limit_options(command: Command) -> Command:
    """``--max-connections`` and ``--idle-timeout``, handed to ``command`` as
    one ``stream_limits`` (a :class:`StreamLimits`): what TCP and TLS peers
    may make the phones hold, as an operator tunes a SIP server's
    (Kamailio's ``tcp_max_connections``, ``tcp_connection_lifetime``)."""

    @functools.wraps(command)
    def with_limits(
        *args: object, max_connections: int | None, idle_timeout: float | None, **kwargs: object
    ) -> None:
        limits = StreamLimits(max_connections=max_connections)
        if idle_timeout is not None:
            limits = dataclasses.replace(limits, idle_timeout=idle_timeout)
        command(*args, stream_limits=limits, **kwargs)

    options = [
        click.option(
            "--max-connections",
            type=click.IntRange(1, 1_000_000),
            help=(
                "TCP (and, apart, TLS) connections held at once, all lines together; "
                "past it the least recently used idle one is closed (default: a quarter "
                f"of the file limit, at most {DEFAULT_MAX_CONNECTIONS})."
            ),
        ),
        click.option(
            "--idle-timeout",
            metavar="SECONDS",
            callback=parsed_by(parse_seconds),
            help=(
                "Close a TCP/TLS connection that carries nothing for this long "
                f"[default: {StreamLimits().idle_timeout:g}]."
            ),
        ),
    ]
    wrapped: Any = with_limits
    for option in reversed(options):
        wrapped = option(wrapped)
    return cast(Command, wrapped)


F = TypeVar("F", bound=Callable[..., Any])


def settings_from_options(
    no_auth: bool,
    realm: str,
    algorithm: str,
    nonce_lifetime: float,
    strict_uri: bool,
    restrict_source: str | None,
    call_mode: str,
    strict_url_body: bool,
    registrar: str | None = None,
    ring_seconds: float = PhoneSettings().ring_seconds,
) -> PhoneSettings:
    """The PhoneSettings the shared options give (see :func:`common_phone_options`)."""
    return PhoneSettings(
        ring_seconds=ring_seconds,
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


def common_phone_options(func: F) -> F:
    """The options ``phone`` and ``fleet`` share: the SPA's settings, the
    events file, the registration and TLS, the transaction bound."""
    options = [
        click.option(
            "--host",
            default="127.0.0.1",
            show_default=True,
            callback=parsed_by(parse_host),
            help="Address to listen on (an IPv6 one with or without brackets).",
        ),
        click.option(
            "--events",
            "events_path",
            type=click.Path(dir_okay=False),
            help=(
                "Write one JSON object per event to this file.  If writing it fails "
                "later (disk full), that is said once on stderr and the phones go on "
                "without it."
            ),
        ),
        click.option(
            "--no-auth",
            is_flag=True,
            help="Accept NOTIFYs without a digest (Auth_Resync-Reboot = no).",
        ),
        click.option(
            "--realm",
            default="phonecast",
            show_default=True,
            callback=parsed_by(parse_realm),
            help="The digest realm of the challenges (no control characters, '\"' or '\\').",
        ),
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
            callback=parsed_by(parse_nonce_lifetime),
            help="How long a challenge's nonce stays good (at most a day).",
        ),
        click.option("--strict-uri", is_flag=True, help="Require digest uri == Request-URI."),
        click.option(
            "--strict-url-body",
            is_flag=True,
            help="Refuse URL bodies with trailing CR/LF (SPA500 7.4.4+).",
        ),
        click.option(
            "--notify-types",
            metavar="TYPES",
            callback=parsed_by(parse_notify_types),
            help=(
                "Only these body types in a NOTIFY, comma-separated (e.g. "
                "text/plain,application/xml); others get 415 once authenticated.  "
                "By default any type, as the phone is not known to check."
            ),
        ),
        click.option(
            "--restrict-source",
            metavar="ADDRESS",
            callback=parsed_by(parse_source_address),
            help="Only accept SIP from this IP address (a proxy's).",
        ),
        click.option(
            "--call-mode",
            type=click.Choice(["answer", "busy", "decline"]),
            default="answer",
            show_default=True,
        ),
        click.option(
            "--ring-seconds",
            default=str(PhoneSettings().ring_seconds),
            show_default=True,
            metavar="SECONDS",
            callback=parsed_by(parse_ring_seconds),
            help="How long an INVITE rings (180, early dialog) before the phone answers 200.",
        ),
        click.option(
            "--duration",
            metavar="SECONDS",
            callback=parsed_by(parse_seconds),
            help="Stop after this many seconds.",
        ),
        click.option(
            "--register",
            "registrar",
            metavar="HOST[:PORT]",
            callback=parsed_by(parse_registrar),
            help=(
                "REGISTER every line at this address (port 5060 if none; IPv6 in "
                "brackets), digest with the line's credentials."
            ),
        ),
        click.option(
            "--register-transport",
            type=click.Choice(["udp", "tcp", "tls"]),
            default="udp",
            show_default=True,
            help=(
                "REGISTER over this transport, as an SPA line whose SIP transport it is; "
                "the Contact names it, and the line takes it on its port (tls needs "
                "--tls-cert)."
            ),
        ),
        click.option(
            "--registrar-ca",
            type=click.Path(dir_okay=False),
            help=(
                "PEM CA certificate(s) that a TLS registrar's certificate must chain to "
                "(default: the system's trust store)."
            ),
        ),
        click.option(
            "--registrar-name",
            metavar="NAME",
            help=(
                "The name a TLS registrar's certificate must carry (and the SNI sent); "
                "by default its address."
            ),
        ),
        click.option(
            "--tls-cert",
            type=click.Path(dir_okay=False),
            help=(
                "Take SIP over TLS on each line's port instead of plain TCP, presenting "
                "this PEM certificate (chain), as an SPA line set to TLS."
            ),
        ),
        click.option(
            "--tls-key",
            type=click.Path(dir_okay=False),
            help="The certificate's PEM private key, if not in the --tls-cert file.",
        ),
        click.option(
            "--max-transactions",
            type=click.IntRange(1),
            default=DEFAULT_MAX_SERVER_TRANSACTIONS,
            show_default=True,
            help="Live SIP transactions (~1 KB each) before new requests are answered 503.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func
