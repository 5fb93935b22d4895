"""SIP, SIPS and tel URIs, plus opaque URIs of any other scheme.

Values are immutable and keep their components in escaped (wire) form so that
``str(parse_uri(text)) == text`` for every canonical URI; unescaped views are
properties.  Equality of :class:`SipUri` follows RFC 3261 section 19.1.4, not
string equality: ``sip:alice@ATLANTA.com;transport=TCP`` equals
``sip:%61lice@atlanta.com;transport=tcp``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from typing import Final

from phonecast.sip import _abnf
from phonecast.sip._memo import memoize
from phonecast.sip.errors import UriError

Params = tuple[tuple[str, str | None], ...]

#: Parameters that make two SIP URIs different when only one side has them.
_SIGNIFICANT_PARAMS: Final = ("user", "ttl", "method", "maddr", "transport")

#: The port each transport uses when a URI names none (RFC 3261 19.1.2).
DEFAULT_PORTS: Final = {"udp": 5060, "tcp": 5060, "tls": 5061, "sctp": 5060, "ws": 80, "wss": 443}


def format_params(params: Params) -> str:
    """Serialise ``;name[=value]`` pairs."""
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def find_param(params: Params, name: str) -> str | None:
    """Value of the first parameter called ``name`` (case-insensitive); a
    parameter present without a value gives ``""``; absent gives ``None``."""
    lname = name.lower()
    for key, value in params:
        if key.lower() == lname:
            return "" if value is None else value
    return None


def has_param(params: Params, name: str) -> bool:
    """True if a parameter called ``name`` is present (with or without value)."""
    lname = name.lower()
    return any(key.lower() == lname for key, _ in params)


def normalize_host(host: str) -> str:
    """Canonical host for comparison: lower case, IPv6 compressed, no brackets
    around IPv6 (callers add them back when serialising)."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(bare).compressed
    except ValueError:
        return bare.lower().rstrip(".") if bare else bare


_OCTET: Final = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_STRICT_RE: Final = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
#: The common URI shape, parsed in one match: sip:user@host[:port] with a
#: plain user, an IPv4 address or host name, and no parameters or headers.
_SIMPLE_SIP_RE: Final = re.compile(
    rf"(sips?):(?:([A-Za-z0-9\-_.!~*'()&=+$,]+)@)?"
    rf"({_OCTET}(?:\.{_OCTET}){{3}}|{_abnf.hostname})(?::([0-9]{{1,5}}))?"
)


