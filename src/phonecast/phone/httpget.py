"""One HTTP/1.1 GET as a phone makes it: the request written, the response read.

Why llhttp (through httptools) and not an HTTP client framework: a phone
makes one GET per push on a fresh connection and closes it, and a fleet makes
thousands of them.  The response, the part a hostile server controls, is
parsed by llhttp, Node.js's HTTP parser in C, with a cap on the header block
and on the body; the request is one fixed GET written here from parts that
are checked first, so no URL can add a line to it.

Nothing here does I/O: :class:`Exchange` is fed the bytes of the response
by whatever carries them (:mod:`phonecast.phone.fetcher` has two carriers)
and :func:`outcome` says what an ended exchange amounts to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import SplitResult, quote, urljoin

import httptools

#: Status line and header fields together (h11's default limit, and more
#: than any content server sends).
MAX_HEADER_BYTES: Final = 16 * 1024
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
#: Transfer codings a phone reads: ``chunked``, and ``identity`` (no coding,
#: RFC 2616's name for it).  A page in any other (gzip...), or in a content
#: coding other than identity, would reach the XML parser still coded, so it
#: is refused by name instead.
_CODINGS_READ: Final = frozenset({b"chunked", b"identity"})
#: Fields that are lists of codings: repeated, they are read as one, in order.
_CODING_LISTS: Final = frozenset({b"transfer-encoding", b"content-encoding"})
#: What a Host field may hold once the name is IDNA-encoded: a name, an IPv4
#: address or an IPv6 reference, and a port.
_HOST_RE: Final = re.compile(rb"[A-Za-z0-9._\-]+(?::[0-9]*)?|\[[0-9A-Fa-f:.]+\](?::[0-9]*)?")
#: Characters kept as they are in a request-target (RFC 3986 pchar, "/", "?"
#: and existing %-escapes); anything else (space, controls, non-ASCII) is
#: %-encoded, so no URL can add a line to the request.
_PATH_SAFE: Final = "/!$&'()*+,;=:@%~-._"
_QUERY_SAFE: Final = _PATH_SAFE + "?"


@dataclass(frozen=True, slots=True, init=False)
class FetchResult:
    """What a fetch produced."""

    url: str
    ok: bool
    status: int | None = None
    content_type: str | None = None
    body: bytes = b""
    error: str | None = None

    # Written out, as the core's values are: the generated __init__ stays
    # interpreted in the compiled build (one result per push; see
    # tests/sip/test_values.py, which keeps it in step with the fields).
    def __init__(
        self,
        url: str,
        ok: bool,
        status: int | None = None,
        content_type: str | None = None,
        body: bytes = b"",
        error: str | None = None,
    ) -> None:
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "ok", ok)
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "content_type", content_type)
        object.__setattr__(self, "body", body)
        object.__setattr__(self, "error", error)


class TooBig(Exception):
    """The body (declared or received) or the header block passed its cap."""


class BadResponse(Exception):
    """The response broke HTTP/1.1 or ended early."""


def request_bytes(parts: SplitResult, user_agent: bytes) -> bytes:
    """The GET a phone sends for ``parts`` (a split http/https URL).

    Raises ValueError if the URL has no usable host.
    """
    host = parts.netloc.rpartition("@")[2].encode("idna")
    if not _HOST_RE.fullmatch(host):
        raise ValueError("URL has no valid host")
    target = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=_QUERY_SAFE)
    return b"".join(
        (
            b"GET ",
            target.encode("ascii"),
            b" HTTP/1.1\r\nHost: ",
            host,
            b"\r\nUser-Agent: ",
            user_agent,
            b"\r\nAccept: text/xml, application/xml, */*\r\nConnection: close\r\n\r\n",
        )
    )


class Exchange:
    """One GET's response, read by llhttp as it arrives, whatever carries it.

    The carrier feeds it bytes (:meth:`feed`) and the end of the stream
    (:meth:`end_of_stream`), and looks at :attr:`done` after each: the
    exchange never calls out, so no carrier code runs inside llhttp's
    callbacks.  :attr:`error` says why it failed, if it did.
    """

    def __init__(self, max_bytes: int) -> None:
        # Made at the first bytes (a refused connection never needs one) and
        # dropped by finish(): the parser holds this object for its
        # callbacks, a cycle that would otherwise outlive every fetch.
        self._parser: httptools.HttpResponseParser | None = None
        self._max = max_bytes
        #: True once the response is complete or the exchange failed.
        self.done = False
        #: Why it failed (a timeout, a cap, a malformed response, a socket error).
        self.error: BaseException | None = None
        self.status: int | None = None
        self.headers: dict[bytes, bytes] = {}
        self.body = bytearray()
        self._head_bytes = 0  # received while the header block was incomplete
        self._field_bytes = 0  # header fields parsed so far
        self._head_done = False
        #: Every byte received, framing included, is bounded too: the caps on
        #: the header block and the body count neither a chunk's size line
        #: and extensions nor the trailers' CRLFs, and a server sending an
        #: endless chunk extension (or size digits without end) would
        #: otherwise keep a fetch reading, each read a sign of progress.
        #: The framing may add as much again as the body cap.
        self._received = 0
        self._max_received = MAX_HEADER_BYTES + 2 * max_bytes

    def feed(self, data: bytes) -> None:
        """Bytes of the response, as received."""
        if self.done:
            return
        parser = self._parser
        if parser is None:
            parser = self._parser = httptools.HttpResponseParser(self)
        if not self._head_done:
            self._head_bytes += len(data)
        self._received += len(data)
        if self._received > self._max_received:
            self.finish(TooBig(f"response exceeds {self._max_received} bytes with its framing"))
            return
        try:
            parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            # A callback below raised (a cap was passed, or bytes came after
            # the response): that is the reason.
            cause = exc.__context__
            self.finish(cause if isinstance(cause, Exception) else exc)
            return
        except httptools.HttpParserError as exc:
            self.finish(BadResponse(f"malformed response: {exc}"))
            return
        except httptools.HttpParserUpgrade:
            # A 101 Switching Protocols (not an HttpParserError): nothing a
            # GET of a page asked for, and llhttp would read on past it.
            self.finish(BadResponse("the server switched protocols (HTTP 101)"))
            return
        if not self._head_done and self._head_bytes > MAX_HEADER_BYTES:
            self.finish(TooBig(f"response header block exceeds {MAX_HEADER_BYTES} bytes"))

    def end_of_stream(self) -> None:
        """The server closed its side."""
        # The body of a response that has neither Content-Length nor chunked
        # framing runs to the end of the connection (RFC 9112 6.3 item 8).
        if self._head_done and not self._framed():
            self.finish()
        else:
            self.finish(BadResponse("the server closed the connection before the response ended"))

    def finish(self, exc: BaseException | None = None) -> None:
        """End the exchange (failed with ``exc`` if given); later calls do nothing."""
        if not self.done:
            self.done = True
            self.error = exc
        self._parser = None  # nothing is parsed once the exchange is over

    @property
    def content_type(self) -> str:
        """The Content-Type received, or ''."""
        return self.headers.get(b"content-type", b"").decode("latin-1")

    # -- llhttp callbacks
    # llhttp reads on past a complete response within one feed_data: bytes
    # after it (a second response the server had no business sending) must
    # not change the one received, so a message begun once the exchange is
    # over stops the parser, and the other callbacks ignore what follows.
    def on_message_begin(self) -> None:
        if self.done:
            raise BadResponse("bytes after the end of the response")

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.done:
            return
        self._field_bytes += len(name) + len(value) + 4
        if self._field_bytes > MAX_HEADER_BYTES:
            raise TooBig(f"response header block exceeds {MAX_HEADER_BYTES} bytes")
        if self._head_done:
            # A trailer (llhttp reports them here too): counted, not kept.
            # Merged, it could retype the page or make a 302 a redirect
            # after its body (RFC 9110 6.5), and a phone needs none.
            return
        key = name.lower()
        if key == b"content-type" and self.headers.get(key, value) != value:
            # A singleton (RFC 9110 5.3): which of two the page is, is a guess.
            raise BadResponse("two different Content-Type fields")
        if key in _CODING_LISTS and key in self.headers:
            # A list header: its fields together name the codings in order.
            value = self.headers[key] + b", " + value
        self.headers[key] = value

    def on_headers_complete(self) -> None:
        parser = self._parser
        if self.done or parser is None:
            return
        status = parser.get_status_code()
        if 100 <= status < 200:  # interim (100 Continue...): the final one follows
            # It has no content (RFC 9110 15.2), but llhttp reads what one
            # other than 100-103 declares into the body: the page's, ahead
            # of the page.
            length = self.headers.get(b"content-length", b"0")
            if b"transfer-encoding" in self.headers or length.strip(b"0"):
                raise BadResponse("an interim (1xx) response with content")
            self.headers = {}
            return
        self.status = status
        self._head_done = True
        coded = self._codings(b"transfer-encoding")
        unread = [c for c in coded if c not in _CODINGS_READ]
        if unread:
            shown = unread[0].decode("latin-1")[:40]
            raise BadResponse(f"unsupported transfer coding {shown!r}")
        if status == 206:  # answers a Range, which a phone never sends: a part of a page
            raise BadResponse("206 Partial Content, not asked for")
        if status < 300:  # a page: a redirect's or an error's content is never shown
            unread = [c for c in self._codings(b"content-encoding") if c != b"identity"]
            if unread:
                shown = unread[0].decode("latin-1")[:40]
                raise BadResponse(f"unsupported content coding {shown!r}")
        declared = self.headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max:
            raise TooBig(f"body of {int(declared)} bytes exceeds {self._max}")

    def on_body(self, body: bytes) -> None:
        if self.done:
            return
        self.body += body
        if len(self.body) > self._max:
            raise TooBig(f"body exceeds {self._max} bytes")

    def on_message_complete(self) -> None:
        if self._head_done:
            self.finish()

    def _codings(self, name: bytes) -> list[bytes]:
        """The codings a Transfer- or Content-Encoding names, lower-cased, in order."""
        field = self.headers.get(name)
        if field is None:
            return []
        return [c.strip().lower() for c in field.split(b",") if c.strip()]

    def _framed(self) -> bool:
        """Whether the body's end is known other than by the connection's:
        a Content-Length, or chunked as the final transfer coding (else the
        body runs to the close, RFC 9112 6.3 items 4 and 8)."""
        if b"content-length" in self.headers:
            return True
        codings = self._codings(b"transfer-encoding")
        return bool(codings) and codings[-1] == b"chunked"


def outcome(url: str, exchange: Exchange) -> FetchResult | str:
    """What the ended ``exchange`` for ``url`` amounts to: a result, or the
    URL a redirect points to."""
    exc = exchange.error
    if isinstance(exc, TimeoutError):
        why = str(exc)  # the whole fetch's deadline says so; a read's does not
        said = f"timed out: {why}" if why else "timed out"
        return FetchResult(url, False, exchange.status, error=said)
    if isinstance(exc, TooBig):
        return FetchResult(url, False, exchange.status, exchange.content_type, error=str(exc))
    if isinstance(exc, BadResponse):
        return FetchResult(url, False, exchange.status, error=str(exc))
    if exc is not None:
        return FetchResult(url, False, exchange.status, error=f"{type(exc).__name__}: {exc}")
    status = exchange.status
    if status is None:
        return FetchResult(url, False, error="the server sent no response")
    location = exchange.headers.get(b"location")
    if status in _REDIRECTS and location:
        try:
            return urljoin(url, location.decode("latin-1"))
        except ValueError:  # urljoin refuses some, e.g. an unclosed IPv6 bracket
            return FetchResult(url, False, status, error="a redirect to an invalid Location")
    if status == 204:  # a success, but nothing to show: not a fetched page
        said = "204 No Content: no page"
        return FetchResult(url, False, status, exchange.content_type, error=said)
    ok = 200 <= status < 300
    error = None if ok else f"HTTP {status}"
    return FetchResult(url, ok, status, exchange.content_type, bytes(exchange.body), error)
