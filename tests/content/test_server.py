"""The content server hosts per-phone URLs and records each fetch."""

from __future__ import annotations

import aiohttp

from phonecast.content import ContentServer, Fetch


async def test_publish_fetch_and_record() -> None:
    fetches: list[Fetch] = []
    server = ContentServer("127.0.0.1", 0, on_fetch=fetches.append, clock=lambda: 1234.5)
    base = await server.start()
    try:
        url_a = server.publish("phone-a", b"<CiscoIPPhoneText/>")
        url_b = server.publish("phone-b", b"<b/>")
        assert url_a.startswith(base + "/c/") and url_a != url_b
        assert len(url_a.rsplit("/", 1)[1]) >= 22  # 128-bit token
        async with aiohttp.ClientSession() as http:
            async with http.get(url_a, headers={"User-Agent": "SPA504G"}) as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"] == "text/xml; charset=utf-8"
                assert await resp.read() == b"<CiscoIPPhoneText/>"
            async with http.get(base + "/c/not-a-token") as resp:
                assert resp.status == 404
        assert [(f.phone, f.at, f.source, f.status, f.user_agent) for f in fetches] == [
            ("phone-a", 1234.5, "127.0.0.1", 200, "SPA504G")
        ]
        assert (server.fetches, server.unknown) == (1, 1)
        server.withdraw(url_a.rsplit("/", 1)[1])
        async with aiohttp.ClientSession() as http, http.get(url_a) as resp:
            assert resp.status == 404
    finally:
        await server.stop()


async def test_public_url_overrides_base() -> None:
    server = ContentServer("127.0.0.1", 0, public_url="http://phones.example.net:8080/")
    try:
        assert await server.start() == "http://phones.example.net:8080"
        assert server.publish("p", b"x").startswith("http://phones.example.net:8080/c/")
    finally:
        await server.stop()


async def test_a_fetch_is_reported_only_once_its_page_was_written() -> None:
    """The report's "confirmed" is this callback.  It once ran before the
    answer, so a phone whose connection broke before its page went (or that
    was answered an error) was counted as served.  A client that asks for a
    page too large for the socket buffers, reads nothing and resets its
    connection gets no page: no fetch is reported, and it is counted as
    undelivered."""
    import asyncio
    import socket
    import struct

    fetches: list[Fetch] = []
    server = ContentServer("127.0.0.1", 0, on_fetch=fetches.append)
    base = await server.start()
    try:
        url = server.publish("phone-a", b"x" * (64 << 20))
        host, port = base.removeprefix("http://").split(":")
        sock = socket.create_connection((host, int(port)))
        sock.sendall(f"GET {url.removeprefix(base)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await asyncio.sleep(0.3)  # the server is writing, stalled on the full buffers
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # a reset, as a phone that gave up
        for _ in range(100):
            if server.undelivered:
                break
            await asyncio.sleep(0.02)
        assert (server.fetches, server.undelivered, fetches) == (1, 1, [])
    finally:
        await server.stop()


async def test_only_content_and_health_are_served() -> None:
    fetches: list[Fetch] = []
    server = ContentServer("127.0.0.1", 0, on_fetch=fetches.append)
    base = await server.start()
    try:
        url = server.publish("phone-a", b"<a/>")
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/healthz") as resp:
                assert resp.status == 200 and await resp.text() == "ok"
            async with http.head(url) as resp:
                assert resp.status == 200
            async with http.post(url) as resp:
                assert resp.status == 405 and resp.headers["Allow"] == "GET, HEAD"
            for path in ("/", "/c/", "/c/a/b", "/other"):
                async with http.get(base + path) as resp:
                    assert resp.status == 404, path
            async with http.get(url + ".xml") as resp:  # the suffix phones may add
                assert resp.status == 200 and await resp.read() == b"<a/>"
        assert [f.phone for f in fetches] == ["phone-a"]  # the GET: a HEAD gets no page
        assert server.unknown == 0  # paths that are not /c/<token> are not guesses
    finally:
        await server.stop()
