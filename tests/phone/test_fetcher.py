"""The phone's HTTP fetch is bounded: size, redirects, time, schemes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from phonecast.phone.fetcher import Fetcher


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(body=b"<CiscoIPPhoneText/>", content_type="text/xml")

    async def big(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for _ in range(1000):  # 8 MB, chunked: no Content-Length to trust
            await resp.write(b"x" * 8192)
        return resp

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.5)
        return web.Response(text="late")

    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404)

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/big", big)
    app.router.add_get("/loop", loop)
    app.router.add_get("/slow", slow)
    app.router.add_get("/missing", missing)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


async def test_fetch_ok_and_failures(server: str) -> None:
    fetcher = Fetcher(timeout=0.5, max_bytes=64 * 1024, max_redirects=2)
    try:
        ok = await fetcher.fetch(server + "/ok")
        assert ok.ok and ok.status == 200 and ok.body == b"<CiscoIPPhoneText/>"
        assert ok.content_type is not None and ok.content_type.startswith("text/xml")
        big = await fetcher.fetch(server + "/big")
        assert not big.ok and "exceeds" in (big.error or "")
        loop = await fetcher.fetch(server + "/loop")
        assert not loop.ok and "redirects" in (loop.error or "")
        slow = await fetcher.fetch(server + "/slow")
        assert not slow.ok and slow.error == "timed out"
        missing = await fetcher.fetch(server + "/missing")
        assert not missing.ok and missing.status == 404
        assert (await fetcher.fetch("file:///etc/passwd")).error == "unsupported URL scheme 'file'"
        refused = await fetcher.fetch("http://127.0.0.1:1/x")
        assert not refused.ok and refused.error
    finally:
        await fetcher.close()
