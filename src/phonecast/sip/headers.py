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

Import them all from here: Via and the name-addr (with their shape tables)
are defined in :mod:`phonecast.sip._addresses`, what the grammars share in
:mod:`phonecast.sip._params`.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from typing import Final

from phonecast.sip import _abnf
from phonecast.sip._addresses import (
    NameAddr,
    Via,
    parse_name_addr,
    parse_name_addr_list,
    parse_via,
    parse_via_list,
)
from phonecast.sip._memo import remember
from phonecast.sip._params import (
    _MAX_KEY,
    _WS,
    _delta_seconds,
    param_value,
    parse_params,
    split_commas,
)
from phonecast.sip.errors import HeaderError
from phonecast.sip.uri import (
    AbsoluteUri,
    Params,
    SipUri,
    format_params,
)

# --------------------------------------------------------------- scalar fields


@dataclass(frozen=True, slots=True, init=False)
class CSeq:
    """CSeq: sequence number and method (RFC 3261 20.16)."""

    seq: int
    method: str

    def __init__(self, seq: int, method: str) -> None:
        object.__setattr__(self, "seq", seq)  # written out: see _addresses.Via.__init__
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
