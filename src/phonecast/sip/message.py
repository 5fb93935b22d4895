"""SIP messages: parsing from bytes, serialising to bytes, lazy typed access.

Theory of operation
-------------------
``parse_message`` does the least work that lets a message be framed and
trusted: it splits the start line, unfolds header lines, checks each header
name is a token and frames the body by Content-Length.  It does not parse
header *values*; typed accessors (``msg.via``, ``msg.cseq``...) parse on first
use and cache the result.  A 200 OK that a client only matches by branch and
CSeq therefore never builds From/To/Contact objects.

A message is a value: its header list is a tuple of ``(wire name, value)``
pairs in received order (names kept as sent, so re-serialising is faithful),
its body is bytes.  The ``with_*`` methods return new messages.  Header names
are matched case-insensitively and compact forms (RFC 3261 7.3.3) are
expanded for lookup.

Datagram vs stream framing (RFC 3261 18.3): a datagram's body is
Content-Length octets, the rest of the datagram is ignored (RFC 4475 3.1.1.8);
without Content-Length the body runs to the end of the datagram.  On a stream
Content-Length is mandatory; :class:`StreamFramer` cuts whole messages out of
the byte stream and raises :class:`ParseError` when framing is impossible (the
connection must then be closed, as there is no way to resynchronise).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Self, TypeVar

from phonecast.sip import _abnf
from phonecast.sip import headers as h
from phonecast.sip.errors import HeaderError, ParseError
from phonecast.sip.uri import Uri, parse_uri

if TYPE_CHECKING:
    from phonecast.sip.digest import Challenge, Credentials

T = TypeVar("T")

#: RFC 3261 7.3.3 and later RFCs' compact header names.
COMPACT_NAMES = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}

#: Headers whose values are comma-separated lists (RFC 3261 7.3.1).
LIST_HEADERS = frozenset(
    {
        "via",
        "contact",
        "route",
        "record-route",
        "allow",
        "supported",
        "require",
        "proxy-require",
        "unsupported",
        "accept",
        "accept-encoding",
        "accept-language",
        "content-encoding",
        "alert-info",
        "call-info",
        "error-info",
        "in-reply-to",
        "allow-events",
        "path",
        "service-route",
    }
)

#: Default upper bound on a message, in octets (UDP datagrams cannot exceed it).
MAX_MESSAGE_SIZE = 65535


def canonical_name(name: str) -> str:
    """Lower-case long form of a header name, for lookups."""
    lname = name.lower()
    return COMPACT_NAMES.get(lname, lname)


Header = tuple[str, str]
_NONE: list[int] = []
_LONG_TO_COMPACT = {long: short for short, long in COMPACT_NAMES.items()}


class Message:
    """Common part of :class:`Request` and :class:`Response`.

    Treat instances as immutable: every ``with_*`` method returns a copy.
    """

    __slots__ = ("_cache", "_headers", "_index", "_low", "_raw", "_wire", "body", "version")

    body: bytes
    version: str

    def __init__(
        self, headers: Iterable[Header] = (), body: bytes = b"", version: str = "SIP/2.0"
    ) -> None:
        self._headers: tuple[Header, ...] | None = tuple(headers)
        self.body = body
        self.version = version
        self._index: dict[str, list[int]] | None = None
        self._cache: dict[str, Any] = {}
        #: Parsed messages: the unfolded header lines (after the start line),
        #: their lower-cased copy for lookups, and the wire bytes.
        self._raw: str | None = None
        self._low: str | None = None
        self._wire: bytes | None = None

    @property
    def headers(self) -> tuple[Header, ...]:
        """Every header field as ``(name as sent, value)``, in order."""
        headers = self._headers
        if headers is None:
            assert self._raw is not None
            headers = self._headers = tuple(_split_lines(self._raw))
        return headers

    # -- start line and serialisation, provided by subclasses
    def start_line(self) -> str:
        """The request or status line, without CRLF."""
        raise NotImplementedError

    def __bytes__(self) -> bytes:
        if self._wire is not None:
            return self._wire
        parts = [self.start_line(), "\r\n"]
        for name, value in self.headers:
            parts += [name, ": ", value, "\r\n"]
        parts.append("\r\n")
        return "".join(parts).encode("utf-8", "surrogateescape") + self.body

    # -- raw header access
    def _positions(self, name: str) -> list[int]:
        index = self._index
        if index is None:
            index = {}
            compact = COMPACT_NAMES
            for pos, (hname, _) in enumerate(self.headers):
                key = hname.lower()
                if len(key) == 1:
                    key = compact.get(key, key)
                found = index.get(key)
                if found is None:
                    index[key] = [pos]
                else:
                    found.append(pos)
            self._index = index
        key = name.lower()
        if len(key) == 1:
            key = COMPACT_NAMES.get(key, key)
        return index.get(key, _NONE)

    def get(self, name: str) -> str | None:
        """The first field value of header ``name`` (any case, compact form ok)."""
        if self._index is None and self._raw is not None:
            return self._find_first(name)
        pos = self._positions(name)
        return self.headers[pos[0]][1] if pos else None

    def _find_first(self, name: str) -> str | None:
        """``get`` on a parsed message without building the header list."""
        found = self._find(name, first_only=True)
        return found[0] if found else None

    def _find(self, name: str, *, first_only: bool = False) -> list[str]:
        """Field values of ``name`` found by C-level searches of the
        lower-cased header text for each spelling, in message order."""
        low = self._low
        if low is None:
            low = self._low = "\n" + (self._raw or "").lower()
        raw = self._raw or ""
        key = canonical_name(name)
        hits: list[tuple[int, str]] = []
        for spelling in (key, _LONG_TO_COMPACT.get(key)):
            if spelling is None:
                continue
            needle = "\n" + spelling
            pos = low.find(needle)
            while pos >= 0:
                after = pos + len(needle)
                ch = low[after : after + 1]
                if ch == ":" or ch == " " or ch == "\t":
                    colon = low.find(":", after)
                    if colon >= 0 and not low[after:colon].strip(" \t"):
                        end = low.find("\n", colon)
                        hits.append((pos, raw[colon : (end - 2 if end >= 0 else None)]))
                        if first_only:
                            break
                pos = low.find(needle, after)
        if len(hits) > 1:
            hits.sort()
            if first_only:
                del hits[1:]
        return [v.strip(" \t") for _, v in hits]

    def get_all(self, name: str) -> list[str]:
        """Every field value of header ``name``, in order, as on the wire."""
        if self._index is None and self._raw is not None:
            return self._find(name)
        return [self.headers[p][1] for p in self._positions(name)]

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
        return len(self._positions(name))

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
        return isinstance(name, str) and bool(self._positions(name))

    # -- typed access, parsed once
    def typed(self, name: str, parser: Callable[[str, str], T]) -> T | None:
        """Parse the first value of ``name`` with ``parser`` (cached)."""
        key = canonical_name(name)
        cache = self._cache
        if key in cache:
            return cache[key]  # type: ignore[no-any-return]
        raw = self.get(name)
        result = None if raw is None else parser(raw, _display_name(key))
        cache[key] = result
        return result

    def _typed_all(self, name: str, parser: Callable[[str, str], tuple[T, ...]]) -> tuple[T, ...]:
        key = canonical_name(name) + "*"
        cache = self._cache
        if key in cache:
            return cache[key]  # type: ignore[no-any-return]
        display = _display_name(canonical_name(name))
        result: tuple[T, ...] = ()
        for raw in self.get_all(name):
            result += parser(raw, display)
        cache[key] = result
        return result

    def _required(self, name: str, parser: Callable[[str, str], T]) -> T:
        value = self.typed(name, parser)
        if value is None:
            raise HeaderError(_display_name(canonical_name(name)), "header is missing")
        return value

    @property
    def via(self) -> tuple[h.Via, ...]:
        """All Via values, topmost first."""
        return self._typed_all("via", h.parse_via_list)

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
        return self._required("from", h.parse_name_addr)

    @property
    def to(self) -> h.NameAddr:
        """The To header."""
        return self._required("to", h.parse_name_addr)

    @property
    def call_id(self) -> str:
        """The Call-ID."""
        return self._required("call-id", h.parse_call_id)

    @property
    def cseq(self) -> h.CSeq:
        """The CSeq."""
        return self._required("cseq", h.parse_cseq)

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards, if present."""
        return self.typed("max-forwards", h.parse_max_forwards)

    @property
    def contact(self) -> tuple[h.NameAddr, ...]:
        """Contact values (empty for none; ``*`` is read with :meth:`get`)."""
        if (self.get("contact") or "").strip() == "*":
            return ()
        return self._typed_all("contact", h.parse_name_addr_list)

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
        return self.typed("content-type", h.parse_media_type)

    @property
    def content_length(self) -> int | None:
        """Content-Length, if present."""
        return self.typed("content-length", h.parse_content_length)

    @property
    def event(self) -> h.Event | None:
        """Event, if present."""
        return self.typed("event", h.parse_event)

    @property
    def subscription_state(self) -> h.SubscriptionState | None:
        """Subscription-State, if present."""
        return self.typed("subscription-state", h.parse_subscription_state)

    @property
    def expires(self) -> int | None:
        """Expires, if present."""
        return self.typed("expires", h.parse_delta_seconds)

    @property
    def retry_after(self) -> h.RetryAfter | None:
        """Retry-After, if present."""
        return self.typed("retry-after", h.parse_retry_after)

    @property
    def date(self) -> Any:
        """Date as an aware ``datetime``, if present."""
        return self.typed("date", h.parse_date)

    @property
    def allow(self) -> tuple[str, ...]:
        """Allow: the methods, in order."""
        return self._typed_all("allow", h.parse_token_list)

    @property
    def supported(self) -> tuple[str, ...]:
        """Supported option tags."""
        return self._typed_all("supported", h.parse_token_list)

    @property
    def require(self) -> tuple[str, ...]:
        """Require option tags."""
        return self._typed_all("require", h.parse_token_list)

    @property
    def proxy_require(self) -> tuple[str, ...]:
        """Proxy-Require option tags."""
        return self._typed_all("proxy-require", h.parse_token_list)

    @property
    def unsupported(self) -> tuple[str, ...]:
        """Unsupported option tags."""
        return self._typed_all("unsupported", h.parse_token_list)

    @property
    def www_authenticate(self) -> tuple[Challenge, ...]:
        """Every challenge of every WWW-Authenticate field, in order."""
        return self._typed_all("www-authenticate", _challenges)

    @property
    def proxy_authenticate(self) -> tuple[Challenge, ...]:
        """Every challenge of every Proxy-Authenticate field, in order."""
        return self._typed_all("proxy-authenticate", _challenges)

    @property
    def authorization(self) -> Credentials | None:
        """The (first) Authorization credentials, if any."""
        return self.typed("authorization", _credentials)

    @property
    def proxy_authorization(self) -> Credentials | None:
        """The (first) Proxy-Authorization credentials, if any."""
        return self.typed("proxy-authorization", _credentials)

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

    def with_first_header_replaced(self, name: str, value: str) -> Self:
        """A copy where only the first field of header ``name`` becomes
        ``value`` (e.g. a stamped top Via), the others kept; appended if absent."""
        positions = self._positions(name)
        if not positions:
            return self.with_header(name, value)
        out = list(self.headers)
        out[positions[0]] = (out[positions[0]][0], value)
        return self._copy(out)

    def with_body(self, body: bytes, content_type: str | None = None) -> Self:
        """A copy with ``body``, Content-Length updated, Content-Type set if given."""
        msg = self._copy(self.headers, body)
        if content_type is not None:
            msg = msg.with_header_replaced("Content-Type", content_type)
        return msg.with_header_replaced("Content-Length", str(len(body)))


