"""The phone's HTTP fetch is bounded: size, redirects, time, schemes; TLS verified."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from phonecast.phone.fetcher import Fetcher, FetchResult, _Fetch, _SocketGet
from phonecast.phone.httpget import Exchange, outcome
from tests.tls import make_pki
from tests.waiting import until


def _app() -> web.Application:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(body=b"<CiscoIPPhoneText/>", content_type="text/xml")

    async def big(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for _ in range(1000):  # 8 MB, chunked: no Content-Length to trust
            await resp.write(b"x" * 8192)
        return resp

    async def declared(request: web.Request) -> web.Response:
        return web.Response(body=b"y" * 200_000, content_type="text/xml")

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def hop(request: web.Request) -> web.Response:
        raise web.HTTPFound("ok")  # relative: resolved against this URL

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2.5)
        return web.Response(text="late")

    async def drip(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_type = "text/xml"
        await resp.prepare(request)
        for _ in range(4):  # each read within the timeout, the whole well over it
            await resp.write(b"<!-- -->")
            await asyncio.sleep(0.4)
        return resp

    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404)

    app = web.Application()
    for path, handler in {
        "/ok": ok, "/big": big, "/declared": declared, "/loop": loop, "/hop": hop,
        "/slow": slow, "/drip": drip, "/missing": missing,
    }.items():  # fmt: skip
        app.router.add_get(path, handler)
    return app


async def _serve(ssl_context: object = None) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)  # type: ignore[arg-type]
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"{'https' if ssl_context else 'http'}://{host}:{port}"


@pytest.fixture(params=["address", "name"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """The test server, named by its address (the socket carrier) or by the
    name ``localhost`` (resolved: the asyncio transport carrier)."""
    runner, url = await _serve()
    if request.param == "name":
        url = url.replace("127.0.0.1", "localhost")
    yield url
    await runner.cleanup()


async def test_fetch_ok_and_failures(server: str) -> None:
    # A second of timeout: /slow is 2.5 s late, /drip's reads 0.4 s apart
    # (1.6 s in all), so neither verdict hangs on how loaded the machine is.
    fetcher = Fetcher(timeout=1.0, max_bytes=64 * 1024, max_redirects=2)
    try:
        ok = await fetcher.fetch(server + "/ok")
        assert ok.ok and ok.status == 200 and ok.body == b"<CiscoIPPhoneText/>"
        assert ok.content_type is not None and ok.content_type.startswith("text/xml")
        big = await fetcher.fetch(server + "/big")
        assert not big.ok and "exceeds" in (big.error or "")
        declared = await fetcher.fetch(server + "/declared")
        assert not declared.ok and declared.error == "body of 200000 bytes exceeds 65536"
        loop = await fetcher.fetch(server + "/loop")
        assert not loop.ok and loop.error == "more than 2 redirects"
        hop = await fetcher.fetch(server + "/hop")
        assert hop.ok and hop.url == server + "/ok"
        slow = await fetcher.fetch(server + "/slow")
        assert not slow.ok and slow.error == "timed out"
        drip = await fetcher.fetch(server + "/drip")
        assert drip.ok and drip.body == b"<!-- -->" * 4  # the timeout bounds each read
        missing = await fetcher.fetch(server + "/missing")
        assert not missing.ok and missing.status == 404 and missing.error == "HTTP 404"
        assert (await fetcher.fetch("file:///etc/passwd")).error == "unsupported URL scheme 'file'"
        refused = await fetcher.fetch("http://127.0.0.1:1/x")
        assert not refused.ok and (refused.error or "").startswith("ConnectionRefusedError")
    finally:
        await fetcher.close()


async def test_a_server_that_hangs_up_without_answering() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await Fetcher(timeout=1).fetch(f"http://127.0.0.1:{port}/x")
        assert not result.ok and result.error and result.status is None
    finally:
        server.close()
        await server.wait_closed()


async def test_https_is_verified(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    runner, url = await _serve(pki.server_context())
    try:
        untrusted = await Fetcher(timeout=2).fetch(url + "/ok")
        assert not untrusted.ok and "SSLCertVerificationError" in (untrusted.error or "")
        trusted = await Fetcher(timeout=2, tls=pki.client_context()).fetch(url + "/ok")
        assert trusted.ok and trusted.body == b"<CiscoIPPhoneText/>"
    finally:
        await runner.cleanup()


async def test_connections_are_limited_and_queueing_is_not_a_timeout(server: str) -> None:
    """One connection at a time: the fetches queued behind a server that
    stalls for the whole timeout still succeed (they waited longer than the
    timeout, but waiting for a connection is not a failed fetch)."""
    fetcher = Fetcher(timeout=0.6, limit=1)
    loop = asyncio.get_running_loop()
    start = loop.time()
    results = await asyncio.gather(
        fetcher.fetch(server + "/slow"), *(fetcher.fetch(server + "/ok") for _ in range(5))
    )
    assert not results[0].ok and results[0].error == "timed out"
    assert all(r.ok for r in results[1:])
    assert loop.time() - start >= 0.6


def test_fetch_on_uvloop() -> None:
    """The commands run on uvloop, whose transports are not asyncio's
    classes: a fetch must work there too."""
    uvloop = pytest.importorskip("uvloop", reason="uvloop is not installed")

    async def scenario() -> tuple[bool, bytes, str | None]:
        runner, url = await _serve()
        try:
            ok = await Fetcher(timeout=2).fetch(url + "/ok")
            refused = await Fetcher(timeout=2).fetch("http://127.0.0.1:1/x")
        finally:
            await runner.cleanup()
        return ok.ok, ok.body, refused.error

    ok, body, refused = uvloop.run(scenario())
    assert ok and body == b"<CiscoIPPhoneText/>"
    assert refused is not None and refused.startswith("ConnectionRefusedError")


async def _canned(
    reply: bytes, seen: list[bytes] | None = None, sock: socket.socket | None = None
) -> tuple[asyncio.Server, str]:
    """A server that reads the request head, writes ``reply`` and closes
    (on ``sock`` if given, else on a port of its own)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if seen is not None:
            seen.append(head)
        writer.write(reply)
        await writer.drain()
        writer.close()

    if sock is not None:
        server = await asyncio.start_server(answer, sock=sock)
    else:
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


