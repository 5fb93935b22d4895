"""How calls end and what keeps a phone busy: a BYE before the ACK, a long
ring's repeated 180, overlapping dials, and a deferred push whose fetch
could not even start."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from phonecast.credentials import Secret
from phonecast.net.endpoint import SipEndpoint
from phonecast.phone.config import LineConfig, PhoneConfig, PhoneSettings
from phonecast.phone.emulator import PhoneHost
from phonecast.phone.fetcher import Done
from phonecast.phone.httpget import FetchResult
from phonecast.push.payload import execute_payload
from phonecast.push.pusher import Destination, Pusher
from phonecast.sip import Request, Response, SipUri, Timers
from tests.phone.test_update_network import _request
from tests.ports import free_ports
from tests.waiting import until


@dataclass
class Rig:
    host: PhoneHost
    client: SipEndpoint
    port: int
    events: list[dict[str, Any]] = field(default_factory=list)

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind]

    def request(self, method: str, seq: int, to_tag: str = "") -> Request:
        call_id = f"endings-{self.port}@127.0.0.1"
        return _request(self.client, method, self.port, seq, to_tag, call_id=call_id)

    async def invite(self) -> asyncio.Queue[Response]:
        """Send an INVITE; every response it gets (provisional too) is queued."""
        got: asyncio.Queue[Response] = asyncio.Queue()

        def seen(response: Response | None, _why: str) -> None:
            if response is not None:
                got.put_nowait(response)

        dest = ("127.0.0.1", self.port)
        await self.client.send_request(self.request("INVITE", 1), "udp", dest, seen)
        return got


def _rig_factory(settings: PhoneSettings, **host_args: Any) -> Callable[[], Awaitable[Rig]]:
    async def make() -> Rig:
        host = PhoneHost(**host_args)
        await host.start()
        (port,) = free_ports(1)
        line = LineConfig("1001", Secret("pw"), port)
        await host.add_phone(PhoneConfig("p", "127.0.0.1", (line,), settings))
        client = SipEndpoint()
        await client.listen_udp("127.0.0.1", 0)
        rig = Rig(host, client, port)
        host.events.subscribe(rig.events.append)
        return rig

    return make


@pytest.fixture
async def quick_acks() -> AsyncIterator[Rig]:
    """A phone answering at once, whose 2xx waits 64*T1 = 1.9 s for its ACK."""
    rig = await _rig_factory(
        PhoneSettings(tcp=False, ring_seconds=0), call_timers=Timers(t1=0.03)
    )()
    yield rig
    await rig.client.close()
    await rig.host.close()


async def test_a_bye_before_the_ack_stops_the_2xx_resends_and_ends_the_call_once(
    quick_acks: Rig,
) -> None:
    """The caller hangs up before acknowledging: the 200 is not sent again,
    no BYE of the phone's own follows at 64*T1, and the call ends once."""
    rig = quick_acks
    responses = await rig.invite()
    ok = await asyncio.wait_for(responses.get(), 5)
    while ok.status_code < 200:
        ok = await asyncio.wait_for(responses.get(), 5)
    assert ok.status_code == 200
    bye, why = await rig.client.request(
        rig.request("BYE", 2, ok.to.tag or ""), "udp", ("127.0.0.1", rig.port), timeout=5
    )
    assert bye is not None and bye.status_code == 200, why
    resent = len(rig.kinds("retransmit"))
    await asyncio.sleep(2.5)  # past 64*T1, when the resends would have given up
    assert len(rig.kinds("retransmit")) == resent
    assert [e.get("reason") for e in rig.kinds("call") if e["state"] == "ended"] == ["BYE"]
    assert rig.kinds("sent_request") == []
    assert not rig.host.phones["p"].calls.busy


async def test_a_long_ring_sends_its_180_again_until_it_is_answered() -> None:
    """RFC 3261 13.3.1.1: a provisional response at every interval (a minute;
    shortened here), so that no proxy cancels a call left ringing."""
    rig = await _rig_factory(PhoneSettings(tcp=False, ring_seconds=1.2))()
    try:
        assert rig.host._calls is not None
        rig.host._calls.ring_refresh = 0.3
        responses = await rig.invite()
        codes: list[int] = []
        while not codes or codes[-1] < 200:
            codes.append((await asyncio.wait_for(responses.get(), 5)).status_code)
        ringing = [c for c in codes if c == 180]
        assert codes[-1] == 200 and len(ringing) >= 3, codes
    finally:
        await rig.client.close()
        await rig.host.close()