def _display_name(key: str) -> str:
    special = {"call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate"}
    return special.get(key) or "-".join(p.capitalize() for p in key.split("-"))


def _challenges(value: str, header: str) -> tuple[Challenge, ...]:
    from phonecast.sip.digest import parse_challenges

    return parse_challenges(value, header)


def _credentials(value: str, header: str) -> Credentials:
    from phonecast.sip.digest import parse_credentials

    return parse_credentials(value, header)


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


# ------------------------------------------------------------------- parsing


def _split_head(data: bytes) -> tuple[bytes, int, str]:
    """Locate the end of the header section: (head bytes, body start, EOL)."""
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        return data[:end], end + 4, "\r\n"
    if b"\r" not in data:
        # Bare-LF messages are not RFC 3261 but are seen in the wild.
        end = data.find(b"\n\n")
        if end >= 0:
            return data[:end], end + 2, "\n"
        return data.rstrip(b"\n"), len(data), "\n"
    # No blank line: a datagram whose header section runs to its end.
    return data.rstrip(b"\r\n"), len(data), "\r\n"


# One header line after unfolding: token, optional white space, ':', value;
# or (second alternative) any other line, so that findall consumes every line
# in order and a bad one shows up as an empty name instead of being skipped.
_TOKEN_CLASS = r"[A-Za-z0-9\-.!%*_+`'~]"
_LINE_RE = re.compile(rf"({_TOKEN_CLASS}+)[ \t]*:[ \t]*([^\r\n]*)\r\n|[^\r\n]*\r\n")
_FOLD_RE = re.compile(r"[ \t]*\r\n[ \t]+")