def _check_host(host: str, uri: str) -> None:
    if _IPV4_STRICT_RE.fullmatch(host) is not None:
        return
    if _abnf.HOST_RE.fullmatch(host) is None:
        raise UriError("invalid host", uri=uri)
    if host.startswith("["):
        inner = host[1:-1]
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            # RFC 5118 4.3: tolerate the RFC 3261 ABNF's extra colon, nothing else.
            if not _loose_ipv6(inner):
                raise UriError("invalid IPv6 reference", uri=uri) from None
    elif _abnf.IPV4_RE.fullmatch(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise UriError("invalid IPv4 address", uri=uri) from None


def _loose_ipv6(inner: str) -> bool:
    """Accept the 'three colons' form RFC 5118 4.3 says to be liberal about."""
    if ":::" not in inner:
        return False
    try:
        ipaddress.IPv6Address(inner.replace(":::", "::", 1))
    except ValueError:
        return False
    return True


def _parse_params(text: str, uri: str) -> Params:
    """``text`` starts after the first ';'."""
    out: list[tuple[str, str | None]] = []
    for item in text.split(";"):
        name, eq, value = item.partition("=")
        if _abnf.PNAME_RE.fullmatch(name) is None:
            raise UriError(f"invalid URI parameter {item!r}", uri=uri)
        if eq:
            if _abnf.PVALUE_RE.fullmatch(value) is None:
                raise UriError(f"invalid value of URI parameter {name!r}", uri=uri)
            out.append((name, value))
        else:
            out.append((name, None))
    return tuple(out)


def _parse_headers(text: str, uri: str) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for item in text.split("&"):
        name, eq, value = item.partition("=")
        if not eq or _abnf.HNAME_RE.fullmatch(name) is None:
            raise UriError(f"invalid URI header {item!r}", uri=uri)
        if _abnf.HVALUE_RE.fullmatch(value) is None:
            raise UriError(f"invalid value of URI header {name!r}", uri=uri)
        out.append((name, value))
    return tuple(out)


@dataclass(frozen=True, slots=True, eq=False)
class SipUri:
    """A ``sip:`` or ``sips:`` URI (RFC 3261 19.1), components escaped."""

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()
    scheme: str = "sip"

    def __str__(self) -> str:
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(self.user)
            if self.password is not None:
                parts += [":", self.password]
            parts.append("@")
        parts.append(self.host)
        if self.port is not None:
            parts += [":", str(self.port)]
        if self.params:
            parts.append(format_params(self.params))
        if self.headers:
            parts.append("?" + "&".join(f"{k}={v}" for k, v in self.headers))
        return "".join(parts)

    @property
    def secure(self) -> bool:
        """True for ``sips:`` (TLS on every hop)."""
        return self.scheme == "sips"

    @property
    def user_unescaped(self) -> str | None:
        """The user part with %HH escapes decoded."""
        return None if self.user is None else _abnf.unescape(self.user)

    @property
    def hostname(self) -> str:
        """The host without IPv6 brackets."""
        h = self.host
        return h[1:-1] if h.startswith("[") else h

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, lower-cased, if any."""
        value = find_param(self.params, "transport")
        return value.lower() if value else None

    @property
    def maddr(self) -> str | None:
        """The ``maddr`` parameter, if any."""
        return find_param(self.params, "maddr") or None

    @property
    def lr(self) -> bool:
        """True if the URI carries ``lr`` (a loose router, RFC 3261 16.12)."""
        return has_param(self.params, "lr")

    def param(self, name: str) -> str | None:
        """Value of a URI parameter (``""`` for a flag, ``None`` if absent)."""
        return find_param(self.params, name)

    def with_params(self, **values: str | None) -> SipUri:
        """A copy with parameters set (value ``None`` means a flag)."""
        lowered = {k.lower() for k in values}
        kept = tuple(p for p in self.params if p[0].lower() not in lowered)
        return replace(self, params=kept + tuple(values.items()))

    def without_params(self, *names: str) -> SipUri:
        """A copy without the named parameters."""
        lowered = {n.lower() for n in names}
        return replace(self, params=tuple(p for p in self.params if p[0].lower() not in lowered))

    def without_password(self) -> SipUri:
        """A copy without the userinfo's password (RFC 3261 19.1.1: it SHOULD
        NOT be used; sent, it would travel in clear in every header that
        names the URI)."""
        return self if self.password is None else replace(self, password=None)

    def _key(self) -> tuple[object, ...]:
        user = None if self.user is None else _abnf.normalize_escapes(self.user)
        password = None if self.password is None else _abnf.normalize_escapes(self.password)
        return (self.scheme, user, password, normalize_host(self.host), self.port)

    def __eq__(self, other: object) -> bool:
        """RFC 3261 19.1.4 comparison."""
        if not isinstance(other, SipUri):
            return NotImplemented
        if self._key() != other._key():
            return False
        mine = {k.lower(): _norm_value(v) for k, v in self.params}
        theirs = {k.lower(): _norm_value(v) for k, v in other.params}
        for name in _SIGNIFICANT_PARAMS:
            if mine.get(name) != theirs.get(name):
                return False
        for name in mine.keys() & theirs.keys():
            if mine[name] != theirs[name]:
                return False
        my_headers = {k.lower(): _abnf.normalize_escapes(v) for k, v in self.headers}
        their_headers = {k.lower(): _abnf.normalize_escapes(v) for k, v in other.headers}
        return my_headers == their_headers

    def __hash__(self) -> int:
        return hash(self._key())


def _norm_value(value: str | None) -> str | None:
    return None if value is None else _abnf.normalize_escapes(value).lower()


@dataclass(frozen=True, slots=True)
class TelUri:
    """A ``tel:`` URI (RFC 3966): the number and its parameters, kept as sent."""

    number: str
    params: Params = ()
    scheme: str = "tel"

    def __str__(self) -> str:
        return f"tel:{self.number}{format_params(self.params)}"

    @property
    def is_global(self) -> bool:
        """True for a global number (starts with ``+``)."""
        return self.number.startswith("+")


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """A URI of a scheme phonecast does not interpret, kept opaquely."""

    scheme: str
    rest: str = field(default="")

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"


Uri = SipUri | TelUri | AbsoluteUri


@memoize()
def parse_uri(text: str) -> Uri:
    """Parse a URI as it appears in a Request-URI or a name-addr.

    Raises :class:`UriError` (a :class:`ParseError`) naming the fault.
    """
    scheme, colon, rest = text.partition(":")
    if not colon or _abnf.SCHEME_RE.fullmatch(scheme) is None:
        raise UriError("not a URI (expected scheme ':' ...)", uri=text)
    simple = _SIMPLE_SIP_RE.fullmatch(text)
    if simple is not None:
        scheme, user, host, port_text = simple.groups()
        port = int(port_text) if port_text else None
        if port is None or port <= 65535:
            return SipUri(host, user, None, port, (), (), scheme)
    lscheme = scheme.lower()
    if lscheme in ("sip", "sips"):
        return _parse_sip(lscheme, rest, text)
    if lscheme == "tel":
        number, _, params = rest.partition(";")
        if not number or any(c in number for c in ' \t<>"@'):
            raise UriError("invalid tel number", uri=text)
        return TelUri(number, _parse_params(params, text) if params else ())
    if not rest or any(c in rest for c in ' \t\r\n<>"'):
        raise UriError("invalid URI", uri=text)
    return AbsoluteUri(lscheme, rest)


def _parse_sip(scheme: str, rest: str, text: str) -> SipUri:
    user: str | None = None
    password: str | None = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, colon, pw = userinfo.partition(":")
        if _abnf.USER_RE.fullmatch(user) is None:
            raise UriError("invalid user part", uri=text)
        if colon:
            if _abnf.PASSWORD_RE.fullmatch(pw) is None:
                raise UriError("invalid password part", uri=text)
            password = pw
    rest, qmark, header_text = rest.partition("?")
    hostport, semi, param_text = rest.partition(";")
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            raise UriError("unterminated IPv6 reference", uri=text)
        host, after = hostport[: close + 1], hostport[close + 1 :]
    else:
        host, _, port_text = hostport.partition(":")
        after = ":" + port_text if _ else ""
    port: int | None = None
    if after:
        if not after.startswith(":") or not after[1:].isdigit() or len(after) > 6:
            raise UriError("invalid port", uri=text)
        port = int(after[1:])
        if port > 65535:
            raise UriError("port out of range", uri=text)
    _check_host(host, text)
    params = _parse_params(param_text, text) if semi else ()
    headers = _parse_headers(header_text, text) if qmark else ()
    return SipUri(host, user, password, port, params, headers, scheme)