@pytest.mark.parametrize(
    ("reply", "ok", "body", "error"),
    [
        # no Content-Length, no chunking: the body runs to the close (RFC 9112 6.3)
        (b"HTTP/1.0 200 OK\r\nContent-Type: text/xml\r\n\r\n<a/>", True, b"<a/>", None),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n<a\r\n2\r\n/>\r\n0\r\n\r\n",
         True, b"<a/>", None),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n<a/>",
         True, b"<a/>", None),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n<a/>", False, b"<a/>",
         "the server closed the connection before the response ended"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n<a\r\n", False, b"<a",
         "the server closed the connection before the response ended"),
        (b"HTTP/1.1 2x0 OK\r\n\r\n", False, b"", "malformed response"),
        (b"HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 0\r\n\r\n", False, b"",
         "malformed response"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"p" * 20_000 + b"\r\n\r\n", False, b"",
         "response header block exceeds 16384 bytes"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-Pad: pppppppp\r\n" * 1500 + b"\r\n", False, b"",
         "response header block exceeds 16384 bytes"),
        (b"HTTP/1.1 199 Odd\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\nContent-Length: 4\r\n"
         b"\r\n<a/>", False, b"", "an interim (1xx) response with content"),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\n<a/>", False,
         b"", "unsupported content coding 'gzip'"),
        (b"HTTP/1.1 204 No Content\r\n\r\n", False, b"", "204 No Content: no page"),
    ],
)  # fmt: skip
async def test_response_framing_and_faults(
    reply: bytes, ok: bool, body: bytes, error: str | None
) -> None:
    server, url = await _canned(reply)
    try:
        result = await Fetcher(timeout=2).fetch(url + "/x")
    finally:
        server.close()
        await server.wait_closed()
    assert result.ok is ok
    if ok:
        assert result.body == body and result.status == 200
    else:
        assert result.error is not None and result.error.startswith(error or "")