def _lengths(rest: str, low: str) -> list[str]:
    """Values of Content-Length / l fields, found with C-level searches in
    ``low`` ("\\n" + the lower-cased header text)."""
    out: list[str] = []
    for needle in ("\ncontent-length", "\nl"):
        pos = low.find(needle)
        while pos >= 0:
            after = pos + len(needle)
            line_end = low.find("\r", after)
            line = rest[after - 1 : line_end - 1 if line_end >= 0 else None]
            stripped = line.lstrip(" \t")
            if stripped.startswith(":"):
                out.append(stripped[1:].strip(" \t"))
            pos = low.find(needle, after)
    return out


_BLOCK_RE = re.compile(rf"(?:{_TOKEN_CLASS}+[ \t]*:[^\r\n]*(?:\r\n|\Z))*")


def _fast_split(head: str) -> tuple[str, str, str, list[str]] | None:
    """Start line, unfolded header text and Content-Length values, checked in
    one C-level pass; ``None`` sends the caller to :func:`parse_head`, which
    finds and names any fault line by line."""
    start, _, rest = head.partition("\r\n")
    if not rest:
        return start, "", "\n", []
    if "\r\n " in rest or "\r\n\t" in rest:
        if rest[0] in " \t":
            return None
        rest = _FOLD_RE.sub(" ", rest)
    if _BLOCK_RE.fullmatch(rest) is None:
        return None
    low = "\n" + rest.lower()
    return start, rest, low, _lengths(rest, low)


