"""SIP messages as values: header index, serialising to bytes, lazy typed access.

Theory of operation
-------------------
``parse_message`` does the least work that lets a message be framed and
trusted: it splits the start line, unfolds header lines, checks each header
name is a token (in one pass of string operations; any doubt sends the
message to the line-by-line parser, which names the faulty line), indexes
the fields by canonical name and frames the body by Content-Length.  It does not
parse header *values*; typed accessors (``msg.via``, ``msg.cseq``...) parse on
first use and cache the result.  A 200 OK that a client only matches by
branch and CSeq therefore never builds From/To/Contact objects.

A message is a value: its header list is a tuple of ``(wire name, value)``
pairs in received order (names kept as sent, so re-serialising is faithful),
its body is bytes.  The ``with_*`` methods return new messages.  Header names
are matched case-insensitively and compact forms (RFC 3261 7.3.3) are
expanded for lookup.

Parsing and framing live in :mod:`phonecast.sip.wire`; ``parse_message``,
``parse_head`` and :class:`StreamFramer` are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Self, TypeVar

from phonecast.sip import headers as h
from phonecast.sip._digest_core import Challenge, Credentials
from phonecast.sip._digest_parse import parse_challenges, parse_credentials
from phonecast.sip.errors import HeaderError
from phonecast.sip.names import (
    _CANONICAL,
    COMPACT_NAMES,
    LIST_HEADERS,
    canonical_name,
    display_name,
)
from phonecast.sip.uri import Uri

# The parsers the properties hand to typed() and _required(), as constants:
# compiled code would otherwise look each one up on the headers module at
# every access, its value cached or not.
_PARSE_CALL_ID: Final = h.parse_call_id
_PARSE_CONTENT_LENGTH: Final = h.parse_content_length
_PARSE_CSEQ: Final = h.parse_cseq
_PARSE_DATE: Final = h.parse_date
_PARSE_DELTA_SECONDS: Final = h.parse_delta_seconds
_PARSE_EVENT: Final = h.parse_event
_PARSE_MAX_FORWARDS: Final = h.parse_max_forwards
_PARSE_MEDIA_TYPE: Final = h.parse_media_type
_PARSE_NAME_ADDR: Final = h.parse_name_addr
_PARSE_NAME_ADDR_LIST: Final = h.parse_name_addr_list
_PARSE_RETRY_AFTER: Final = h.parse_retry_after
_PARSE_SUBSCRIPTION_STATE: Final = h.parse_subscription_state
_PARSE_TOKEN_LIST: Final = h.parse_token_list
_PARSE_VIA_LIST: Final = h.parse_via_list

T = TypeVar("T")

Header = tuple[str, str]
_NONE: Final[list[str]] = []
_MISS: Final[Any] = object()  # "not cached yet" (None is a cached answer: header absent)


class Message:
    """Common part of :class:`Request` and :class:`Response`.

    Treat instances as immutable: every ``with_*`` method returns a copy.
    """

    __slots__ = ("_cache", "_headers", "_index", "_wire", "body", "version")

    body: bytes
    version: str

    def __init__(
        self, headers: Iterable[Header] = (), body: bytes = b"", version: str = "SIP/2.0"
    ) -> None:
        self._headers: tuple[Header, ...] = tuple(headers)
        self.body = body
        self.version = version
        self._index: dict[str, list[str]] | None = None
        self._cache: dict[str, Any] = {}
        #: Parsed messages: the wire bytes, re-sent as they are.
        self._wire: bytes | None = None

    @property
    def headers(self) -> tuple[Header, ...]:
        """Every header field as ``(name as sent, value)``, in order."""
        return self._headers

    # -- start line and serialisation, provided by subclasses
    def start_line(self) -> str:
        """The request or status line, without CRLF."""
        raise NotImplementedError

    def __bytes__(self) -> bytes:
        if self._wire is not None:
            return self._wire
        parts = [self.start_line(), "\r\n"]
        for name, value in self.headers:  # four appends: cheaper than a list each
            parts.append(name)
            parts.append(": ")
            parts.append(value)
            parts.append("\r\n")
        parts.append("\r\n")
        # Kept: a message is immutable, and a sender serialises it more than
        # once (size check, transmission, retransmissions).
        wire = self._wire = "".join(parts).encode("utf-8", "surrogateescape") + self.body
        return wire

    # -- raw header access
    def _values_index(self) -> dict[str, list[str]]:
        """Canonical name -> field values in order (parsed messages get it
        from the parser; built ones on first use): every lookup is then one
        dict probe, which is what a UAS reading a dozen headers needs."""
        index = self._index
        if index is None:
            index = self._index = index_fields(self.headers)
        return index

    def header_map(self) -> Mapping[str, list[str]]:
        """Every header as canonical (lower-case, long) name -> field values
        in order.  Read-only: it is the message's own index."""
        return self._values_index()

    def get(self, name: str) -> str | None:
        """The first field value of header ``name`` (any case, compact form ok)."""
        index = self._index
        if index is None:
            index = self._values_index()
        found = index.get(_CANONICAL.get(name) or canonical_name(name))
        return found[0] if found else None

    def get_all(self, name: str) -> list[str]:
        """Every field value of header ``name``, in order, as on the wire."""
        index = self._index
        if index is None:
            index = self._values_index()
        return list(index.get(canonical_name(name), _NONE))

    def values(self, name: str) -> list[str]:
        """Every element of a header: list headers are split on commas."""
        fields = self.get_all(name)
        if canonical_name(name) not in LIST_HEADERS:
            return fields
        out: list[str] = []
        for field in fields:
            out.extend(h.split_commas(field))
        return out

    def count(self, name: str) -> int:
        """How many header fields named ``name`` the message has."""
        return len(self._values_index().get(canonical_name(name), _NONE))

    def __eq__(self, other: object) -> bool:
        """Messages are equal when start line, header fields and body are."""
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Message)
        return (
            self.start_line() == other.start_line()
            and self.headers == other.headers
            and self.body == other.body
        )

    __hash__ = None  # type: ignore[assignment]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and canonical_name(name) in self._values_index()

    # -- typed access, parsed once
    def typed(self, name: str, parser: Callable[[str, str], T]) -> T | None:
        """Parse the first value of ``name`` with ``parser`` (cached)."""
        cache = self._cache
        found = cache.get(name, _MISS)  # internal callers pass canonical names
        if found is not _MISS:
            return found  # type: ignore[no-any-return]
        key = _CANONICAL.get(name) or canonical_name(name)
        if key is not name:
            found = cache.get(key, _MISS)
            if found is not _MISS:
                return found  # type: ignore[no-any-return]
        index = self._index
        if index is None:
            index = self._values_index()
        fields = index.get(key)
        result = parser(fields[0], display_name(key)) if fields else None
        cache[key] = result
        return result

    def derived(self, name: str, compute: Callable[[Self], T]) -> T:
        """``compute(self)``, cached with the message under ``name`` (a value
        other layers derive from it, e.g. a transaction key).  ``name`` must
        not be a header name; start it with "via" if it depends on the top
        Via, which :meth:`with_top_via` replaces."""
        cache = self._cache
        found = cache.get(name, _MISS)
        if found is _MISS:
            found = cache[name] = compute(self)
        return found  # type: ignore[no-any-return]

    def _typed_all(self, name: str, parser: Callable[[str, str], tuple[T, ...]]) -> tuple[T, ...]:
        """Every value of header ``name`` (canonical: internal callers only)
        parsed with ``parser``, cached under ``name*``."""
        cache = self._cache
        key = name + "*"
        found = cache.get(key, _MISS)
        if found is not _MISS:
            return found  # type: ignore[no-any-return]
        display = display_name(name)
        fields = self._values_index().get(name, _NONE)
        if len(fields) == 1:
            result = parser(fields[0], display)
        else:
            result = ()
            for raw in fields:
                result += parser(raw, display)
        cache[key] = result
        return result

    def _required(self, name: str, parser: Callable[[str, str], T]) -> T:
        """Header ``name`` (canonical: internal callers only) parsed with
        ``parser`` and cached; HeaderError if it is missing.  From, To,
        Call-ID and CSeq are read by every layer for every message: straight
        to the cache and the index, without :meth:`typed`'s name handling."""
        cache = self._cache
        found = cache.get(name)
        if found is None:
            fields = self._values_index().get(name)
            if not fields:
                raise HeaderError(display_name(name), "header is missing")
            found = cache[name] = parser(fields[0], display_name(name))
        return found

    @property
    def via(self) -> tuple[h.Via, ...]:
        """All Via values, topmost first."""
        cache = self._cache
        found = cache.get("via*")
        if found is None:
            fields = self._values_index().get("via", _NONE)
            if len(fields) == 1 and "," not in fields[0]:
                # One value: parse it once.  (Declared variable-length: a
                # compiled fixed-length tuple is unboxed, and would be boxed
                # anew for the cache and for the caller.)
                one: tuple[h.Via, ...] = (self.top_via,)
                found = cache["via*"] = one
            else:
                found = self._typed_all("via", _PARSE_VIA_LIST)
        return found

    @property
    def top_via(self) -> h.Via:
        """The topmost Via (parses only the first value: the hot path)."""
        cache = self._cache
        if "via^" not in cache:
            raw = self.get("via")
            if raw is None:
                raise HeaderError("Via", "header is missing")
            first = h.split_commas(raw)[0] if "," in raw else raw
            cache["via^"] = h.parse_via(first)
        return cache["via^"]  # type: ignore[no-any-return]

    @property
    def from_(self) -> h.NameAddr:
        """The From header."""
        return self._required("from", _PARSE_NAME_ADDR)

    @property
    def to(self) -> h.NameAddr:
        """The To header."""
        return self._required("to", _PARSE_NAME_ADDR)

    @property
    def call_id(self) -> str:
        """The Call-ID."""
        return self._required("call-id", _PARSE_CALL_ID)

    @property
    def cseq(self) -> h.CSeq:
        """The CSeq."""
        return self._required("cseq", _PARSE_CSEQ)

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards, if present."""
        return self.typed("max-forwards", _PARSE_MAX_FORWARDS)

    @property
    def contact(self) -> tuple[h.NameAddr, ...]:
        """Contact values (empty for none; ``*`` is read with :meth:`get`)."""
        if (self.get("contact") or "").strip() == "*":
            return ()
        return self._typed_all("contact", _PARSE_NAME_ADDR_LIST)

    @property
    def route(self) -> tuple[h.NameAddr, ...]:
        """Route values, in order."""
        return self._typed_all("route", _route_list)

    @property
    def record_route(self) -> tuple[h.NameAddr, ...]:
        """Record-Route values, in order."""
        return self._typed_all("record-route", _route_list)

    @property
    def content_type(self) -> h.MediaType | None:
        """Content-Type, if present."""
        return self.typed("content-type", _PARSE_MEDIA_TYPE)

    @property
    def content_length(self) -> int | None:
        """Content-Length, if present."""
        return self.typed("content-length", _PARSE_CONTENT_LENGTH)

    @property
    def event(self) -> h.Event | None:
        """Event, if present."""
        return self.typed("event", _PARSE_EVENT)

    @property
    def subscription_state(self) -> h.SubscriptionState | None:
        """Subscription-State, if present."""
        return self.typed("subscription-state", _PARSE_SUBSCRIPTION_STATE)

    @property
    def expires(self) -> int | None:
        """Expires, if present."""
        return self.typed("expires", _PARSE_DELTA_SECONDS)

    @property
    def retry_after(self) -> h.RetryAfter | None:
        """Retry-After, if present."""
        return self.typed("retry-after", _PARSE_RETRY_AFTER)

    @property
    def date(self) -> Any:
        """Date as an aware ``datetime``, if present."""
        return self.typed("date", _PARSE_DATE)

    @property
    def allow(self) -> tuple[str, ...]:
        """Allow: the methods, in order."""
        return self._typed_all("allow", _PARSE_TOKEN_LIST)

    @property
    def supported(self) -> tuple[str, ...]:
        """Supported option tags."""
        return self._typed_all("supported", _PARSE_TOKEN_LIST)

    @property
    def require(self) -> tuple[str, ...]:
        """Require option tags."""
        return self._typed_all("require", _PARSE_TOKEN_LIST)

    @property
    def proxy_require(self) -> tuple[str, ...]:
        """Proxy-Require option tags."""
        return self._typed_all("proxy-require", _PARSE_TOKEN_LIST)

    @property
    def unsupported(self) -> tuple[str, ...]:
        """Unsupported option tags."""
        return self._typed_all("unsupported", _PARSE_TOKEN_LIST)

    @property
    def www_authenticate(self) -> tuple[Challenge, ...]:
        """Every challenge of every WWW-Authenticate field, in order."""
        return self._typed_all("www-authenticate", parse_challenges)

    @property
    def proxy_authenticate(self) -> tuple[Challenge, ...]:
        """Every challenge of every Proxy-Authenticate field, in order."""
        return self._typed_all("proxy-authenticate", parse_challenges)

    @property
    def authorization(self) -> Credentials | None:
        """The (first) Authorization credentials, if any."""
        return self.typed("authorization", parse_credentials)

    @property
    def proxy_authorization(self) -> Credentials | None:
        """The (first) Proxy-Authorization credentials, if any."""
        return self.typed("proxy-authorization", parse_credentials)

    @property
    def accept(self) -> tuple[h.MediaType, ...] | None:
        """Accept media ranges, ``None`` when the header is absent."""
        if "accept" not in self:
            return None
        return self._typed_all("accept", _accept_tuple)

    # -- copies
    def _copy(self, headers: Iterable[Header], body: bytes | None = None) -> Self:
        raise NotImplementedError

    def with_header(self, name: str, value: str) -> Self:
        """A copy with one more header field at the end."""
        return self._copy((*self.headers, (name, value)))

    def with_header_first(self, name: str, value: str) -> Self:
        """A copy with a header field before all others (e.g. a new top Via)."""
        return self._copy(((name, value), *self.headers))

    def without_header(self, name: str) -> Self:
        """A copy without any field of header ``name``."""
        key = canonical_name(name)
        return self._copy(hf for hf in self.headers if canonical_name(hf[0]) != key)

    def with_header_replaced(self, name: str, value: str) -> Self:
        """A copy where header ``name`` has exactly one field, ``value``, at the
        position of the first old one (or at the end)."""
        key = canonical_name(name)
        out: list[Header] = []
        done = False
        for hf in self.headers:
            if canonical_name(hf[0]) == key:
                if not done:
                    out.append((name, value))
                    done = True
            else:
                out.append(hf)
        if not done:
            out.append((name, value))
        return self._copy(out)

    def with_top_via(self, via: h.Via) -> Self:
        """A copy whose topmost via-parm is ``via`` (a transport stamping
        received/rport, RFC 3261 18.2.1).  Every request received over UDP
        goes through here, so the copy inherits what is already known: the
        header index and the parsed values of every other header."""
        index = self._values_index()
        fields = index.get("via")
        text = str(via)
        if not fields:
            return self.with_header_first("Via", text)
        first = fields[0]
        if "," in first:
            parts = h.split_commas(first)
            parts[0] = text
            text = ", ".join(parts)
        copy = self.with_first_header_replaced("Via", text)
        index = dict(index)
        index["via"] = [text, *fields[1:]]
        copy._index = index
        cache = {k: v for k, v in self._cache.items() if not k.startswith("via")}
        cache["via^"] = via
        copy._cache = cache
        return copy

    def prime_top_via(self, via: h.Via) -> Self:
        """Record ``via`` as the parsed form of this message's top Via, which
        its builder wrote from that very value, so that transaction matching
        does not parse our own text back.  Ignored unless the text agrees."""
        for name, value in self._headers:  # no index: a builder's Via comes first
            if canonical_name(name) == "via":
                if value.partition(",")[0] == str(via):
                    self._cache["via^"] = via
                break
        return self

    def adopt_parsed(self, source: Message, keys: Iterable[str]) -> Self:
        """Take ``source``'s parsed forms of the headers ``keys`` (cache keys:
        canonical names, ``via*`` for all Via values, ``via^`` for the top
        one), for a message built by copying those fields' text verbatim
        (a response echoing its request).  Returns ``self``."""
        cache, theirs = self._cache, source._cache
        for key in keys:
            if key in theirs and key not in cache:
                cache[key] = theirs[key]
        return self

    def with_first_header_replaced(self, name: str, value: str) -> Self:
        """A copy where only the first field of header ``name`` becomes
        ``value`` (e.g. a stamped top Via), the others kept; appended if absent."""
        key = canonical_name(name)
        out = list(self._headers)
        for i, (field_name, _) in enumerate(out):
            if canonical_name(field_name) == key:
                out[i] = (field_name, value)
                return self._copy(out)
        return self.with_header(name, value)

    def with_body(self, body: bytes, content_type: str | None = None) -> Self:
        """A copy with ``body``, Content-Length updated, Content-Type set if given."""
        msg = self._copy(self.headers, body)
        if content_type is not None:
            msg = msg.with_header_replaced("Content-Type", content_type)
        return msg.with_header_replaced("Content-Length", str(len(body)))


def _route_list(value: str, header: str) -> tuple[h.NameAddr, ...]:
    return h.parse_name_addr_list(value, header, allow_addr_spec=False)


def _accept_tuple(value: str, header: str) -> tuple[h.MediaType, ...]:
    return h.parse_accept(value, header)


class Request(Message):
    """A SIP request: method, Request-URI, headers, body."""

    __slots__ = ("method", "uri")

    def __init__(
        self,
        method: str,
        uri: Uri,
        headers: Iterable[Header] = (),
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        super().__init__(headers, body, version)
        self.method = method
        self.uri = uri

    def start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"

    def _copy(self, headers: Iterable[Header], body: bytes | None = None) -> Self:
        return type(self)(
            self.method, self.uri, headers, self.body if body is None else body, self.version
        )

    def with_uri(self, uri: Uri) -> Request:
        """A copy with another Request-URI."""
        return Request(self.method, uri, self.headers, self.body, self.version)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"


class Response(Message):
    """A SIP response: status code, reason phrase, headers, body."""

    __slots__ = ("reason", "status_code")

    def __init__(
        self,
        status_code: int,
        reason: str = "",
        headers: Iterable[Header] = (),
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        super().__init__(headers, body, version)
        self.status_code = status_code
        self.reason = reason

    def start_line(self) -> str:
        return f"{self.version} {self.status_code} {self.reason}"

    def _copy(self, headers: Iterable[Header], body: bytes | None = None) -> Self:
        return type(self)(
            self.status_code,
            self.reason,
            headers,
            self.body if body is None else body,
            self.version,
        )

    @property
    def is_provisional(self) -> bool:
        """1xx."""
        return self.status_code < 200

    @property
    def is_success(self) -> bool:
        """2xx."""
        return 200 <= self.status_code < 300

    def __repr__(self) -> str:
        return f"<Response {self.status_code} {self.reason}>"


def index_fields(headers: Iterable[Header]) -> dict[str, list[str]]:
    """Canonical name -> field values, in order."""
    index: dict[str, list[str]] = {}
    known = _CANONICAL
    for hname, value in headers:
        key = known.get(hname) or canonical_name(hname)
        found = index.get(key)
        if found is None:
            index[key] = [value]
        else:
            found.append(value)
    return index


# Re-exported at the end: wire.py builds Request/Response, defined above.
from phonecast.sip.wire import (  # noqa: E402
    MAX_MESSAGE_SIZE,
    StreamFramer,
    parse_head,
    parse_message,
)

__all__ = [
    "COMPACT_NAMES",
    "LIST_HEADERS",
    "MAX_MESSAGE_SIZE",
    "Header",
    "Message",
    "Request",
    "Response",
    "StreamFramer",
    "canonical_name",
    "parse_head",
    "parse_message",
]