async def test_a_hostile_url_cannot_add_lines_to_the_request() -> None:
    seen: list[bytes] = []
    server, url = await _canned(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", seen)
    try:
        result = await Fetcher(timeout=2).fetch(url + "/a b\u00e9/c?q=1 2&x=%0D%0AEvil: 1")
    finally:
        server.close()
        await server.wait_closed()
    assert result.ok
    lines = seen[0].split(b"\r\n")
    assert lines[0] == b"GET /a%20b%C3%A9/c?q=1%202&x=%0D%0AEvil:%201 HTTP/1.1"
    names = [line.split(b":")[0] for line in lines[1:] if line]
    assert names == [b"Host", b"User-Agent", b"Accept", b"Connection"]


@pytest.mark.parametrize("url", ["http://exa mple.test/", 'http://a"b/', "http:///nohost"])
async def test_a_url_without_a_valid_host_is_refused_before_connecting(url: str) -> None:
    result = await Fetcher(timeout=1).fetch(url)
    assert not result.ok
    assert result.error in ("URL has no valid host", "URL has no host")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])  # the two carriers
async def test_a_finished_fetch_is_freed_without_the_cyclic_collector(host: str) -> None:
    """The exchange drops its parser (which holds it for callbacks), the
    carrier its transport and its deadline (which holds the carrier) when a
    fetch ends, so a fleet's thousands of fetches are freed by reference
    counts instead of waiting in cycles for the collector."""
    from phonecast.phone.fetcher import _Carrier, _Idle, _SocketGet
    from phonecast.phone.httpget import Exchange

    server, url = await _canned(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n<a/>")
    url = url.replace("127.0.0.1", host)
    fetcher = Fetcher(timeout=2)
    gc.collect()
    gc.disable()
    try:
        for _ in range(5):
            assert (await fetcher.fetch(url + "/x")).ok
        await asyncio.sleep(0.05)  # the transports report connection_lost
        kinds = (Exchange, _Idle, _SocketGet, _Carrier)
        alive = [o for o in gc.get_objects() if isinstance(o, kinds)]
        assert alive == []
    finally:
        gc.enable()
        await fetcher.close()
        server.close()
        await server.wait_closed()


async def test_start_calls_back_once_without_a_task() -> None:
    """The emulator starts fetches from its SIP handler: a plain http fetch
    of an address needs no task, and each start gets exactly one result."""
    runner, server = await _serve()
    fetcher = Fetcher(timeout=2)
    results: list[FetchResult] = []
    finished = asyncio.Event()

    def done(result: FetchResult) -> None:
        results.append(result)
        if len(results) == 3:
            finished.set()

    try:
        for path in ("/ok", "/missing", "/hop"):
            fetcher.start(server + path, done)
        assert not fetcher._tasks
        await asyncio.wait_for(finished.wait(), 2)
        await asyncio.sleep(0.05)  # nothing more arrives
        assert sorted((r.url.rsplit("/", 1)[1], r.status) for r in results) == [
            ("missing", 404), ("ok", 200), ("ok", 200),
        ]  # fmt: skip
        assert not fetcher._sockets
    finally:
        await fetcher.close()
        await runner.cleanup()


async def test_an_ipv6_address_is_fetched_over_the_socket_carrier() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    runner = web.AppRunner(_app())
    await runner.setup()
    site = web.TCPSite(runner, "::1", 0)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        pytest.skip(f"no IPv6 loopback on this machine ({exc})")
    port = runner.addresses[0][1]
    try:
        result = await Fetcher(timeout=2).fetch(f"http://[::1]:{port}/ok")
        assert result.ok and result.body == b"<CiscoIPPhoneText/>"
    finally:
        await runner.cleanup()


async def test_close_ends_fetches_under_way_as_failures(server: str) -> None:
    fetcher = Fetcher(timeout=5, limit=1)
    results: list[FetchResult] = []
    fetcher.start(server + "/slow", results.append)
    fetcher.start(server + "/ok", results.append)  # waiting for its turn: told too
    await asyncio.sleep(0.2)
    await fetcher.close()
    assert len(results) == 2 and not any(r.ok for r in results)
    assert all("the fetcher was closed" in (r.error or "") for r in results)


async def test_a_fetch_refused_at_once_schedules_no_timer() -> None:
    """On loopback a closed port is known at the first send: such a fetch
    ends before start() returns and needs neither a loop registration nor a
    deadline on the wheel."""
    fetcher = Fetcher(timeout=2)
    results: list[FetchResult] = []
    fetcher.start("http://127.0.0.1:1/x", results.append)
    try:
        if results:  # refused at once (this kernel does so on loopback)
            assert len(fetcher.wheel) == 0
        else:  # refused later: the deadline waits with the socket
            await asyncio.sleep(0.1)
        assert len(results) == 1 and (results[0].error or "").startswith("ConnectionRefused")
    finally:
        await fetcher.close()


async def test_urls_are_prepared_once_and_the_table_is_bounded(server: str) -> None:
    """A URL pushed again reuses its prepared request (and a refused one its
    reason); the table of them stays bounded whatever URLs arrive."""
    from phonecast.phone import fetcher as module

    fetcher = Fetcher(timeout=1)
    try:
        for _ in range(2):  # the second time from the table: same outcome
            assert (await fetcher.fetch(server + "/ok")).ok
            assert (await fetcher.fetch("gopher://x/")).error == "unsupported URL scheme 'gopher'"
            assert (await fetcher.fetch("http://:80/")).error == "URL has no host"
        assert len(fetcher._targets) == 3
        for n in range(module._TARGETS_KEPT + 10):
            await fetcher.fetch(f"ftp://host/{n}")
        assert len(fetcher._targets) <= module._TARGETS_KEPT
    finally:
        await fetcher.close()


async def test_a_fetch_socket_is_non_blocking_and_not_inherited() -> None:
    """The fetch socket is the C one, made non-blocking and close-on-exec as
    it is created: a blocking one would stall the whole fleet, an inherited
    one would leak into child processes."""
    import os

    listener = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    fetcher = Fetcher(timeout=1)
    results: list[FetchResult] = []
    try:
        fetcher.start(f"http://127.0.0.1:{listener.getsockname()[1]}/x", results.append)
        (get,) = fetcher._sockets
        assert get._sock.getblocking() is False
        assert os.get_inheritable(get._sock.fileno()) is False
    finally:
        await fetcher.close()
        listener.close()
    assert len(results) == 1 and not results[0].ok


async def _refused_then_served() -> tuple[list[str | None], int, bool, bytes, int]:
    """Two GETs to a bound port that does not listen yet, then one once it does."""
    from phonecast.phone import fetcher as module

    bound = socket.socket()
    bound.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{bound.getsockname()[1]}/x"
    fetcher = Fetcher(timeout=2)
    errors: list[str | None] = []
    try:
        first = await fetcher.fetch(url)
        (spare,) = fetcher._spares[socket.AF_INET]
        second = await fetcher.fetch(url)
        errors = [first.error, second.error]
        reused = fetcher._spares[socket.AF_INET] == [spare]  # the same socket, kept again
        server, _ = await _canned(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n<a/>", sock=bound)
        try:
            served = await fetcher.fetch(url)  # through the kept socket
        finally:
            server.close()
            await server.wait_closed()
        left = len(fetcher._spares[socket.AF_INET])
        assert module._SPARES_KEPT >= 1
    finally:
        await fetcher.close()
        bound.close()
    return errors, left, reused and served.ok, served.body, len(fetcher._spares)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_refused_socket_serves_the_next_get(loop: str) -> None:
    """A socket whose connect was refused is kept and connects again (Linux
    allows it): the next GET, refused or answered, reports exactly what it
    would on a new socket, and close() lets go of what is kept."""
    if loop == "uvloop":
        run = pytest.importorskip("uvloop", reason="uvloop is not installed").run
    else:
        run = asyncio.run
    errors, left, reused, body, after_close = run(_refused_then_served())
    assert all((e or "").startswith("ConnectionRefusedError") for e in errors), errors
    assert reused and body == b"<a/>"
    assert left == 0  # answered: the socket was closed after, not kept
    assert after_close == 0


async def test_refused_sockets_kept_are_bounded() -> None:
    """However many GETs are refused at once, only a few sockets are kept."""
    from phonecast.phone import fetcher as module

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))  # bound, not listening: refuses
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/x"
    fetcher = Fetcher(timeout=2)
    results: list[FetchResult] = []
    try:
        gets = [module._SocketGet(fetcher, module._Fetch(url, 0, results.append),
                                  socket.socket(), b"GET / HTTP/1.0\r\n\r\n")
                for _ in range(module._SPARES_KEPT + 5)]  # fmt: skip
        for get in gets:
            get._sock.setblocking(False)
            fetcher._active += 1
            get.open(("127.0.0.1", listener.getsockname()[1]))
        await asyncio.sleep(0.1)
        assert len(results) == len(gets)
        assert len(fetcher._spares[socket.AF_INET]) == module._SPARES_KEPT
    finally:
        await fetcher.close()
        listener.close()


