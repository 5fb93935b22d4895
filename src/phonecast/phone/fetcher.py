"""Fetching what a push points at, as a phone would: bounded in every way.

A hostile or broken server must not hang or bloat the emulator: the connect
and every read have a timeout, the body a size cap (the connection is
dropped past the cap, without reading the rest), redirects a cap, and only
http and https URLs are fetched.  The result says exactly what happened, so
the event log can tell "fetched" from "tried".

Why llhttp (through httptools) and not an HTTP client framework: a phone
makes one GET per push on a fresh connection and closes it, and a fleet makes
thousands of them.  The response, the part a hostile server controls, is
parsed by llhttp, Node.js's HTTP parser in C; the request is one fixed GET
written here from parts that are checked first.  Measured on the project's
machine, an exchange costs about 180 us of CPU through h11's pure-Python state
machine (which this module used before) and about a third of that through
aiohttp's client; the emulator spends much of its time on exactly this
(``bench/README.md``).
"""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import dataclass
from typing import cast
from urllib.parse import SplitResult, quote, urljoin, urlsplit

import httptools

DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_BYTES = 64 * 1024
DEFAULT_MAX_REDIRECTS = 3
#: Status line and header fields together (h11's default limit, and more
#: than any content server sends).
MAX_HEADER_BYTES = 16 * 1024
XML_TYPES = ("text/xml", "application/xml")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: What a Host field may hold once the name is IDNA-encoded: a name, an IPv4
#: address or an IPv6 reference, and a port.
_HOST_RE = re.compile(rb"[A-Za-z0-9._\-]+(?::[0-9]*)?|\[[0-9A-Fa-f:.]+\](?::[0-9]*)?")
#: Characters kept as they are in a request-target (RFC 3986 pchar, "/", "?"
#: and existing %-escapes); anything else (space, controls, non-ASCII) is
#: %-encoded, so no URL can add a line to the request.
_PATH_SAFE = "/!$&'()*+,;=:@%~-._"
_QUERY_SAFE = _PATH_SAFE + "?"


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What a fetch produced."""

    url: str
    ok: bool
    status: int | None = None
    content_type: str | None = None
    body: bytes = b""
    error: str | None = None


class _TooBig(Exception):
    """The body (declared or received) or the header block passed its cap."""


class _BadResponse(Exception):
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


class _Exchange(asyncio.Protocol):
    """One GET on one connection: llhttp parses the response as it arrives."""

    def __init__(self, request: bytes, max_bytes: int, timeout: float) -> None:
        # Dropped by finish(): the parser holds this protocol for its
        # callbacks, a cycle that would otherwise outlive every fetch.
        self._parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self._request = request
        self._max = max_bytes
        self._timeout = timeout
        self._loop = asyncio.get_running_loop()
        self.done: asyncio.Future[None] = self._loop.create_future()
        self.status: int | None = None
        self.headers: dict[bytes, bytes] = {}
        self.body = bytearray()
        self._head_bytes = 0  # received while the header block was incomplete
        self._field_bytes = 0  # header fields parsed so far
        self._head_done = False
        self._transport: asyncio.WriteTransport | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._arm()  # nothing may leave the exchange waiting for ever

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance.
        self._transport = cast(asyncio.WriteTransport, transport)
        self._transport.write(self._request)
        self._arm()

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None or self.done.done():
            return
        self._arm()
        if not self._head_done:
            self._head_bytes += len(data)
        try:
            parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            # A callback below raised (a cap was passed): that is the reason.
            cause = exc.__context__
            self.finish(cause if isinstance(cause, Exception) else exc)
            return
        except httptools.HttpParserError as exc:
            self.finish(_BadResponse(f"malformed response: {exc}"))
            return
        if not self._head_done and self._head_bytes > MAX_HEADER_BYTES:
            self.finish(_TooBig(f"response header block exceeds {MAX_HEADER_BYTES} bytes"))

    def eof_received(self) -> bool:
        # The body of a response that has neither Content-Length nor chunked
        # framing runs to the end of the connection (RFC 9112 6.3 item 8).
        if self._head_done and not self._framed():
            self.finish()
        else:
            self.finish(_BadResponse("the server closed the connection before the response ended"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.finish(exc or ConnectionResetError("the server closed the connection early"))
        self._transport = None

    # -- llhttp callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._field_bytes += len(name) + len(value) + 4
        if self._field_bytes > MAX_HEADER_BYTES:
            raise _TooBig(f"response header block exceeds {MAX_HEADER_BYTES} bytes")
        self.headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        assert self._parser is not None  # called from within feed_data
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # interim (100 Continue...): the final one follows
            self.headers = {}
            return
        self.status = status
        self._head_done = True
        declared = self.headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max:
            raise _TooBig(f"body of {int(declared)} bytes exceeds {self._max}")

    def on_body(self, body: bytes) -> None:
        self.body += body
        if len(self.body) > self._max:
            raise _TooBig(f"body exceeds {self._max} bytes")

    def on_message_complete(self) -> None:
        if self._head_done:
            self.finish()

    # -- internals
    def _framed(self) -> bool:
        return b"content-length" in self.headers or b"transfer-encoding" in self.headers

    def _arm(self) -> None:
        """Each read has ``timeout`` seconds (a slow-drip server cannot hold
        the phone for longer than the cap allows).  Activity only moves the
        deadline; the one timer, when it fires early, re-arms for the rest
        (cancelling and re-creating a timer per read cost more)."""
        self._deadline = self._loop.time() + self._timeout
        if self._idle is None and not self.done.done():
            self._idle = self._loop.call_at(self._deadline, self._on_idle)

    def _on_idle(self) -> None:
        self._idle = None
        if self._loop.time() >= self._deadline:
            self.finish(TimeoutError())
        elif not self.done.done():
            self._idle = self._loop.call_at(self._deadline, self._on_idle)

    def _disarm(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def finish(self, exc: BaseException | None = None) -> None:
        """End the exchange (with ``exc`` if it failed) and close the connection."""
        if not self.done.done():
            if exc is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(exc)
        self._disarm()
        self._parser = None  # nothing is parsed once the exchange is over
        if self._transport is not None:
            self._transport.close()


class Fetcher:
    """One shared HTTP client for every phone of a process."""

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        user_agent: str = "Cisco/SPA504G-7.6.2 (phonecast emulator)",
        limit: int = 256,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """``tls`` verifies https servers (default: the system's trust store)."""
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._max_redirects = max_redirects
        self._user_agent = user_agent.encode("ascii", "replace")
        # At most ``limit`` connections at once.  The wait for one is not
        # counted against the timeout: a fleet of thousands queues its
        # fetches here, and a queued fetch has not failed.
        self._slots = asyncio.Semaphore(limit)
        self._tls = tls

    async def fetch(self, url: str) -> FetchResult:
        """GET ``url``, following redirects up to the cap; never raises."""
        for _ in range(self._max_redirects + 1):
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
            if scheme not in ("http", "https"):
                return FetchResult(url, False, error=f"unsupported URL scheme {scheme!r}")
            async with self._slots:
                result = await self._get(url, parts, scheme)
            if isinstance(result, FetchResult):
                return result
            url = result  # a redirect
        return FetchResult(url, False, error=f"more than {self._max_redirects} redirects")

    async def _get(self, url: str, parts: SplitResult, scheme: str) -> FetchResult | str:
        """One GET of ``url`` (split into ``parts``): the result, or the URL a
        redirect points to."""
        host = parts.hostname
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            return FetchResult(url, False, error="invalid port in URL")
        if not host:
            return FetchResult(url, False, error="URL has no host")
        try:
            request = request_bytes(parts, self._user_agent)
        except (ValueError, UnicodeError):
            return FetchResult(url, False, error="URL has no valid host")
        loop = asyncio.get_running_loop()
        exchange = _Exchange(request, self._max_bytes, self._timeout)
        try:
            async with asyncio.timeout(self._timeout):
                await loop.create_connection(
                    lambda: exchange,
                    host,
                    port,
                    ssl=self._tls_context() if scheme == "https" else None,
                    server_hostname=host if scheme == "https" else None,
                )
            await exchange.done
        except TimeoutError:
            return FetchResult(url, False, exchange.status, error="timed out")
        except _TooBig as exc:
            return FetchResult(url, False, exchange.status, self._ctype(exchange), error=str(exc))
        except _BadResponse as exc:
            return FetchResult(url, False, exchange.status, error=str(exc))
        except (OSError, ssl.SSLError, UnicodeError) as exc:
            return FetchResult(url, False, exchange.status, error=f"{type(exc).__name__}: {exc}")
        finally:
            exchange.finish()  # closes the transport in every case
        status = exchange.status
        if status is None:
            return FetchResult(url, False, error="the server sent no response")
        location = exchange.headers.get(b"location")
        if status in _REDIRECTS and location:
            return urljoin(url, location.decode("latin-1"))
        ok = 200 <= status < 300
        return FetchResult(
            url,
            ok,
            status,
            self._ctype(exchange),
            bytes(exchange.body),
            None if ok else f"HTTP {status}",
        )

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    @staticmethod
    def _ctype(exchange: _Exchange) -> str:
        return exchange.headers.get(b"content-type", b"").decode("latin-1")

    async def close(self) -> None:
        """Nothing to release: each fetch closes its own connection."""
