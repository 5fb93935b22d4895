"""The address headers: Via (RFC 3261 20.42, 25.1) and the name-addr of
From, To, Contact, Route and Record-Route (20.10, 20.20, 20.39).

Every request and response carries them and each peer repeats their shape
(only a branch or a tag changes from one message to the next), so besides
the full grammar they have shape tables: the usual value is read once per
peer and then only its branch or tag.  :mod:`phonecast.sip.headers`
re-exports everything public here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final

from phonecast.sip import _abnf
from phonecast.sip._memo import memoize, remember
from phonecast.sip._params import (
    _MAX_KEY,
    _WS,
    _delta_seconds,
    param_value,
    parse_params,
    split_commas,
)
from phonecast.sip.errors import HeaderError, ParseError
from phonecast.sip.uri import Params, Uri, find_param, format_params, parse_uri

# --------------------------------------------------------------------------- Via


@dataclass(frozen=True, slots=True, init=False)
class Via:
    """One Via value: ``SIP/2.0/UDP host[:port];params`` (RFC 3261 20.42)."""

    transport: str
    host: str
    port: int | None = None
    params: Params = ()
    protocol: str = "SIP/2.0"

    # Written out (the generated one stays interpreted when the core is
    # compiled: ~15x slower per value).  Parameters mirror the fields, which
    # tests/sip/test_values.py checks for every value type written this way.
    def __init__(
        self,
        transport: str,
        host: str,
        port: int | None = None,
        params: Params = (),
        protocol: str = "SIP/2.0",
    ) -> None:
        object.__setattr__(self, "transport", transport)
        object.__setattr__(self, "host", host)
        object.__setattr__(self, "port", port)
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "protocol", protocol)

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.protocol}/{self.transport} {self.host}{port}{format_params(self.params)}"

    @property
    def branch(self) -> str | None:
        """The branch parameter (the transaction id when RFC 3261 compliant)."""
        return find_param(self.params, "branch") or None

    @property
    def received(self) -> str | None:
        """The received parameter (source address seen by the next hop)."""
        return find_param(self.params, "received") or None

    @property
    def rport(self) -> int | None:
        """The rport value filled in by the server (RFC 3581), if any."""
        value = find_param(self.params, "rport")
        return int(value) if value else None

    @property
    def wants_rport(self) -> bool:
        """True if the sender asked for rport (present, with or without value)."""
        return find_param(self.params, "rport") is not None

    @property
    def hostname(self) -> str:
        """The sent-by host without IPv6 brackets."""
        return self.host[1:-1] if self.host.startswith("[") else self.host

    def with_params(self, **values: str | None) -> Via:
        """A copy with parameters set (``None`` means a flag)."""
        lowered = {k.lower() for k in values}
        kept = tuple(p for p in self.params if p[0].lower() not in lowered)
        # The constructor, not dataclasses.replace: every request received
        # over UDP is stamped through here, and replace() costs several times more.
        return Via(self.transport, self.host, self.port, (*kept, *values.items()), self.protocol)


_VIA_RE: Final = re.compile(
    rf"({_abnf.token})[ \t]*/[ \t]*({_abnf.token})[ \t]*/[ \t]*({_abnf.token})[ \t]+"
    rf"({_abnf.host})(?:[ \t]*:[ \t]*([0-9]{{1,5}}))?"
)


#: The usual Via's first part, ``SIP/2.0/<transport> host[:port]``.
_SENT_BY_RE: Final = re.compile(
    rf"SIP/2\.0/([A-Za-z]+) ({_abnf.IPv4address}|{_abnf.hostname}|{_abnf.IPv6reference})"
    rf"(?::([0-9]{{1,5}}))?"
)
#: ... and its plain ;name[=value] parameters (no quotes, no white space).
_PLAIN_PARAMS_RE: Final = re.compile(
    rf"(?:;{_abnf.token}(?:=(?:{_abnf.token}|{_abnf.IPv6reference}))?)*"
)

#: The first part of the usual Via as sent -> (transport, host, port).  Every
#: message from one peer repeats it (only the parameters change), so it is
#: matched once per peer; bounded by starting afresh when full.
_SENT_BY: Final[dict[str, tuple[str, str, int | None]]] = {}
#: received / maddr values already checked to be hosts (they repeat as well).
_HOSTS: Final[dict[str, bool]] = {}


def _sent_by(text: str) -> tuple[str, str, int | None] | None:
    """``SIP/2.0/<transport> host[:port]`` of the usual Via, or None."""
    found = _SENT_BY.get(text)
    if found is None:
        m = _SENT_BY_RE.fullmatch(text)
        if m is None:
            return None
        transport, host, port_text = m.groups()
        port = int(port_text) if port_text else None
        if port is not None and port > 65535:
            return None
        found = (transport.upper(), host, port)
        if len(text) <= _MAX_KEY:
            remember(_SENT_BY, text, found)
    return found


def _is_host(text: str) -> bool:
    known = _HOSTS.get(text)
    if known is None:
        known = _abnf.IPV4_RE.fullmatch(text) is not None or (
            _abnf.HOST_RE.fullmatch(text) is not None
        )
        if len(text) <= _MAX_KEY:
            remember(_HOSTS, text, known)
    return known


def _simple_params_ok(params: Params) -> bool:
    """The checks the full parser makes on received, maddr, rport and ttl
    values (False sends the value to the full parser, which names the fault)."""
    for key, val in params:
        if val is None or key == "branch":
            continue
        lk = key.lower()
        if lk == "received" or lk == "maddr":
            if not _is_host(val):
                return False
        elif lk == "rport":
            if not (val.isdigit() and val.isascii() and int(val) <= 65535):
                return False
        elif lk == "ttl" and not (val.isdigit() and val.isascii() and int(val) <= 255):
            return False
    return True


#: The usual Via with its branch value cut out (``;branch=`` left in, so the
#: key keeps where it stood) -> (transport, host, port, parameters before
#: the branch, parameters after it).  A peer's Vias differ only in the
#: branch, so the rest is read once per peer; bounded.
_VIA_SHAPES: Final[dict[str, tuple[str, str, int | None, Params, Params]]] = {}


def _simple_via(value: str) -> Via | None:
    """The usual via-parm read with string operations (what does not change
    between one peer's messages remembered), or None for the full parser."""
    # ";branch=" always starts a parameter: host and values hold no ';'.
    at = value.find(";branch=")
    shape_key = ""
    branch = ""
    if at > 0:
        end = value.find(";", at + 8)
        if end < 0:
            end = len(value)
        branch = value[at + 8 : end]
        shape_key = value[: at + 8] + value[end:]
        shape = _VIA_SHAPES.get(shape_key)
        if shape is not None and _abnf.is_token(branch):
            transport, host, port, before, after = shape
            return Via(transport, host, port, (*before, ("branch", branch), *after), "SIP/2.0")
    semi = value.find(";")
    sent_by = _sent_by(value if semi < 0 else value[:semi])
    if sent_by is None:
        return None
    transport, host, port = sent_by
    if semi < 0:
        return Via(transport, host, port, (), "SIP/2.0")
    param_text = value[semi:]
    if _PLAIN_PARAMS_RE.fullmatch(param_text) is None:
        return None
    items: list[tuple[str, str | None]] = []
    for item in param_text[1:].split(";"):
        name, eq, val = item.partition("=")
        items.append((name, val) if eq else (name, None))
    params = tuple(items)
    if not _simple_params_ok(params):
        return None
    if shape_key and len(shape_key) <= _MAX_KEY:
        first = items.index(("branch", branch))  # the first branch parameter
        remember(
            _VIA_SHAPES, shape_key, (transport, host, port, params[:first], params[first + 1 :])
        )
    return Via(transport, host, port, params, "SIP/2.0")


def parse_via(value: str, header: str = "Via") -> Via:
    """Parse one via-parm."""
    simple = _simple_via(value)
    return simple if simple is not None else _full_via(value, header)


def _full_via(value: str, header: str) -> Via:
    """:func:`parse_via` for any via-parm: the grammar in full, naming the
    fault (the simple reading must agree with it)."""
    m = _VIA_RE.match(value)
    if m is None:
        raise HeaderError(header, "expected 'SIP/2.0/TRANSPORT host[:port]'", value=value)
    name, version, transport, host, port_text = m.groups()
    port = int(port_text) if port_text else None
    if port is not None and port > 65535:
        raise HeaderError(header, "port out of range", value=value)
    params = parse_params(value[m.end() :], header)
    for key, val in params:
        lk = key.lower()
        if lk in ("received", "maddr") and val is not None:
            inner = val[1:-1] if val.startswith("[") else val
            if not (_abnf.HOST_RE.fullmatch(val) or ":" in inner):
                raise HeaderError(header, f"invalid {lk} address", value=value)
        elif lk == "rport" and val is not None and not (val.isdigit() and int(val) <= 65535):
            raise HeaderError(header, "invalid rport", value=value)
        elif lk == "ttl" and val is not None and not (val.isdigit() and int(val) <= 255):
            raise HeaderError(header, "invalid ttl", value=value)
    return Via(transport.upper(), host, port, params, f"{name}/{version}")


def parse_via_list(value: str, header: str = "Via") -> tuple[Via, ...]:
    """Parse a Via header field value (one or more comma-separated via-parms)."""
    return tuple(parse_via(part, header) for part in split_commas(value))


# ------------------------------------------------------------------ name-addr


@dataclass(frozen=True, slots=True, init=False)
class NameAddr:
    """From, To, Contact, Route and Record-Route values (RFC 3261 20.10...).

    ``display_name`` is the plain text (unquoted) or ``None``; ``params`` are
    the header parameters after the URI (``tag``, ``expires``, ``q``...).
    """

    uri: Uri
    display_name: str | None = None
    params: Params = ()

    def __init__(self, uri: Uri, display_name: str | None = None, params: Params = ()) -> None:
        object.__setattr__(self, "uri", uri)  # written out: see Via.__init__
        object.__setattr__(self, "display_name", display_name)
        object.__setattr__(self, "params", params)

    def __str__(self) -> str:
        if self.display_name is None:
            head = f"<{self.uri}>"
        elif self.display_name and _is_token_words(self.display_name):
            head = f"{self.display_name} <{self.uri}>"
        else:
            head = f"{_abnf.quote(self.display_name)} <{self.uri}>"
        return head + format_params(self.params)

    @property
    def tag(self) -> str | None:
        """The dialog tag (From/To), if present."""
        return find_param(self.params, "tag") or None

    def param(self, name: str) -> str | None:
        """Plain value of a header parameter (quotes removed)."""
        return param_value(self.params, name)

    def with_tag(self, tag: str) -> NameAddr:
        """A copy carrying ``tag`` (replacing any existing one)."""
        kept = tuple(p for p in self.params if p[0].lower() != "tag")
        return replace(self, params=(*kept, ("tag", tag)))

    @property
    def expires(self) -> int | None:
        """Contact ``expires`` parameter in seconds, if any."""
        raw = find_param(self.params, "expires")
        return None if raw is None else _delta_seconds(raw, "Contact", raw)


def _is_token_words(text: str) -> bool:
    return all(_abnf.is_token(w) for w in text.split(" "))


_DISPLAY_TOKENS_RE: Final = re.compile(rf"{_abnf.token}(?:[ \t]+{_abnf.token})*")


#: A From/To with its tag value cut out (";tag=" left in, so the key keeps
#: where it stood) -> (that value parsed without the tag, the tag's place
#: among its parameters).  One peer's From values differ only in the tag
#: (a fresh one per call), which defeats a cache of whole values: the rest
#: is read once per peer, as for the Via's branch; bounded.
_TAGGED_SHAPES: Final[dict[str, tuple[NameAddr, int]]] = {}
#: Values without a tag (a To outside a dialog: the same in every request
#: a peer sends) -> parsed.  A dict probe, where the memoised grammar is a
#: Python-level call with its arguments packed; bounded.
_UNTAGGED: Final[dict[str, NameAddr]] = {}


def parse_name_addr(value: str, header: str, *, allow_addr_spec: bool = True) -> NameAddr:
    """Parse ``( name-addr / addr-spec ) *( SEMI param )`` (see
    :func:`_parse_name_addr`); a value with a plain ``;tag=`` parameter is
    read once per shape, and then only its tag."""
    if allow_addr_spec:
        found = _UNTAGGED.get(value)
        if found is not None:
            return found
        after_uri = value.rfind(">") + 1
        at = value.find(";tag=", after_uri)
        # Quotes after the URI could hide ";tag=" inside a value: such
        # values (rare) always take the full grammar.
        if at > 0 and '"' not in value[after_uri:]:
            end = value.find(";", at + 5)
            if end < 0:
                end = len(value)
            tag = value[at + 5 : end]
            if tag and _abnf.is_token(tag):
                key = value[: at + 5] + value[end:]
                shape = _TAGGED_SHAPES.get(key)
                if shape is not None:
                    base, place = shape
                    params = base.params
                    return NameAddr(
                        base.uri,
                        base.display_name,
                        (*params[:place], ("tag", tag), *params[place:]),
                    )
                parsed = _parse_name_addr(value, header)
                tags = [i for i, (name, _) in enumerate(parsed.params) if name.lower() == "tag"]
                if (
                    len(key) <= _MAX_KEY
                    and len(tags) == 1
                    and parsed.params[tags[0]] == ("tag", tag)
                ):
                    place = tags[0]
                    rest = (*parsed.params[:place], *parsed.params[place + 1 :])
                    remember(
                        _TAGGED_SHAPES,
                        key,
                        (NameAddr(parsed.uri, parsed.display_name, rest), place),
                    )
                return parsed
        parsed = _parse_name_addr(value, header)
        if len(value) <= _MAX_KEY:
            remember(_UNTAGGED, value, parsed)
        return parsed
    return _parse_name_addr(value, header, allow_addr_spec=False)


@memoize()
def _parse_name_addr(value: str, header: str, *, allow_addr_spec: bool = True) -> NameAddr:
    """Parse ``( name-addr / addr-spec ) *( SEMI param )``: the grammar in
    full, naming the fault (what the tagged-shape reading must agree with).

    name-addr = [ display-name ] LAQUOT addr-spec RAQUOT, with display-name =
    *(token LWS) / quoted-string.  An addr-spec without angle brackets may not
    contain ',', '?' or ';' (RFC 3261 20, last paragraph): a ';' there starts
    the header parameters.
    """
    text = value.strip(_WS)
    display: str | None = None
    if text.startswith('"'):
        m = _abnf.QUOTED_STRING_RE.match(text)
        if m is None:
            raise HeaderError(header, "unterminated or invalid quoted display name", value=value)
        display = _abnf.unquote(m.group(0))
        rest = text[m.end() :].lstrip(_WS)
        if not rest.startswith("<"):
            raise HeaderError(header, "expected '<' after display name", value=value)
    elif "<" in text and not text.startswith("<"):
        lt = text.index("<")
        words = text[:lt].strip(_WS)
        if _DISPLAY_TOKENS_RE.fullmatch(words) is None:
            raise HeaderError(header, "display name is neither tokens nor quoted", value=value)
        display = " ".join(words.split())
        rest = text[lt:]
    else:
        rest = text
    if rest.startswith("<"):
        gt = rest.find(">")
        if gt < 0:
            raise HeaderError(header, "missing '>'", value=value)
        uri_text = rest[1:gt]
        if not uri_text or uri_text[0] in _WS or uri_text[-1] in _WS:
            raise HeaderError(header, "white space inside '<...>'", value=value)
        param_text = rest[gt + 1 :]
    else:
        if not allow_addr_spec:
            raise HeaderError(header, "URI must be enclosed in '<...>'", value=value)
        semi = rest.find(";")
        uri_text, param_text = (rest, "") if semi < 0 else (rest[:semi], rest[semi:])
        uri_text = uri_text.rstrip(_WS)
        if any(c in uri_text for c in ",? \t"):
            raise HeaderError(
                header, "a URI with ',', '?' or spaces must be enclosed in '<...>'", value=value
            )
    try:
        uri = parse_uri(uri_text)
    except ParseError as exc:
        raise HeaderError(header, exc.message, value=value) from None
    params = parse_params(param_text, header) if param_text.strip(_WS) else ()
    return NameAddr(uri, display, params)


def parse_name_addr_list(
    value: str, header: str, *, allow_addr_spec: bool = True
) -> tuple[NameAddr, ...]:
    """Parse a comma-separated list of name-addr / addr-spec values."""
    return tuple(
        parse_name_addr(part, header, allow_addr_spec=allow_addr_spec)
        for part in split_commas(value)
    )