class _CountingSocket(socket.socket):
    """A socket that counts the calls that reach the kernel in a GET."""

    calls: list[str]

    def connect_ex(self, address: object) -> int:
        self.calls.append("connect")
        return super().connect_ex(address)  # type: ignore[arg-type]

    def send(self, data: object, flags: int = 0) -> int:
        self.calls.append("send")
        return super().send(data, flags)  # type: ignore[arg-type]


def _open_counted(
    fetcher: Fetcher, address: tuple[str, int], results: list[FetchResult]
) -> tuple[_SocketGet, _CountingSocket]:
    """A GET of http://x/ on a counting socket, opened as Fetcher._attempt
    opens one (holding a turn): the GET and its socket."""
    sock = _CountingSocket()
    sock.calls = []
    sock.setblocking(False)
    get = _SocketGet(fetcher, _Fetch("http://x/", 0, results.append), sock,
                     b"GET / HTTP/1.0\r\n\r\n")  # fmt: skip
    fetcher._active += 1
    get.open(address)
    return get, sock


async def test_a_refused_get_costs_two_connects_and_keeps_its_socket_ready() -> None:
    """On loopback a refusal is over when connect returns: a second connect
    reads it (no send, no clearing connect afterwards), the socket is kept,
    and it connects again at once."""

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))  # bound, not listening: refuses
    address = ("127.0.0.1", listener.getsockname()[1])
    fetcher = Fetcher(timeout=2)
    results: list[FetchResult] = []
    try:
        _, sock = _open_counted(fetcher, address, results)
        (result,) = results
        # The very text the general path writes for the same refusal.
        exchange = Exchange(1024)
        exchange.finish(OSError(errno.ECONNREFUSED, os.strerror(errno.ECONNREFUSED)))
        general = outcome("http://x/", exchange)
        assert isinstance(general, FetchResult)
        assert result == general
        assert (result.error or "").startswith("ConnectionRefusedError")
        assert sock.calls == ["connect", "connect"]
        assert fetcher._spares[socket.AF_INET] == [sock]
        assert sock.connect_ex(address) == errno.EINPROGRESS  # ready: a new attempt starts
    finally:
        await fetcher.close()
        listener.close()