def _split_lines(rest: str) -> list[Header]:
    """Header fields of checked header text."""
    if not rest:
        return []
    headers: list[Header] = _LINE_RE.findall(rest + "\r\n")
    if " \r\n" in rest or "\t\r\n" in rest or rest[-1] in " \t":
        headers = [(n, v.rstrip(" \t")) for n, v in headers]
    return headers


def parse_head(head: str, eol: str = "\r\n") -> tuple[str, list[Header], list[str]]:
    """Split a decoded header section into start line, headers and the raw
    Content-Length values (for framing)."""
    if eol == "\r\n":
        fast = _fast_split(head)
        if fast is not None:
            return fast[0], _split_lines(fast[1]), fast[3]
    lines = head.split(eol)
    start = lines[0]
    headers: list[Header] = []
    lengths: list[str] = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line:
            raise ParseError(
                "empty line inside the header section", kind="header-line", line=lineno
            )
        first = line[0]
        if first == " " or first == "\t":
            if not headers:
                raise ParseError(
                    "continuation line before any header", kind="header-line", line=lineno
                )
            name, value = headers[-1]
            cont = line.strip(" \t")
            headers[-1] = (name, f"{value} {cont}" if value else cont)
            if lengths and (name == "l" or name.lower() == "content-length"):
                lengths[-1] = headers[-1][1]
            continue
        colon = line.find(":")
        if colon <= 0:
            raise ParseError(
                f"header line without a name and ':': {line[:40]!r}",
                kind="header-line",
                line=lineno,
            )
        name = line[:colon].rstrip(" \t")
        if _abnf.TOKEN_RE.fullmatch(name) is None:
            raise ParseError(
                f"header name {name[:40]!r} is not a token", kind="header-line", line=lineno
            )
        value = line[colon + 1 :].strip(" \t")
        if (first == "l" or first == "L" or first == "c" or first == "C") and (
            name == "l" or name == "L" or name.lower() == "content-length"
        ):
            lengths.append(value)
        headers.append((name, value))
    return start, headers, lengths


def _frame_length(lengths: list[str], available: int, *, stream: bool) -> int | None:
    """Body length from the Content-Length values; None = to end of datagram."""
    if not lengths:
        if stream:
            raise ParseError("a message on a stream needs Content-Length", kind="content-length")
        return None
    distinct = {v.strip() for v in lengths}
    if len(distinct) > 1:
        if stream:
            raise ParseError("conflicting Content-Length values", kind="content-length")
        return None  # validation answers 400; the datagram still parses
    text = lengths[0].strip()
    if not text.isdigit() or not text.isascii():
        raise ParseError(f"invalid Content-Length {text[:20]!r}", kind="content-length")
    length = int(text)
    if length > available:
        raise ParseError(
            f"Content-Length {length} exceeds the {available} octets that follow",
            kind="content-length",
        )
    return length


