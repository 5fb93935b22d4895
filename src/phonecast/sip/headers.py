"""Typed header field values and their parsers (RFC 3261 section 20 and 25).

Each parser takes one header *field value* (after unfolding) and the header's
name for error messages, and returns a small immutable value or raises
:class:`HeaderError`.  :mod:`phonecast.sip.message` calls them lazily, the first
time a header is read, so a broken header that nobody reads never costs time
and never stops a message from parsing (RFC 4475 3.1.2: the layer that must
object is the one that reads the field).

Parameters are kept as ``(name, value)`` pairs in wire form (a quoted value
keeps its quotes), so serialising a parsed value gives back an equivalent
header; accessors such as :attr:`NameAddr.tag` return the plain value.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, replace
from typing import Final

from phonecast.sip import _abnf
from phonecast.sip._memo import memoize, remember
from phonecast.sip.errors import HeaderError, ParseError
from phonecast.sip.uri import (
    AbsoluteUri,
    Params,
    SipUri,
    Uri,
    find_param,
    format_params,
    parse_uri,
)

_WS: Final = " \t"
# gen-value = token / host / quoted-string; Via's received also admits a bare
# IPv6address (RFC 3261 via-received, RFC 5118 4.5), tried first.
_GEN_VALUE_RE: Final = re.compile(
    rf"[0-9A-Fa-f]*:[0-9A-Fa-f:.]+|{_abnf.token}|{_abnf.host}|{_abnf.quoted_string}"
)
_MAX_DELTA: Final = 2**32 - 1


def split_commas(value: str) -> list[str]:
    """Split a list-valued header on the commas that separate its elements,
    leaving commas inside quoted strings and ``<...>`` alone."""
    if "," not in value:
        return [value.strip(_WS)]
    parts: list[str] = []
    start = 0
    in_quote = in_angle = False
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if in_quote:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_quote = False
        elif ch == '"':
            in_quote = True
        elif ch == "<":
            in_angle = True
        elif ch == ">":
            in_angle = False
        elif ch == "," and not in_angle:
            parts.append(value[start:i].strip(_WS))
            start = i + 1
        i += 1
    parts.append(value[start:].strip(_WS))
    return parts


def parse_params(text: str, header: str) -> Params:
    """Parse ``*( SEMI generic-param )``; ``text`` starts at the first ';'.

    generic-param = token [ EQUAL gen-value ]; gen-value = token / host /
    quoted-string.  LWS is allowed around ';' and '='.
    """
    out: list[tuple[str, str | None]] = []
    i = 0
    n = len(text)
    while i < n:
        while i < n and text[i] in _WS:
            i += 1
        if i == n:
            break
        if text[i] != ";":
            raise HeaderError(header, f"expected ';' before {text[i : i + 20]!r}", value=text)
        i += 1
        m = _abnf.TOKEN_AT_RE.match(text, i)
        if m is None:
            raise HeaderError(header, "empty or invalid parameter name", value=text)
        name = m.group(1)
        i = m.end()
        while i < n and text[i] in _WS:
            i += 1
        if i < n and text[i] == "=":
            i += 1
            while i < n and text[i] in _WS:
                i += 1
            vm = _GEN_VALUE_RE.match(text, i)
            if vm is None or vm.end() == i:
                raise HeaderError(header, f"parameter {name!r} has no valid value", value=text)
            out.append((name, vm.group(0)))
            i = vm.end()
        else:
            out.append((name, None))
    return tuple(out)


def param_value(params: Params, name: str) -> str | None:
    """Plain value of a header parameter: quotes removed, flag -> ``""``."""
    raw = find_param(params, name)
    if raw is not None and raw.startswith('"'):
        return _abnf.unquote(raw)
    return raw


def _delta_seconds(text: str, header: str, whole: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise HeaderError(header, "expected delta-seconds", value=whole)
    number = int(text)
    if number > _MAX_DELTA:
        raise HeaderError(header, f"value exceeds {_MAX_DELTA}", value=whole)
    return number


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
#: Longest text these tables keep (a longer one is read every time).
_MAX_KEY: Final = 160


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


# --------------------------------------------------------------- scalar fields


@dataclass(frozen=True, slots=True, init=False)
class CSeq:
    """CSeq: sequence number and method (RFC 3261 20.16)."""

    seq: int
    method: str

    def __init__(self, seq: int, method: str) -> None:
        object.__setattr__(self, "seq", seq)  # written out: see Via.__init__
        object.__setattr__(self, "method", method)

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


_CSEQ_RE: Final = re.compile(rf"([0-9]+)[ \t]+({_abnf.token})")


#: CSeq values as received -> parsed (each recurs once per call or dialog).
_CSEQS: Final[dict[str, CSeq]] = {}


def parse_cseq(value: str, header: str = "CSeq") -> CSeq:
    """Parse CSeq; the number must be below 2**31 (RFC 3261 8.1.1.5)."""
    found = _CSEQS.get(value)
    if found is None:
        found = _parse_cseq(value, header)
        if len(value) <= _MAX_KEY:
            remember(_CSEQS, value, found)
    return found


def _parse_cseq(value: str, header: str) -> CSeq:
    m = _CSEQ_RE.fullmatch(value.strip(_WS))
    if m is None:
        raise HeaderError(header, "expected 'number METHOD'", value=value)
    seq = int(m.group(1))
    if seq >= 2**31:
        raise HeaderError(header, "sequence number must be less than 2**31", value=value)
    return CSeq(seq, m.group(2))


def parse_call_id(value: str, header: str = "Call-ID") -> str:
    """Validate Call-ID (word [ "@" word ])."""
    text = value.strip(_WS)
    if _abnf.CALLID_RE.fullmatch(text) is None:
        raise HeaderError(header, "not a valid Call-ID", value=value)
    return text


def parse_max_forwards(value: str, header: str = "Max-Forwards") -> int:
    """Max-Forwards: an integer 0-255 (RFC 3261 20.22)."""
    text = value.strip(_WS)
    if not text.isdigit() or not text.isascii() or int(text) > 255:
        raise HeaderError(header, "expected an integer from 0 to 255", value=value)
    return int(text)


def parse_delta_seconds(value: str, header: str) -> int:
    """Expires, Min-Expires and other delta-seconds fields."""
    return _delta_seconds(value.strip(_WS), header, value)


def parse_content_length(value: str, header: str = "Content-Length") -> int:
    """Content-Length: 1*DIGIT."""
    text = value.strip(_WS)
    if not text.isdigit() or not text.isascii():
        raise HeaderError(header, "expected a non-negative integer", value=value)
    return int(text)


# ------------------------------------------------------------------ media types


@dataclass(frozen=True, slots=True)
class MediaType:
    """Content-Type / Accept element: ``type/subtype;params``."""

    type: str
    subtype: str
    params: Params = ()

    def __str__(self) -> str:
        return f"{self.type}/{self.subtype}{format_params(self.params)}"

    @property
    def mime(self) -> str:
        """``type/subtype`` in lower case, for comparisons."""
        return f"{self.type}/{self.subtype}".lower()

    def matches(self, mime: str) -> bool:
        """True if this (possibly wildcard) media range admits ``mime``."""
        t, _, s = mime.lower().partition("/")
        mt, ms = self.type.lower(), self.subtype.lower()
        return (mt == "*" or mt == t) and (ms == "*" or ms == s)

    @property
    def charset(self) -> str | None:
        """The charset parameter, if any."""
        return param_value(self.params, "charset")


_MEDIA_RE: Final = re.compile(rf"({_abnf.token})[ \t]*/[ \t]*({_abnf.token})")


#: Content-Type / Accept values -> parsed (``header`` only names faults,
#: and faults are not kept); bounded.
_MEDIA_TYPES: Final[dict[str, MediaType]] = {}


def parse_media_type(value: str, header: str = "Content-Type") -> MediaType:
    """Parse ``m-type SLASH m-subtype *(SEMI m-parameter)``."""
    found = _MEDIA_TYPES.get(value)
    if found is not None:
        return found
    text = value.strip(_WS)
    m = _MEDIA_RE.match(text)
    if m is None:
        raise HeaderError(header, "expected 'type/subtype'", value=value)
    parsed = MediaType(m.group(1), m.group(2), parse_params(text[m.end() :], header))
    if len(value) <= _MAX_KEY:
        remember(_MEDIA_TYPES, value, parsed)
    return parsed


def parse_accept(value: str, header: str = "Accept") -> tuple[MediaType, ...]:
    """Accept: a possibly empty list of media ranges."""
    if not value.strip(_WS):
        return ()
    return tuple(parse_media_type(part, header) for part in split_commas(value))


def parse_token_list(value: str, header: str) -> tuple[str, ...]:
    """Allow, Supported, Require, Proxy-Require, Unsupported: tokens by commas."""
    if not value.strip(_WS):
        return ()
    items = split_commas(value)
    for item in items:
        if not _abnf.is_token(item):
            raise HeaderError(header, f"{item!r} is not a token", value=value)
    return tuple(items)


# ---------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Event:
    """Event header (RFC 6665): package (compare case-insensitively) and params."""

    package: str
    params: Params = ()

    def __str__(self) -> str:
        return f"{self.package}{format_params(self.params)}"

    @property
    def id(self) -> str | None:
        """The ``id`` parameter distinguishing subscriptions, if any."""
        return param_value(self.params, "id")

    def is_(self, package: str) -> bool:
        """Case-insensitive comparison of the package name (Cisco phones accept
        ``XML-Service`` in any case)."""
        return self.package.lower() == package.lower()


#: Event / Subscription-State values -> parsed; bounded, as _MEDIA_TYPES.
_EVENTS: Final[dict[str, Event]] = {}


def parse_event(value: str, header: str = "Event") -> Event:
    """Parse ``event-type *( SEMI event-param )``."""
    found = _EVENTS.get(value)
    if found is not None:
        return found
    text = value.strip(_WS)
    m = _abnf.TOKEN_AT_RE.match(text)
    if m is None:
        raise HeaderError(header, "expected an event package token", value=value)
    parsed = Event(m.group(1), parse_params(text[m.end() :], header))
    if len(value) <= _MAX_KEY:
        remember(_EVENTS, value, parsed)
    return parsed


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    """Subscription-State (RFC 6665): active / pending / terminated + params."""

    state: str
    params: Params = ()

    def __str__(self) -> str:
        return f"{self.state}{format_params(self.params)}"

    @property
    def expires(self) -> int | None:
        """Remaining subscription time, if given."""
        raw = param_value(self.params, "expires")
        return None if raw is None else _delta_seconds(raw, "Subscription-State", raw)

    @property
    def reason(self) -> str | None:
        """Termination reason, if given."""
        return param_value(self.params, "reason")


def parse_subscription_state(value: str, header: str = "Subscription-State") -> SubscriptionState:
    """Parse ``substate-value *( SEMI subexp-params )``."""
    event = parse_event(value, header)
    return SubscriptionState(event.package.lower(), event.params)


# ----------------------------------------------------------------- Retry-After


@dataclass(frozen=True, slots=True)
class RetryAfter:
    """Retry-After: seconds, optional comment, params (``duration``)."""

    seconds: int
    comment: str | None = None
    params: Params = ()

    def __str__(self) -> str:
        comment = f" ({self.comment})" if self.comment is not None else ""
        return f"{self.seconds}{comment}{format_params(self.params)}"


_RETRY_RE: Final = re.compile(r"([0-9]+)(?:[ \t]*\(([^()]*)\))?")


def parse_retry_after(value: str, header: str = "Retry-After") -> RetryAfter:
    """Parse ``delta-seconds [ comment ] *( SEMI retry-param )``."""
    text = value.strip(_WS)
    m = _RETRY_RE.match(text)
    if m is None:
        raise HeaderError(header, "expected delta-seconds", value=value)
    seconds = _delta_seconds(m.group(1), header, value)
    return RetryAfter(seconds, m.group(2), parse_params(text[m.end() :], header))


# ------------------------------------------------------------------------ Date

_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
_WKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DATE_RE: Final = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" ([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT"
)


def parse_date(value: str, header: str = "Date") -> _dt.datetime:
    """Date: RFC 1123 form, always GMT (RFC 3261 20.17)."""
    m = _DATE_RE.fullmatch(value.strip(_WS))
    if m is None:
        raise HeaderError(header, "expected 'Wkd, DD Mon YYYY HH:MM:SS GMT'", value=value)
    _, day, mon, year, hh, mm, ss = m.groups()
    try:
        return _dt.datetime(
            int(year),
            _MONTHS.index(mon) + 1,
            int(day),
            int(hh),
            int(mm),
            int(ss),
            tzinfo=_dt.UTC,
        )
    except ValueError as exc:
        raise HeaderError(header, f"impossible date ({exc})", value=value) from None


def format_date(moment: _dt.datetime) -> str:
    """Format a Date header value (RFC 1123, GMT)."""
    utc = moment.astimezone(_dt.UTC)
    return (
        f"{_WKDAYS[utc.weekday()]}, {utc.day:02d} {_MONTHS[utc.month - 1]} {utc.year:04d} "
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d} GMT"
    )


__all__ = [
    "AbsoluteUri",
    "CSeq",
    "Event",
    "MediaType",
    "NameAddr",
    "RetryAfter",
    "SipUri",
    "SubscriptionState",
    "Via",
    "format_date",
    "param_value",
    "parse_accept",
    "parse_call_id",
    "parse_content_length",
    "parse_cseq",
    "parse_date",
    "parse_delta_seconds",
    "parse_event",
    "parse_max_forwards",
    "parse_media_type",
    "parse_name_addr",
    "parse_name_addr_list",
    "parse_params",
    "parse_retry_after",
    "parse_subscription_state",
    "parse_token_list",
    "parse_via",
    "parse_via_list",
    "split_commas",
]