def test_a_refusal_read_elsewhere_is_cleared_before_the_socket_is_kept() -> None:
    """A refusal reported by send or SO_ERROR (a connect that was still under
    way) leaves the socket needing one more connect; _recycle makes it and
    keeps the socket only when it answers ECONNABORTED."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    address = ("127.0.0.1", listener.getsockname()[1])
    fetcher = Fetcher(timeout=2)
    sock = socket.socket()
    sock.setblocking(False)
    try:
        assert sock.connect_ex(address) == errno.EINPROGRESS
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNREFUSED
        fetcher._recycle(sock, address, cleared=False)
        assert fetcher._spares[socket.AF_INET] == [sock]
        assert sock.connect_ex(address) == errno.EINPROGRESS
    finally:
        sock.close()
        listener.close()


async def test_a_connect_still_under_way_waits_for_writability_then_times_out() -> None:
    """A connect whose handshake is not over when connect returns (here: the
    listener's accept queue is full, so its SYN goes unanswered) is waited
    on, not taken for a failure, and ends at the timeout."""

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    filler = socket.socket()
    filler.setblocking(False)
    filler.connect_ex(address)  # takes the one place in the queue
    fetcher = Fetcher(timeout=0.3)
    results: list[FetchResult] = []
    try:
        get, sock = _open_counted(fetcher, address, results)
        assert results == [] and get._writing
        assert sock.calls == ["connect", "connect"]
        await asyncio.sleep(1.0)
        (result,) = results
        assert result.error == "timed out"
    finally:
        await fetcher.close()
        filler.close()
        listener.close()


def _closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


async def test_thousands_of_fetches_refused_at_once_hand_their_turns_on_in_a_loop() -> None:
    """A fleet pushed while its content server is down: every queued fetch
    is refused inside its own start.  Each handed the turn to the next from
    within its end, nesting a call per waiting fetch: a RecursionError (all
    lost, the one under way too) on the sources, a crashed process compiled
    past ~100,000.  They now all end, in order, and so does the one that
    held the turn meanwhile."""
    listener = socket.socket()  # accepts and never answers: holds the turn
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    fetcher = Fetcher(timeout=0.3, limit=1)
    port = _closed_port()
    ended: list[tuple[str, bool]] = []
    count = 3000
    try:
        holder = f"http://127.0.0.1:{listener.getsockname()[1]}/slow"
        fetcher.start(holder, lambda r: ended.append((r.url, r.ok)))
        for n in range(count):
            fetcher.start(f"http://127.0.0.1:{port}/{n}", lambda r: ended.append((r.url, r.ok)))
        assert fetcher.waiting == count
        await until(lambda: len(ended) == count + 1, what="every fetch ended")
        # The holder timed out; its turn went down the queue before it heard.
        assert ended[-1] == (holder, False)
        urls = [url for url, _ in ended[:-1]]
        assert urls == [f"http://127.0.0.1:{port}/{n}" for n in range(count)]
        assert not any(ok for _, ok in ended) and fetcher.waiting == 0 and fetcher._active == 0
    finally:
        listener.close()
        await fetcher.close()


async def test_a_failing_callback_or_start_does_not_strand_the_queue() -> None:
    """A caller's callback that raises is reported to the loop's exception
    handler, and a start that raises (a fault of ours; here a corrupt entry
    in the fetcher's table of prepared URLs) ends its own fetch as failed:
    in neither case are the fetches behind left waiting, or a turn lost."""
    loop = asyncio.get_running_loop()
    reported: list[BaseException | None] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context.get("exception")))
    fetcher = Fetcher(timeout=0.3, limit=1)
    port = _closed_port()
    ended: list[str] = []

    def raising(result: FetchResult) -> None:
        ended.append(result.url)
        raise RuntimeError("the caller's fault")

    broken_url = f"http://127.0.0.1:{port}/broken"
    fetcher._targets[broken_url] = 42  # type: ignore[assignment]
    results: list[FetchResult] = []
    try:
        fetcher.start(f"http://127.0.0.1:{port}/first", raising)
        fetcher.start(broken_url, results.append)
        fetcher.start(f"http://127.0.0.1:{port}/last", results.append)
        await until(lambda: len(results) == 2, what="both later fetches ended")
        assert ended == [f"http://127.0.0.1:{port}/first"]
        assert [type(e) for e in reported] == [RuntimeError]
        broken, last = results
        assert broken.error is not None and broken.error.startswith("could not start: TypeError")
        assert not broken.ok
        assert last.url.endswith("/last") and not last.ok
        assert fetcher._active == 0 and fetcher.waiting == 0
    finally:
        loop.set_exception_handler(None)
        await fetcher.close()


async def test_a_redirect_to_a_location_urljoin_refuses_ends_the_fetch_and_frees_its_turn() -> None:
    """``urljoin`` raises for some Locations (an unclosed IPv6 bracket):
    that escaped the end of the GET, so the fetch never ended and its turn
    was never freed; a content server could thus wedge every later fetch."""
    server, url = await _canned(b"HTTP/1.1 302 Found\r\nLocation: http://[::1/x\r\n\r\n")
    fetcher = Fetcher(timeout=2, limit=1)
    try:
        results = await asyncio.wait_for(
            asyncio.gather(fetcher.fetch(url + "/a"), fetcher.fetch(url + "/b")), 5
        )
        assert [(r.ok, r.status, r.error) for r in results] == [
            (False, 302, "a redirect to an invalid Location")
        ] * 2
        assert fetcher._active == 0
    finally:
        server.close()
        await server.wait_closed()
        await fetcher.close()


async def _dripping() -> tuple[asyncio.Server, int]:
    """A server that sends a response's head, then a body byte every 50 ms
    for ever: always within a read timeout, never done."""

    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            for _ in range(400):  # bounded: 20 s at most
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.05)
        writer.close()

    server = await asyncio.start_server(drip, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])  # the two carriers
async def test_a_server_dripping_within_the_read_timeout_meets_the_fetch_deadline(
    host: str,
) -> None:
    """Each read comes well within the timeout, so only the whole fetch's
    deadline ends it, and the fetch queued behind it (one turn) then runs:
    before, a drip of a byte a timeout held a turn for days."""
    server, port = await _dripping()
    ok_server, ok_url = await _canned(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 4\r\n\r\n<a/>"
    )
    fetcher = Fetcher(timeout=0.5, deadline=1.0, limit=1)
    loop = asyncio.get_running_loop()
    try:
        start = loop.time()
        slow, good = await asyncio.wait_for(
            asyncio.gather(fetcher.fetch(f"http://{host}:{port}/slow"), fetcher.fetch(ok_url)), 10
        )
        assert not slow.ok and slow.error == "timed out: the fetch took more than 1 s in all"
        assert good.ok and good.body == b"<a/>"
        assert 0.9 <= loop.time() - start < 5
    finally:
        for s in (server, ok_server):
            s.close()
        await fetcher.close()


async def test_the_deadline_covers_redirects_and_defaults_to_three_timeouts() -> None:
    """A redirect does not restart the whole fetch's clock."""
    assert Fetcher(timeout=2).deadline == 6
    server, port = await _dripping()

    async def moved(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(0.6)  # within the read timeout, most of the deadline
        writer.write(f"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/\r\n\r\n".encode())
        writer.close()

    hop = await asyncio.start_server(moved, "127.0.0.1", 0)
    hop_port = hop.sockets[0].getsockname()[1]
    fetcher = Fetcher(timeout=0.8, deadline=1.0)
    loop = asyncio.get_running_loop()
    try:
        start = loop.time()
        result = await asyncio.wait_for(fetcher.fetch(f"http://127.0.0.1:{hop_port}/"), 10)
        assert result.error == "timed out: the fetch took more than 1 s in all"
        assert loop.time() - start < 1.5  # not 0.6 + a fresh second
    finally:
        for s in (server, hop):
            s.close()
        await fetcher.close()


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://[zz]/x", "invalid URL"),
        ("http://[::1/x", "invalid URL"),
        ("http://127.0.0.1:0/x", "invalid port in URL"),
        ("http://127.0.0.1:99999/x", "invalid port in URL"),
    ],
)
async def test_urls_urlsplit_refuses_are_refused_by_name(url: str, error: str) -> None:
    """Not as "could not start: ValueError...", the text kept for faults of
    ours, and port 0 is not taken for the default port."""
    result = await Fetcher(timeout=1).fetch(url)
    assert not result.ok and result.error == error


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])  # the two carriers
async def test_close_leaves_nothing_open_when_a_callback_starts_another_fetch(host: str) -> None:
    """A fetch's callback may start another (the emulator's do): one run by
    close() opened a socket or a task close() had already passed, its timer
    then dropped with the wheel, so it stayed open for good; and start()
    after close() went on fetching.  Both now end at once, failed."""
    listener = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    url = f"http://{host}:{listener.getsockname()[1]}/x"
    fetcher = Fetcher(timeout=5)
    heard: list[tuple[str, str | None]] = []

    def again(result: FetchResult) -> None:
        heard.append(("first", result.error))
        fetcher.start(url, lambda second: heard.append(("second", second.error)))

    try:
        fetcher.start(url, again)
        await asyncio.sleep(0.2)  # connected, waiting for the answer
        await asyncio.wait_for(fetcher.close(), 5)
        assert heard == [
            ("first", "ConnectionAbortedError: the fetcher was closed"),
            ("second", "the fetcher is closed"),
        ]
        assert not fetcher._sockets and not fetcher._tasks and fetcher._active == 0
        late: list[FetchResult] = []
        fetcher.start(url, late.append)
        assert [r.error for r in late] == ["the fetcher is closed"]  # before start returned
        assert not fetcher._sockets and not fetcher._tasks and fetcher._active == 0
    finally:
        await fetcher.close()
        listener.close()