def _build(start: str, headers: list[Header], body: bytes) -> Request | Response:
    if start[:4].upper() == "SIP/":
        m = _abnf.STATUS_LINE_RE.fullmatch(start)
        if m is None:
            m2 = _abnf.STATUS_LINE_RE.fullmatch(start + " ")
            if m2 is None:
                raise ParseError(f"invalid status line {start[:60]!r}", kind="start-line", line=1)
            m = m2
        code = int(m.group(2))
        if code < 100:
            raise ParseError(f"status code {code} out of range", kind="start-line", line=1)
        return Response(code, m.group(3), headers, body, m.group(1))
    m = _abnf.REQUEST_LINE_RE.fullmatch(start)
    if m is None:
        raise ParseError(f"invalid request line {start[:60]!r}", kind="start-line", line=1)
    method, uri_text, version = m.groups()
    try:
        uri = parse_uri(uri_text)
    except ParseError as exc:
        raise ParseError(f"invalid Request-URI: {exc.message}", kind="uri", line=1) from None
    return Request(method, uri, headers, body, version)


def parse_message(data: bytes, *, max_size: int = MAX_MESSAGE_SIZE) -> Request | Response:
    """Parse one message from a datagram (or from bytes framed elsewhere).

    Octets after the body declared by Content-Length are ignored.  Raises
    :class:`ParseError` (with ``kind`` and ``line``) for anything that is not a
    SIP message; never any other exception.
    """
    if len(data) > max_size:
        raise ParseError(f"message of {len(data)} octets exceeds {max_size}", kind="framing")
    start_at = 0
    while data.startswith(b"\r\n", start_at):
        start_at += 2
    if start_at:
        data = data[start_at:]
    if not data:
        raise ParseError("empty message", kind="framing")
    head_bytes, body_start, eol = _split_head(data)
    head = head_bytes.decode("utf-8", "surrogateescape")
    fast = _fast_split(head) if eol == "\r\n" else None
    if fast is None:
        start, headers, lengths = parse_head(head, eol)
        raw = None
    else:
        start, raw, low, lengths = fast
        headers = []
    available = len(data) - body_start
    length = _frame_length(lengths, available, stream=False)
    end = len(data) if length is None else body_start + length
    body = data[body_start:end]
    msg = _build(start, headers, body)
    if raw is not None:
        msg._headers = None
        msg._raw = raw
        msg._low = low
        if data[body_start - 4 : body_start] == b"\r\n\r\n":
            msg._wire = data[:end]  # an unmodified parsed message re-sends its own bytes
    return msg


class StreamFramer:
    """Cuts whole SIP messages out of a TCP/TLS byte stream.

    ``feed()`` bytes as they arrive; iterate ``messages()`` to take every
    complete message.  CRLF keep-alives between messages (RFC 5626 3.5.1) are
    skipped.  A framing fault raises :class:`ParseError`; the caller must then
    close the connection.
    """

    def __init__(self, *, max_size: int = MAX_MESSAGE_SIZE) -> None:
        self._buf = bytearray()
        self._max = max_size

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._buf += data

    @property
    def buffered(self) -> int:
        """Octets received but not yet returned as a message."""
        return len(self._buf)

    def next_raw(self) -> bytes | None:
        """The next complete message as bytes, or ``None`` if incomplete."""
        buf = self._buf
        skip = 0
        while buf.startswith(b"\r\n", skip):
            skip += 2
        if skip:
            del buf[:skip]
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > self._max:
                raise ParseError("header section too long", kind="framing")
            return None
        head = bytes(buf[:end]).decode("utf-8", "surrogateescape")
        _, _, lengths = parse_head(head)
        length = _frame_length(lengths, self._max, stream=True)
        assert length is not None
        total = end + 4 + length
        if total > self._max:
            raise ParseError(f"message of {total} octets exceeds {self._max}", kind="framing")
        if len(buf) < total:
            return None
        raw = bytes(buf[:total])
        del buf[:total]
        return raw

    def messages(self) -> Iterator[Request | Response]:
        """Parse and yield every complete buffered message."""
        while (raw := self.next_raw()) is not None:
            yield parse_message(raw, max_size=self._max)
