"""SIP on the wire: parsing bytes into messages, framing datagrams and streams.

Datagram vs stream framing (RFC 3261 18.3): a datagram's body is
Content-Length octets, the rest of the datagram is ignored (RFC 4475 3.1.1.8);
without Content-Length the body runs to the end of the datagram.  On a stream
Content-Length is mandatory; :class:`StreamFramer` cuts whole messages out of
the byte stream and raises :class:`ParseError` when framing is impossible (the
connection must then be closed, as there is no way to resynchronise).

The usual header block is checked, split and indexed in one pass of string
operations (:func:`_fast_split`); anything it is not sure of goes to
:func:`parse_head`, which reads line by line and names the faulty line.
Header lines, names and start lines that recur between two peers are read
once and remembered in bounded tables (see :mod:`phonecast.sip._memo`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Final

from phonecast.sip import _abnf
from phonecast.sip._memo import remember
from phonecast.sip.errors import ParseError
from phonecast.sip.message import Header, Request, Response, canonical_name
from phonecast.sip.uri import Uri, parse_uri

#: Default upper bound on a message, in octets (UDP datagrams cannot exceed it).
MAX_MESSAGE_SIZE: Final = 65535


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


_NO_LENGTHS: Final[list[str]] = []
_FOLD_RE: Final = re.compile(r"(?:[ \t]*\r\n[ \t]+)+")  # a run of folds is one SP


#: Header names as spelled, already checked to be tokens -> canonical name.
#: Peers spell the same few dozen names every time; bounded (names come off
#: the wire) by starting afresh when full.
_TOKEN_NAMES: Final[dict[str, str]] = {}

#: Whole header lines that recur between two peers (every NOTIFY a pusher
#: sends one phone has the same To, Contact, Event, Content-Type...) ->
#: (canonical name, field, value): one dict probe instead of splitting and
#: checking the line again.  Only the headers in :data:`_RECURRING` are kept, and only
#: short lines; bounded by starting afresh when full, so unique values cost
#: at most the bound, never unbounded memory.
_LINES: Final[dict[str, tuple[str, Any, str]]] = {}  # field: Any, see _fast_split
_RECURRING: Final = frozenset(
    {
        "max-forwards",
        "to",
        "contact",
        "event",
        "user-agent",
        "server",
        "content-type",
        "content-length",
        "cseq",
        "allow",
        "allow-events",
        "supported",
        "accept",
        "expires",
        "subscription-state",
    }
)
_TABLE_SIZE: Final = 4096
_MAX_NAME: Final = 64
_MAX_LINE: Final = 128


def _fast_split(head: str) -> tuple[str, list[Header], dict[str, list[str]]] | None:
    """Start line, header fields and their index (canonical name -> values)
    of the usual header section, in one pass of string operations; ``None``
    sends the caller to :func:`parse_head`, which finds and names the fault
    line by line.  Taken only when every line is ``token ":" value`` with the
    name right before the colon; anything else (an empty line, white space
    before the colon, a name that is not a token) is left to the careful
    reader.  Folded lines are unfolded first; a lone CR or LF stays inside
    its value, as the line-by-line reader leaves it.
    """
    start, _, rest = head.partition("\r\n")
    if not rest:
        return start, [], {}
    headers: list[Header] = []
    index: dict[str, list[str]] = {}
    lines = _LINES
    names = _TOKEN_NAMES
    for line in rest.split("\r\n"):
        # ``field`` is typed Any so that compiled code keeps the tuple as the
        # one object it is (a typed 2-tuple would be unboxed and rebuilt).
        field: Any
        hit = lines.get(line) if len(line) <= _MAX_LINE else None
        if hit is not None:
            key, field, value = hit
        else:
            if not line:
                return None
            first = line[0]
            if first == " " or first == "\t":
                # A folded line: unfold the section and start again (rare).
                # Not across an empty line: white space after one does not
                # continue it, and the careful reader refuses that line.
                if rest[0] == " " or rest[0] == "\t" or "\r\n\r\n" in rest:
                    return None
                unfolded = _FOLD_RE.sub(" ", rest)
                if unfolded == rest:
                    return None
                return _fast_split(f"{start}\r\n{unfolded}")
            colon = line.find(":")
            if colon <= 0:
                return None
            name = line[:colon]
            known = names.get(name)
            if known is None:
                if not _abnf.is_token(name):
                    return None
                known = canonical_name(name)
                if len(name) <= _MAX_NAME:
                    remember(names, name, known, _TABLE_SIZE)
            key = known
            # "Name: value": skip the one space without copying the value twice.
            value = line[colon + 2 :] if line[colon + 1 : colon + 2] == " " else line[colon + 1 :]
            if value:
                if value[0] == " " or value[0] == "\t":
                    value = value.lstrip(" \t")
                if value and (value[-1] == " " or value[-1] == "\t"):
                    value = value.rstrip(" \t")
            field = (name, value)
            if (
                key in _RECURRING
                and len(line) <= _MAX_LINE
                and (key != "to" or ";tag=" not in value)  # a dialog's own
            ):
                remember(lines, line, (key, field, value), _TABLE_SIZE)
        headers.append(field)
        values = index.get(key)
        if values is None:
            index[key] = [value]
        else:
            values.append(value)
    return start, headers, index


def parse_head(head: str, eol: str = "\r\n") -> tuple[str, list[Header], list[str]]:
    """Split a decoded header section into start line, headers and the raw
    Content-Length values (for framing)."""
    if eol == "\r\n":
        fast = _fast_split(head)
        if fast is not None:
            return fast[0], fast[1], fast[2].get("content-length", [])
    return _parse_lines(head, eol)


def _parse_lines(head: str, eol: str) -> tuple[str, list[Header], list[str]]:
    """The line-by-line reading of :func:`parse_head`: slower, and the one
    that names the faulty line; the fast split must agree with it."""
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
            # A blank continuation adds nothing (no trailing space).
            headers[-1] = (name, f"{value} {cont}" if value and cont else value or cont)
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
    if len(lengths) > 1 and len({v.strip() for v in lengths}) > 1:
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


#: Start lines as received -> what they say.  A peer sends one phone the
#: same request line every time (and a phone answers with the same few
#: status lines), so each is matched once; bounded by starting afresh.
_REQUEST_LINES: Final[dict[str, tuple[str, Uri, str]]] = {}
_STATUS_LINES: Final[dict[str, tuple[int, str, str]]] = {}


def _request_line(start: str) -> tuple[str, Uri, str]:
    found = _REQUEST_LINES.get(start)
    if found is None:
        m = _abnf.REQUEST_LINE_RE.fullmatch(start)
        if m is None:
            raise ParseError(f"invalid request line {start[:60]!r}", kind="start-line", line=1)
        method, uri_text, version = m.groups()
        try:
            uri = parse_uri(uri_text)
        except ParseError as exc:
            raise ParseError(f"invalid Request-URI: {exc.message}", kind="uri", line=1) from None
        found = (method, uri, version)
        if len(start) <= _MAX_LINE:
            remember(_REQUEST_LINES, start, found)
    return found


def _status_line(start: str) -> tuple[int, str, str]:
    found = _STATUS_LINES.get(start)
    if found is None:
        m = _abnf.STATUS_LINE_RE.fullmatch(start)
        if m is None:
            m2 = _abnf.STATUS_LINE_RE.fullmatch(start + " ")
            if m2 is None:
                raise ParseError(f"invalid status line {start[:60]!r}", kind="start-line", line=1)
            m = m2
        code = int(m.group(2))
        if code < 100:
            raise ParseError(f"status code {code} out of range", kind="start-line", line=1)
        found = (code, m.group(3), m.group(1))
        if len(start) <= _MAX_LINE:
            remember(_STATUS_LINES, start, found)
    return found


def _build(start: str, headers: list[Header], body: bytes) -> Request | Response:
    if start[:4].upper() == "SIP/":
        code, reason, version = _status_line(start)
        return Response(code, reason, headers, body, version)
    method, uri, version = _request_line(start)
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
        index = None
    else:
        start, headers, index = fast
        lengths = index.get("content-length", _NO_LENGTHS)
    available = len(data) - body_start
    length = _frame_length(lengths, available, stream=False)
    end = len(data) if length is None else body_start + length
    body = data[body_start:end]
    msg = _build(start, headers, body)
    if index is not None:
        msg._index = index
        if data[body_start - 4 : body_start] == b"\r\n\r\n":
            msg._wire = data[:end]  # an unmodified parsed message re-sends its own bytes
    return msg


class StreamFramer:
    """Cuts whole SIP messages out of a TCP/TLS byte stream.

    ``feed()`` bytes as they arrive; iterate ``messages()`` to take every
    complete message.  CRLF keep-alives between messages (RFC 5626 3.5.1) are
    skipped, and each double-CRLF "ping" among them is counted, for the
    caller to answer with a single-CRLF "pong" (RFC 5626 4.4.1; see
    :meth:`take_pings`).  A framing fault raises :class:`ParseError`; the
    caller must then close the connection.
    """

    def __init__(self, *, max_size: int = MAX_MESSAGE_SIZE) -> None:
        self._buf = bytearray()
        self._max = max_size
        #: CRLFs skipped since the last message or ping: a ping may arrive
        #: split across reads, so the count outlives one call.
        self._crlfs = 0
        self._pings = 0

    def take_pings(self) -> int:
        """Pings seen since the last call (each is owed one CRLF pong).

        Pongs are never more than half the CRLFs received, so a peer cannot
        make the connection send more than it is sent."""
        pings, self._pings = self._pings, 0
        return pings

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
            crlfs = self._crlfs + skip // 2
            self._pings += crlfs // 2
            self._crlfs = crlfs % 2
        if buf and buf != b"\r":  # a lone "\r" may be half of the next CRLF
            self._crlfs = 0  # a message begins: a lone CRLF before it was padding
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