async def _push_dial(rig: Rig, number: str) -> None:
    outcome = await Pusher(rig.client).push(
        SipUri("127.0.0.1", "1001", port=rig.port),
        Secret("pw"),
        execute_payload([f"Dial:{number}"]),
        destinations=[Destination("udp", "127.0.0.1", rig.port)],
    )
    assert outcome.delivered, outcome


async def test_overlapping_dials_keep_the_phone_busy_until_the_last_one_hangs_up() -> None:
    """Each Dial: places a call lasting dial_seconds: a second dial while the
    first is up keeps the phone busy until the second's end, not the first's."""
    settings = PhoneSettings(tcp=False, auth_notify=False, dial_seconds=1.0)
    rig = await _rig_factory(settings)()
    try:
        phone = rig.host.phones["p"]
        await _push_dial(rig, "100")
        started = time.monotonic()
        await asyncio.sleep(0.6)
        await _push_dial(rig, "200")
        second = time.monotonic()
        await until(lambda: time.monotonic() - started > 1.2)  # the first call's end passed
        assert phone.calls.busy
        await until(lambda: not phone.calls.busy, timeout=5)
        assert time.monotonic() - second >= 0.95
    finally:
        await rig.client.close()
        await rig.host.close()


class FailingOnceFetcher:
    """A fetcher whose first start() fails outright; later ones succeed."""

    def __init__(self) -> None:
        self.started: list[str] = []

    @property
    def waiting(self) -> int:
        return 0

    def start(self, url: str, done: Done) -> None:
        self.started.append(url)
        if len(self.started) == 1:
            raise RuntimeError("no fetch for you")
        done(FetchResult(url, False, error="closed port"))

    async def close(self) -> None:
        return None


async def test_a_deferred_push_whose_fetch_cannot_start_does_not_hold_up_the_rest() -> None:
    """Two pushes deferred by a call; the first one's fetch fails to start
    (an internal fault): the second is still fetched once the phone is idle."""
    fetcher = FailingOnceFetcher()
    settings = PhoneSettings(tcp=False, auth_notify=False, dial_seconds=0.5)
    rig = await _rig_factory(settings, fetcher=fetcher)()
    try:
        await _push_dial(rig, "100")
        for page in ("first", "second"):
            outcome = await Pusher(rig.client).push(
                SipUri("127.0.0.1", "1001", port=rig.port),
                Secret("pw"),
                execute_payload([f"http://127.0.0.1:9/{page}"], priority=1),
                destinations=[Destination("udp", "127.0.0.1", rig.port)],
            )
            assert outcome.delivered
        assert [e["url"].rsplit("/", 1)[1] for e in rig.kinds("deferred")] == ["first", "second"]
        await until(lambda: len(fetcher.started) == 2)
        assert [url.rsplit("/", 1)[1] for url in fetcher.started] == ["first", "second"]
        assert rig.kinds("internal_error")
    finally:
        await rig.client.close()
        await rig.host.close()


async def test_only_the_ack_of_the_invite_answered_stops_its_2xx_resends(
    quick_acks: Rig,
) -> None:
    """RFC 3261 13.3.1.4: the ACK that stops a 2xx's resends is the one for
    that INVITE (same CSeq number); an ACK naming another (a late copy for
    an earlier INVITE of the dialog) leaves them going."""
    rig = quick_acks
    responses = await rig.invite()
    ok = await asyncio.wait_for(responses.get(), 5)
    while ok.status_code < 200:
        ok = await asyncio.wait_for(responses.get(), 5)
    assert rig.client.udp is not None
    dest = ("127.0.0.1", rig.port)
    rig.client.udp.sendto(bytes(rig.request("ACK", 7, ok.to.tag or "")), dest)
    before = len(rig.kinds("retransmit"))
    await until(lambda: len(rig.kinds("retransmit")) > before, what="a resend after the wrong ACK")
    rig.client.udp.sendto(bytes(rig.request("ACK", 1, ok.to.tag or "")), dest)
    await asyncio.sleep(0.3)  # the resends run at T1 = 30 ms doubling to T2
    settled = len(rig.kinds("retransmit"))
    await asyncio.sleep(1.0)
    assert len(rig.kinds("retransmit")) == settled
