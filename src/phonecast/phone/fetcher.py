"""Fetching what a push points at, as a phone would: bounded in every way.

A hostile or broken server must not hang or bloat the emulator: the fetch
has a total timeout, a size cap (read in chunks; the connection is dropped
past the cap, without reading the rest), a redirect cap, and only http and
https URLs.  The result says exactly what happened, so the event log can tell
"fetched" from "tried".
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_BYTES = 64 * 1024
DEFAULT_MAX_REDIRECTS = 3
XML_TYPES = ("text/xml", "application/xml")


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What a fetch produced."""

    url: str
    ok: bool
    status: int | None = None
    content_type: str | None = None
    body: bytes = b""
    error: str | None = None


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
    ) -> None:
        # Bound the connect and each read, not the wait for a pooled
        # connection: a fleet of thousands queues fetches behind ``limit``
        # connections, and a queued fetch has not failed.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        self._max_bytes = max_bytes
        self._max_redirects = max_redirects
        self._headers = {"User-Agent": user_agent}
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                headers=self._headers,
                connector=aiohttp.TCPConnector(limit=self._limit, force_close=True),
            )
        return self._session

    async def fetch(self, url: str) -> FetchResult:
        """GET ``url``; never raises."""
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            return FetchResult(url, False, error=f"unsupported URL scheme {scheme!r}")
        try:
            async with self._client().get(
                url, allow_redirects=True, max_redirects=self._max_redirects
            ) as resp:
                ctype = resp.headers.get("Content-Type", "")
                declared = resp.content_length
                if declared is not None and declared > self._max_bytes:
                    return FetchResult(
                        url,
                        False,
                        resp.status,
                        ctype,
                        error=f"body of {declared} bytes exceeds {self._max_bytes}",
                    )
                body = bytearray()
                async for chunk in resp.content.iter_chunked(8192):
                    body += chunk
                    if len(body) > self._max_bytes:
                        return FetchResult(
                            url,
                            False,
                            resp.status,
                            ctype,
                            error=f"body exceeds {self._max_bytes} bytes",
                        )
                ok = 200 <= resp.status < 300
                error = None if ok else f"HTTP {resp.status}"
                return FetchResult(url, ok, resp.status, ctype, bytes(body), error)
        except aiohttp.TooManyRedirects:
            return FetchResult(url, False, error=f"more than {self._max_redirects} redirects")
        except TimeoutError:
            return FetchResult(url, False, error="timed out")
        except (aiohttp.ClientError, OSError) as exc:
            return FetchResult(url, False, error=f"{type(exc).__name__}: {exc}")

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._session is not None:
            await self._session.close()
            self._session = None
