"""Fetching what a push points at, as a phone would: bounded in every way.

A hostile or broken server must not hang or bloat the emulator: the connect
and every read have a timeout, the whole fetch (its redirects included) a
deadline, so that a server dripping a byte before each timeout cannot hold
a turn for days and starve the fetches queued behind it, the body a size cap
(the connection is dropped past the cap, without reading the rest), the
bytes received in all another, redirects a cap, and only http and https
URLs are fetched.  The result says exactly what happened, so
the event log can tell "fetched" from "tried".  The GET itself (the request
written, the response read by llhttp) is :mod:`phonecast.phone.httpget`.

Why two carriers: the usual fetch is plain http to an address (the
campaign's content server, a URL the pusher wrote), and for that a
non-blocking socket driven by the loop's reader and writer callbacks is all
it takes, with its deadline on the fetcher's one
:class:`~phonecast.net.timers.TimerWheel`: no task, no future and no timer
handle per fetch, and on loopback not even a loop registration when the port
is closed (the refusal is known at the first send).  TLS, and names that need
resolving, go through an asyncio transport instead, a task each.  Both feed
the same :class:`~phonecast.phone.httpget.Exchange`, so caps, framing rules
and results are one piece of code.

:meth:`Fetcher.start` takes a callback, which is how the emulator uses it
(straight from the SIP handler that accepted the push); :meth:`Fetcher.fetch`
is the same as a coroutine.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import functools
import os
import socket
import ssl
from _socket import socket as _raw_socket
from collections.abc import Callable
from typing import Final, Protocol, cast
from urllib.parse import urlsplit

from phonecast.net.timers import Timer, TimerWheel
from phonecast.phone.httpget import Exchange, FetchResult, outcome, request_bytes
from phonecast.sip._memo import remember

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_TIMEOUT", "Done", "FetchResult", "Fetcher", "PageFetcher"]

DEFAULT_TIMEOUT: Final = 5.0
DEFAULT_MAX_BYTES: Final = 64 * 1024
DEFAULT_MAX_REDIRECTS: Final = 3
#: How long a whole fetch may take, redirects included, in timeouts.
DEFAULT_DEADLINE_TIMEOUTS: Final = 3
#: Reads per readable event before the loop gets its turn back.
_READS_PER_EVENT: Final = 16

#: A fetch's ``end_by`` until its first GET starts the clock.
_NOT_STARTED: Final = float("inf")
#: Called once with the result of :meth:`Fetcher.start`.
Done = Callable[[FetchResult], None]
#: A URL made ready to fetch: scheme, host, port and the request bytes.
_Target = tuple[str, str, int, bytes]
#: Socket type flags that make a socket non-blocking as it is created (Linux;
#: elsewhere 0, and the socket is made non-blocking after).
_NONBLOCK_FLAGS: Final[int] = getattr(socket, "SOCK_NONBLOCK", 0) | getattr(
    socket, "SOCK_CLOEXEC", 0
)
#: Bound of the per-URL table of targets (URLs come from the network).
_TARGETS_KEPT: Final = 1024
#: Refused sockets kept for the next GET, per address family.
_SPARES_KEPT: Final = 8
# The connect answers a GET looks at, as constants the compiled build reads
# without an attribute lookup on the errno module each time.
_EINPROGRESS: Final[int] = errno.EINPROGRESS
_EISCONN: Final[int] = errno.EISCONN
_ECONNREFUSED: Final[int] = errno.ECONNREFUSED
_ECONNABORTED: Final[int] = errno.ECONNABORTED
_ENOTCONN: Final[int] = errno.ENOTCONN
#: What a GET refused at its connect reports: the text ``outcome`` writes for
#: that refusal, made once (building and formatting the exception each time
#: was a sixth of a refused GET's own work).
_REFUSAL: Final = OSError(errno.ECONNREFUSED, os.strerror(errno.ECONNREFUSED))
_REFUSED_TEXT: Final = f"{type(_REFUSAL).__name__}: {_REFUSAL}"
#: What a second connect may answer while the first is still under way
#: (Linux and the BSDs say EALREADY; the others are taken the same way).
_UNDER_WAY: Final = frozenset({errno.EALREADY, errno.EINPROGRESS, errno.EAGAIN})
#: What a fetch started after :meth:`Fetcher.close` reports.
_CLOSED: Final = "the fetcher is closed"


class PageFetcher(Protocol):
    """What the emulator needs of a fetcher (:class:`Fetcher`, or a stand-in
    in benchmarks that measure the phone without its fetches)."""

    @property
    def waiting(self) -> int: ...

    def start(self, url: str, done: Done) -> None: ...

    async def close(self) -> None: ...


class _Fetch:
    """One fetch from start to result: the URL it is at, redirects left,
    and who hears the result (``None`` once told: a fetch ends once)."""

    __slots__ = ("done", "end_by", "redirects_left", "url")

    def __init__(self, url: str, redirects: int, done: Done) -> None:
        self.url = url
        self.redirects_left = redirects
        self.done: Done | None = done
        #: The loop's time the whole fetch must be over by, set when it first
        #: gets a turn (the wait for one is not counted: see Fetcher).
        self.end_by = _NOT_STARTED


class _Idle:
    """How long a GET may go without progress: connect, then each read,
    has a whole timeout, and none may run past its fetch's ``end_by``.
    Activity only moves the deadline; the one timer on the fetcher's wheel,
    when it fires early, re-arms for the rest (cheaper than cancelling and
    scheduling again on every read).  ``expire`` is called once if the
    deadline passes, with the TimeoutError to end on; :meth:`stop` drops it
    (and with it the reference back to the carrier).  Nothing is scheduled
    before the first :meth:`touch`: a fetch refused at its first send needs
    no timer."""

    __slots__ = ("_deadline", "_end_by", "_expire", "_fetcher", "_timer")

    def __init__(
        self, fetcher: Fetcher, end_by: float, expire: Callable[[TimeoutError], None]
    ) -> None:
        self._fetcher = fetcher
        self._end_by = end_by
        self._expire: Callable[[TimeoutError], None] | None = expire
        self._timer: Timer | None = None
        self._deadline = 0.0

    def touch(self) -> None:
        """Progress: the deadline is a whole timeout away (or the fetch's
        end, if that is sooner)."""
        if self._expire is None:
            return
        self._deadline = min(self._fetcher.loop.time() + self._fetcher.timeout, self._end_by)
        if self._timer is None:
            self._timer = self._fetcher.wheel.schedule(self._deadline, self._fire)

    def _fire(self, now: float) -> None:
        self._timer = None
        expire = self._expire
        if expire is None:
            return
        if now >= self._deadline:
            self._expire = None
            if now >= self._end_by:
                spent = self._fetcher.deadline
                expire(TimeoutError(f"the fetch took more than {spent:g} s in all"))
            else:
                expire(TimeoutError())
        else:
            self._timer = self._fetcher.wheel.schedule(self._deadline, self._fire)

    def stop(self) -> None:
        """The GET is over: no expiry, no timer."""
        self._expire = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _SocketGet:
    """One GET over a non-blocking socket, driven by the loop's reader and
    writer callbacks, its progress watched by an :class:`_Idle`."""

    __slots__ = (
        "_address",
        "_cleared",
        "_fetcher",
        "_idle",
        "_pending",
        "_reading",
        "_refused",
        "_sock",
        "_writing",
        "exchange",
        "fetch",
    )

    def __init__(self, fetcher: Fetcher, fetch: _Fetch, sock: _raw_socket, request: bytes):
        self._fetcher = fetcher
        self.fetch = fetch
        self._sock = sock
        self._pending = request
        self.exchange = Exchange(fetcher.max_bytes)
        self._reading = False
        self._writing = False
        self._refused = False
        #: Refused, and the refusal already read by connect: reusable as is.
        self._cleared = False
        self._address: tuple[str, int] | None = None
        self._idle = _Idle(fetcher, fetch.end_by, self._fail)

    def open(self, address: tuple[str, int]) -> None:
        """Connect and send the request (or wait until it can be sent)."""
        self._address = address
        connect = self._sock.connect_ex
        err = connect(address)
        if err == _EINPROGRESS:
            # On loopback the handshake, or the refusal, is over by the time
            # connect returns, and asking again says which: EISCONN, or
            # ECONNREFUSED, after which the socket may connect again at once
            # (a refusal seen by send first needs one more connect to clear
            # it: _recycle).  Elsewhere the attempt is still under way
            # (EALREADY), and writability will mean "connected".
            err = connect(address)
            if err in _UNDER_WAY:
                self._wait(write=True)
                return
            if err == _EISCONN:
                err = 0
            elif err == _ECONNREFUSED:
                self._refused = self._cleared = True
                self._end(FetchResult(self.fetch.url, False, error=_REFUSED_TEXT))
                return
        if err:
            self._fail(OSError(err, os.strerror(err)))
            return
        self._send()

    def _send(self) -> None:
        try:
            sent = self._sock.send(self._pending)
        except (BlockingIOError, InterruptedError):
            self._wait(write=True)
            return
        except OSError as exc:
            if exc.errno == _ENOTCONN:  # still connecting, on some stacks
                self._wait(write=True)
                return
            # A refused or failed connection shows here.  Refused before a
            # byte went out, the socket can serve the next GET.
            self._refused = exc.errno == _ECONNREFUSED
            self._fail(exc)
            return
        self._pending = self._pending[sent:]
        self._wait(write=bool(self._pending))

    def _wait(self, *, write: bool) -> None:
        """Wait to write (connecting, or a full buffer) or else to read."""
        self._idle.touch()
        loop, fd = self._fetcher.loop, self._sock.fileno()
        if write:
            if not self._writing:
                loop.add_writer(fd, self._send)
                self._writing = True
            return
        if self._writing:
            loop.remove_writer(fd)
            self._writing = False
        if not self._reading:
            loop.add_reader(fd, self._on_readable)
            self._reading = True

    def _on_readable(self) -> None:
        exchange = self.exchange
        recv = self._sock.recv
        for _ in range(_READS_PER_EVENT):
            try:
                data = recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                exchange.finish(exc)
                break
            if not data:
                exchange.end_of_stream()
                break
            exchange.feed(data)
            if exchange.done:
                break
        if exchange.done:
            self._end()
        else:
            self._idle.touch()  # a read: the next one has a whole timeout

    def _fail(self, exc: BaseException) -> None:
        self.exchange.finish(exc)
        self._end()

    def _end(self, result: FetchResult | None = None) -> None:
        """Release the callbacks, the socket and the timer; report what the
        exchange amounts to, or ``result`` (a refusal read at connect)."""
        loop, fd = self._fetcher.loop, self._sock.fileno()
        if self._reading:
            loop.remove_reader(fd)
            self._reading = False
        if self._writing:
            loop.remove_writer(fd)
            self._writing = False
        if self._refused and self._address is not None:
            self._fetcher._recycle(self._sock, self._address, cleared=self._cleared)
        else:
            self._sock.close()
        self._idle.stop()
        self._fetcher._sockets.discard(self)
        if result is None:
            self._fetcher._ended(self.fetch, outcome(self.fetch.url, self.exchange))
        else:
            self.exchange.finish(_REFUSAL)
            self._fetcher._ended(self.fetch, result)

    def abort(self) -> None:
        """The fetcher is closing: end now, as a failed fetch."""
        if not self.exchange.done:
            self._fail(ConnectionAbortedError("the fetcher was closed"))


class _Carrier(asyncio.Protocol):
    """An asyncio transport's side of an :class:`Exchange` (TLS, names)."""

    def __init__(self, fetcher: Fetcher, exchange: Exchange, request: bytes, end_by: float) -> None:
        self.exchange = exchange
        self._request = request
        self.ended: asyncio.Future[None] = fetcher.loop.create_future()
        self._transport: asyncio.WriteTransport | None = None
        self._idle = _Idle(fetcher, end_by, self._timed_out)
        self._idle.touch()  # from now: nothing may leave the exchange waiting for ever

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance.
        self._transport = cast(asyncio.WriteTransport, transport)
        self._transport.write(self._request)
        self._idle.touch()

    def data_received(self, data: bytes) -> None:
        self._idle.touch()
        self.exchange.feed(data)
        if self.exchange.done:
            self.close()

    def eof_received(self) -> bool:
        self.exchange.end_of_stream()
        self.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self.exchange.finish(exc or ConnectionResetError("the server closed the connection early"))
        self.close()

    def _timed_out(self, exc: TimeoutError) -> None:
        self.exchange.finish(exc)
        self.close()

    def close(self) -> None:
        """End the exchange if it is still going, and close the connection."""
        self.exchange.finish(ConnectionAbortedError("closed before the response"))
        self._idle.stop()
        if self._transport is not None:
            self._transport.close()
        if not self.ended.done():
            self.ended.set_result(None)


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
        deadline: float | None = None,
    ) -> None:
        """``tls`` verifies https servers (default: the system's trust store);
        ``deadline``: how long a whole fetch may take, redirects included
        (default: ``DEFAULT_DEADLINE_TIMEOUTS`` timeouts)."""
        #: Connect, and each read, have this long.
        self.timeout = timeout
        #: A whole fetch has this long.
        self.deadline = timeout * DEFAULT_DEADLINE_TIMEOUTS if deadline is None else deadline
        #: Largest body accepted.
        self.max_bytes = max_bytes
        self._max_redirects = max_redirects
        self._user_agent = user_agent.encode("ascii", "replace")
        #: URL -> its target, or why it cannot be fetched (see _target).
        self._targets: dict[str, _Target | str] = {}
        # At most ``limit`` fetches at once.  The wait for a turn is not
        # counted against the timeout: a fleet of thousands queues its
        # fetches here, and a queued fetch has not failed.
        self._limit = limit
        self._active = 0
        self._waiting: collections.deque[_Fetch] = collections.deque()
        #: True while _fill hands turns out (see there).
        self._filling = False
        self._sockets: set[_SocketGet] = set()
        #: Address family -> sockets whose connect was refused, ready again.
        self._spares: dict[int, list[_raw_socket]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._tls = tls
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wheel: TimerWheel | None = None
        #: Set by close(): from then on no GET starts (see there).
        self._closed = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the fetcher runs on (the one running at first use)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    @property
    def wheel(self) -> TimerWheel:
        """One timer wheel for every socket fetch: one loop timer in all."""
        if self._wheel is None:
            self._wheel = TimerWheel(self.loop)
        return self._wheel

    @property
    def waiting(self) -> int:
        """Fetches waiting for a turn (the emulator bounds how many)."""
        return len(self._waiting)

    async def fetch(self, url: str) -> FetchResult:
        """GET ``url``, following redirects up to the cap; never raises."""
        result: asyncio.Future[FetchResult] = self.loop.create_future()
        self.start(url, functools.partial(_resolve, result))
        return await result

    def start(self, url: str, done: Done) -> None:
        """Begin fetching ``url`` (redirects followed up to the cap) and call
        ``done`` with the result, once: later, or before returning when the
        URL is refused, the connection fails at once or the fetcher is
        closed."""
        self._waiting.append(_Fetch(url, self._max_redirects, done))
        self._fill()

    def _fill(self) -> None:
        """Give the free turns to waiting fetches, oldest first.

        A loop, never a recursion: a fetch refused on loopback ends inside
        its own start, and handing its turn on from there would nest one
        call per waiting fetch (thousands when a fleet is pushed while its
        content server is down: a RecursionError in Python, a crash of the
        stack compiled).  Turns freed while the loop runs are its to give.
        A start that raises ends its fetch as failed, and the loop goes on.
        Once the fetcher is closed, each ends here as failed, without a
        turn: in this loop too, as a callback may start another.
        """
        if self._filling:
            return
        self._filling = True
        try:
            waiting = self._waiting
            while waiting and (self._closed or self._active < self._limit):
                if self._closed:
                    self._refuse(waiting.popleft(), _CLOSED)
                    continue
                self._active += 1
                self._attempt_safely(waiting.popleft())
        finally:
            self._filling = False

    def _attempt_safely(self, fetch: _Fetch) -> None:
        """:meth:`_attempt`, holding a turn; if it raises (a fault of ours),
        the fetch ends as failed, which frees the turn."""
        try:
            self._attempt(fetch)
        except Exception as exc:
            if fetch.done is not None:
                error = f"could not start: {type(exc).__name__}: {exc}"
                self._ended(fetch, FetchResult(fetch.url, False, error=error))

    def _attempt(self, fetch: _Fetch) -> None:
        """One GET of ``fetch.url`` (the fetch holds a turn)."""
        url = fetch.url
        if fetch.end_by == _NOT_STARTED:  # its first GET: the whole fetch's clock starts
            fetch.end_by = self.loop.time() + self.deadline
        target = self._targets.get(url)
        if target is None:
            target = remember(self._targets, url, self._target(url), _TARGETS_KEPT)
        if isinstance(target, str):
            self._ended(fetch, FetchResult(url, False, error=target))
            return
        scheme, host, port, request = target
        family = _literal_family(host) if scheme == "http" else None
        if family is None:
            task = self.loop.create_task(self._carried(fetch, host, port, scheme, request))
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._carried_over, fetch))
            return
        spares = self._spares.get(family)
        if spares:
            sock = spares.pop()
        else:
            try:
                # The C socket, made non-blocking as it is created: socket.socket's
                # Python layer and a separate fcntl cost more than the refusal.
                sock = _raw_socket(family, socket.SOCK_STREAM | _NONBLOCK_FLAGS)
            except OSError as exc:
                self._ended(fetch, FetchResult(url, False, error=f"{type(exc).__name__}: {exc}"))
                return
            if not _NONBLOCK_FLAGS:
                sock.setblocking(False)
        get = _SocketGet(self, fetch, sock, request)
        self._sockets.add(get)
        get.open((host, port))

    def _recycle(self, sock: _raw_socket, address: tuple[str, int], *, cleared: bool) -> None:
        """Keep a socket whose connect was refused for the next GET, or close it.

        Making and closing a socket is two thirds of a GET refused on
        loopback (a fleet pushed while its content server is down does
        little else).  Linux lets a TCP socket whose connect failed connect
        again, once one more ``connect`` has answered ECONNABORTED, saying
        the failed attempt is cleared.  Any other answer (another kernel, or
        an attempt under way after all) and the socket is closed, as
        without this.  ``cleared``: a second ``connect`` read the refusal
        (see _SocketGet.open), which clears it too."""
        spares = self._spares.setdefault(sock.family, [])
        if len(spares) < _SPARES_KEPT and (cleared or sock.connect_ex(address) == _ECONNABORTED):
            spares.append(sock)
        else:
            sock.close()

    def _target(self, url: str) -> _Target | str:
        """Where a GET of ``url`` goes and the bytes it sends, or why it
        cannot be fetched.  Kept per URL (phones are pushed the same URL
        again and again): splitting and writing it is a fifth of a fetch
        refused on loopback."""
        try:
            parts = urlsplit(url)
        except ValueError:  # an unclosed or invalid IPv6 bracket, say
            return "invalid URL"
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            return f"unsupported URL scheme {scheme!r}"
        host = parts.hostname
        try:
            given = parts.port
        except ValueError:
            return "invalid port in URL"
        if given == 0:
            return "invalid port in URL"
        port = given or (443 if scheme == "https" else 80)
        if not host:
            return "URL has no host"
        try:
            request = request_bytes(parts, self._user_agent)
        except (ValueError, UnicodeError):
            return "URL has no valid host"
        return (scheme, host, port, request)

    async def _carried(
        self, fetch: _Fetch, host: str, port: int, scheme: str, request: bytes
    ) -> None:
        """One GET through an asyncio transport (https, or a host name)."""
        exchange = Exchange(self.max_bytes)
        carrier = _Carrier(self, exchange, request, fetch.end_by)
        https = scheme == "https"
        try:
            connect_by = min(self.loop.time() + self.timeout, fetch.end_by)
            async with asyncio.timeout_at(connect_by):
                await self.loop.create_connection(
                    lambda: carrier,
                    host,
                    port,
                    ssl=self._tls_context() if https else None,
                    server_hostname=host if https else None,
                )
            await carrier.ended
        except (TimeoutError, OSError, ssl.SSLError, UnicodeError) as exc:
            exchange.finish(exc)
        except asyncio.CancelledError:
            exchange.finish(ConnectionAbortedError("the fetcher was closed"))
        finally:
            carrier.close()
        self._ended(fetch, outcome(fetch.url, exchange))

    def _carried_over(self, fetch: _Fetch, task: asyncio.Task[None]) -> None:
        """The task of a GET through a transport is done."""
        self._tasks.discard(task)
        if task.cancelled() and fetch.done is not None:
            # Cancelled (by close()) before its first step: the coroutine
            # never ran, so nothing ended the fetch, which holds its turn.
            self._ended(fetch, FetchResult(fetch.url, False, error="the fetcher was closed"))

    def _ended(self, fetch: _Fetch, result: FetchResult | str) -> None:
        """One GET of ``fetch`` is over: follow a redirect, or finish."""
        if isinstance(result, str):
            if self._closed:  # no new GET: it would outlive close()
                result = FetchResult(fetch.url, False, error=_CLOSED)
            elif fetch.redirects_left > 0:
                fetch.redirects_left -= 1
                fetch.url = result
                self._attempt_safely(fetch)
                return
            else:
                error = f"more than {self._max_redirects} redirects"
                result = FetchResult(result, False, error=error)
        done = fetch.done
        if done is None:
            return  # told already (cannot happen: a GET ends once)
        fetch.done = None
        # The turn passes on before the caller hears.
        self._active -= 1
        self._fill()
        self._tell(done, result)

    def _refuse(self, fetch: _Fetch, why: str) -> None:
        """End ``fetch``, which holds no turn, as failed, saying ``why``."""
        done = fetch.done
        fetch.done = None
        if done is not None:
            self._tell(done, FetchResult(fetch.url, False, error=why))

    def _tell(self, done: Done, result: FetchResult) -> None:
        """A caller's callback that raises is reported as the loop reports a
        failing callback: it may not leave the next fetch waiting."""
        try:
            done(result)
        except Exception as exc:
            # Not the URL: it came from the network and may carry userinfo.
            self.loop.call_exception_handler(
                {"message": "a fetch's callback failed", "exception": exc}
            )

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    async def close(self) -> None:
        """Abandon what is under way: each fetch, under way or waiting for a
        turn, ends as a failed one, and so does each started after (at once).

        A callback run here may start a fetch (the emulator's do): the flag,
        set first, ends it without a socket or a task, which close() would
        not see and whose timer would go with the wheel; and close() goes on
        until nothing is left."""
        self._closed = True
        while self._waiting or self._sockets or self._tasks:
            while self._waiting:
                self._refuse(self._waiting.popleft(), "the fetcher was closed")
            for get in list(self._sockets):
                get.abort()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._wheel is not None:
            self._wheel.close()
        for spares in self._spares.values():
            for sock in spares:
                sock.close()
        self._spares.clear()


def _resolve(future: asyncio.Future[FetchResult], outcome: FetchResult) -> None:
    """Settle :meth:`Fetcher.fetch`'s future, unless its caller was cancelled."""
    if not future.done():
        future.set_result(outcome)


#: Host text -> address family of the literal (None: a name).  Bounded:
#: URLs come from the network.
_FAMILIES: Final[dict[str, socket.AddressFamily | None]] = {}


def _literal_family(host: str) -> socket.AddressFamily | None:
    """AF_INET or AF_INET6 when ``host`` is an address literal, else None."""
    if host in _FAMILIES:
        return _FAMILIES[host]
    family: socket.AddressFamily | None = None
    for candidate in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(candidate, host)
        except OSError:
            continue
        family = candidate
        break
    if len(_FAMILIES) >= 4096:
        _FAMILIES.clear()
    _FAMILIES[host] = family
    return family