async def test_a_redirect_ending_after_close_is_not_followed() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    fetcher = Fetcher(timeout=5)
    told: list[FetchResult] = []
    try:
        await fetcher.close()
        fetcher._active += 1  # as a GET under way holds its turn
        fetcher._ended(_Fetch("http://127.0.0.1:1/a", 3, told.append),
                       f"http://127.0.0.1:{listener.getsockname()[1]}/b")  # fmt: skip
        assert [(r.url, r.error) for r in told] == [
            ("http://127.0.0.1:1/a", "the fetcher is closed")
        ]
        assert not fetcher._sockets and not fetcher._tasks and fetcher._active == 0
    finally:
        await fetcher.close()
        listener.close()


async def test_close_tells_the_fetches_waiting_for_a_turn() -> None:
    """They were dropped unheard: a coroutine awaiting fetch() never ended."""
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/x"
    fetcher = Fetcher(timeout=5, limit=1)
    try:
        fetches = [asyncio.ensure_future(fetcher.fetch(url)) for _ in range(3)]
        await asyncio.sleep(0.1)
        await fetcher.close()
        results = await asyncio.wait_for(asyncio.gather(*fetches), 2)
        assert [r.error for r in results] == [
            "ConnectionAbortedError: the fetcher was closed",
            "the fetcher was closed",
            "the fetcher was closed",
        ]
        assert fetcher._active == 0 and fetcher.waiting == 0
    finally:
        await fetcher.close()
        listener.close()


async def test_a_fetch_whose_task_never_ran_is_told_at_close() -> None:
    """A task cancelled before its first step never runs its coroutine, so
    the fetch it carried ended unheard, holding its turn."""
    fetcher = Fetcher(timeout=5)
    told: list[FetchResult] = []
    fetcher.start("http://localhost:1/x", told.append)
    assert fetcher._tasks and not told
    await fetcher.close()  # not in a task of its own: the fetch's task has not run yet
    assert [r.error for r in told] == ["the fetcher was closed"]
    assert not fetcher._tasks and fetcher._active == 0
