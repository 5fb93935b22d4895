"""Fetching what a push points at, as a phone would: bounded in every way.

A hostile or broken server must not hang or bloat the emulator: the connect
and every read have a timeout, the body a size cap (the connection is
dropped past the cap, without reading the rest), redirects a cap, and only
http and https URLs are fetched.  The result says exactly what happened, so
the event log can tell "fetched" from "tried".

Why h11 and not an HTTP client framework: a phone makes one GET per push on
a fresh connection and closes it, and a fleet makes thousands of them.  h11
(the sans-IO HTTP/1.1 state machine) does the protocol; this module only
opens the connection and feeds bytes.  Measured on the project's machine, a
fetch then costs about a third of the CPU it cost through aiohttp's client
(see ``bench/README.md``), and the emulator spends most of its time on
exactly this.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import cast
from urllib.parse import SplitResult, urljoin, urlsplit

import h11

DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_BYTES = 64 * 1024
DEFAULT_MAX_REDIRECTS = 3
XML_TYPES = ("text/xml", "application/xml")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


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
    """The body passed the cap (declared or received)."""


class _Exchange(asyncio.Protocol):
    """One GET on one connection: feeds h11, collects the response."""

    def __init__(self, request: bytes, max_bytes: int, timeout: float) -> None:
        self._conn = h11.Connection(h11.CLIENT)
        self._request = request
        self._max = max_bytes
        self._timeout = timeout
        self._loop = asyncio.get_running_loop()
        self.done: asyncio.Future[None] = self._loop.create_future()
        self.status: int | None = None
        self.headers: dict[bytes, bytes] = {}
        self.body = bytearray()
        self._transport: asyncio.WriteTransport | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._arm()  # nothing may leave the exchange waiting for ever

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance.
        self._transport = cast(asyncio.WriteTransport, transport)
        self._transport.write(self._request)
        self._arm()

    def data_received(self, data: bytes) -> None:
        self._conn.receive_data(data)
        self._arm()
        self._drain()

    def eof_received(self) -> bool:
        self._conn.receive_data(b"")
        self._drain()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.finish(exc or ConnectionResetError("the server closed the connection early"))

    # -- internals
    def _arm(self) -> None:
        """Each read has ``timeout`` seconds (a slow-drip server cannot hold
        the phone for longer than the cap allows)."""
        self._disarm()
        self._idle = self._loop.call_later(self._timeout, self.finish, TimeoutError())

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
        if self._transport is not None:
            self._transport.close()

    def _drain(self) -> None:
        while not self.done.done():
            try:
                event = self._conn.next_event()
            except h11.RemoteProtocolError as exc:
                self.finish(exc)
                return
            if event is h11.NEED_DATA:
                return
            if isinstance(event, h11.Response):
                self.status = event.status_code
                self.headers = dict(event.headers)
                declared = self.headers.get(b"content-length")
                if declared is not None and declared.isdigit() and int(declared) > self._max:
                    self.finish(_TooBig(f"body of {int(declared)} bytes exceeds {self._max}"))
            elif isinstance(event, h11.Data):
                self.body += event.data
                if len(self.body) > self._max:
                    self.finish(_TooBig(f"body exceeds {self._max} bytes"))
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                self.finish()


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
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn = h11.Connection(h11.CLIENT)
        request = conn.send(
            h11.Request(
                method="GET",
                target=target.encode("ascii", "replace"),
                headers=[
                    (b"Host", parts.netloc.rpartition("@")[2].encode("idna")),
                    (b"User-Agent", self._user_agent),
                    (b"Accept", b"text/xml, application/xml, */*"),
                    (b"Connection", b"close"),
                ],
            )
        ) + conn.send(h11.EndOfMessage())
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
        except (OSError, h11.ProtocolError, ssl.SSLError, UnicodeError) as exc:
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
