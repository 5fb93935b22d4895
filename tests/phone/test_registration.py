"""A line's registration, kept up: from its own port, one Call-ID, refreshes
before the granted expiry, retries after a failure (RFC 3261 10.2)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from phonecast.credentials import Secret
from phonecast.phone.config import LineConfig, PhoneConfig, PhoneSettings
from phonecast.phone.emulator import PhoneHost
from phonecast.phone.registration import granted_expiry
from phonecast.sip import Request, Response, SipUri, make_response, parse_message
from phonecast.sip.digest import DigestServer
from tests.ports import free_ports
from tests.waiting import until


@dataclass
class Registrar(asyncio.DatagramProtocol):
    """A registrar on loopback: challenges, verifies the digest, grants
    ``grant`` seconds in the Contact; answers 503 to the first ``refuse``
    REGISTERs.  Records each REGISTER with its source and arrival time."""

    grant: int
    refuse: int = 0
    seen: list[tuple[Request, tuple[str, int], float]] = field(default_factory=list)
    verdicts: list[bool] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None

    def __post_init__(self) -> None:
        self.digest = DigestServer("registrar")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast: asyncio's own datagram transport is no DatagramTransport subclass.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = parse_message(data)
        assert isinstance(request, Request) and request.method == "REGISTER"
        self.seen.append((request, addr, time.monotonic()))
        assert self.transport is not None
        if self.refuse:
            self.refuse -= 1
            answer = make_response(request, 503, to_tag="r")
        elif request.authorization is None:
            challenge = self.digest.challenge(time.monotonic())
            answer = make_response(
                request, 401, to_tag="r", headers=[("WWW-Authenticate", str(challenge))]
            )
        else:
            verdict = self.digest.verify(
                request.authorization,
                method="REGISTER",
                now=time.monotonic(),
                password="secret",
                expected_user="1001",
            )
            self.verdicts.append(verdict.ok)
            contact = request.get("Contact")
            answer = make_response(
                request,
                200 if verdict.ok else 403,
                to_tag="r",
                headers=[("Contact", f"{contact};expires={self.grant}")] if verdict.ok else [],
            )
        self.transport.sendto(bytes(answer), addr)


@dataclass
class Rig:
    host: PhoneHost
    registrar: Registrar
    line_port: int
    events: list[dict[str, Any]]
    codes: list[int | None] = field(default_factory=list)

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind]


async def _rig(grant: int, refuse: int = 0) -> Rig:
    loop = asyncio.get_running_loop()
    registrar = Registrar(grant, refuse)
    transport, _ = await loop.create_datagram_endpoint(
        lambda: registrar, local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    events: list[dict[str, Any]] = []
    host = PhoneHost()
    host.events.subscribe(events.append)
    await host.start()
    # Two phones: the registering line is not the host's first socket.
    first, line_port = free_ports(2)
    await host.add_phone(
        PhoneConfig("other", "127.0.0.1", (LineConfig("2002", Secret("x"), first),))
    )
    settings = PhoneSettings(
        registrar=f"127.0.0.1:{port}", register_expires=60, register_retry=0.3, tcp=False
    )
    phone = await host.add_phone(
        PhoneConfig(
            "desk", "127.0.0.1", (LineConfig("1001", Secret("secret"), line_port),), settings
        )
    )
    rig = Rig(host, registrar, line_port, events)
    rig.codes = await host.register(phone)
    return rig


@pytest.fixture
async def short_grant() -> AsyncIterator[Rig]:
    rig = await _rig(grant=1)
    yield rig
    await rig.host.close()
    assert rig.registrar.transport is not None
    rig.registrar.transport.close()


async def test_a_line_registers_from_its_own_port_and_refreshes_before_its_expiry(
    short_grant: Rig,
) -> None:
    """The REGISTER leaves from the line's port, and its Via and Contact
    name that port (the host's first socket belongs to another phone); the
    challenge is answered; the registrar's 1 s grant (its Contact's expires,
    not the 60 s asked) brings a refresh before that second is up (not
    before 70 % of it), with the same Call-ID and a higher CSeq, and with
    credentials under the nonce already answered (next nc, RFC 3261 22.1):
    no second challenge."""
    rig = short_grant
    assert rig.codes == [200]
    await until(lambda: len(rig.kinds("registered")) >= 2, what="the refresh's registered event")
    seen = rig.registrar.seen
    assert len(seen) >= 3, [r.cseq for r, _, _ in seen]  # 401, 200, then the refresh's 200
    assert seen[0][0].authorization is None
    first, again = seen[1][0].authorization, seen[2][0].authorization
    assert first is not None and again is not None
    assert (first.nonce, first.nc, again.nonce, again.nc) == (
        first.nonce,
        "00000001",
        first.nonce,
        "00000002",
    )
    for request, source, _ in seen:
        assert source[1] == rig.line_port
        assert request.top_via.port == rig.line_port
        contact = request.contact[0].uri
        assert isinstance(contact, SipUri) and contact.port == rig.line_port
        assert request.get("Expires") == "60"
    assert len({r.call_id for r, _, _ in seen}) == 1
    cseqs = [r.cseq.seq for r, _, _ in seen]
    assert cseqs == sorted(cseqs) and len(set(cseqs)) == len(cseqs)
    registered = rig.kinds("registered")
    assert len(registered) >= 2 and all(e["expires"] == 1 for e in registered)
    first_ok = seen[1][2]
    refresh = seen[2][2]
    # Not before 70 % of the 1 s grant (the timer wheel never fires early;
    # 10 ms for rounding).  The upper bound only tells the grant from the 60 s
    # asked (whose refresh would come at 48 s): generous, for a loaded machine.
    assert 0.7 - 0.01 <= refresh - first_ok < 1.0 + 2.0, refresh - first_ok
    assert all(rig.registrar.verdicts)


async def test_a_failed_registration_is_retried_after_the_retry_interval() -> None:
    """503 to the first REGISTER: a register_failed event, and the line
    tries again after register_retry (0.3 s here, give or take its spread),
    this time registering."""
    rig = await _rig(grant=60, refuse=1)
    try:
        assert rig.codes == [503]
        failed = rig.kinds("register_failed")
        # register_retry, plus up to a fifth (spread so that lines do not retry together)
        assert len(failed) == 1 and 0.3 <= failed[0]["retry_in"] <= 0.36
        await until(lambda: rig.kinds("registered"), what="the retry's registered event")
        assert [e["expires"] for e in rig.kinds("registered")] == [60]
        times = [t for _, _, t in rig.registrar.seen]
        assert times[1] - times[0] >= 0.3
        assert len({r.call_id for r, _, _ in rig.registrar.seen}) == 1
    finally:
        await rig.host.close()
        assert rig.registrar.transport is not None
        rig.registrar.transport.close()


async def test_closing_the_registrations_stops_the_refreshes(short_grant: Rig) -> None:
    """``Registrations.close`` alone (what the host's close does first)
    cancels the refresh the 1 s grant scheduled: the host and its endpoint
    still run, and nothing more reaches the registrar over twice the time
    the refresh would have taken.  (Closing the whole host would pass
    without it: the endpoint's close drops its timers anyway.)"""
    rig = short_grant
    assert rig.host._registrations is not None and rig.host.endpoint is not None
    rig.host._registrations.close()
    before = len(rig.registrar.seen)
    await asyncio.sleep(2.0)
    assert len(rig.registrar.seen) == before, [r.cseq for r, _, _ in rig.registrar.seen]
    assert len(rig.kinds("registered")) == 1


def _ok(contact: str | None, expires: str | None) -> Response:
    request = Request(
        "REGISTER",
        SipUri("127.0.0.1"),
        [
            ("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKreg"),
            ("From", "<sip:1001@127.0.0.1>;tag=a"),
            ("To", "<sip:1001@127.0.0.1>"),
            ("Call-ID", "reg@h"),
            ("CSeq", "1 REGISTER"),
        ],
    )
    headers = []
    if contact is not None:
        headers.append(("Contact", contact))
    if expires is not None:
        headers.append(("Expires", expires))
    return make_response(request, 200, to_tag="r", headers=headers)


MINE = SipUri("127.0.0.1", "1001", port=5070)


@pytest.mark.parametrize(
    ("contact", "expires", "granted"),
    [
        ("<sip:1001@127.0.0.1:5070>;expires=120", "600", 120),  # the binding's own first
        ("<sip:1001@127.0.0.9:5070>;expires=5, <sip:1001@127.0.0.1:5070>;expires=90", None, 90),
        ("<sip:1001@127.0.0.9:5070>;expires=5", "300", 300),  # only others': the header
        ("<sip:1001@127.0.0.1:5070>;expires=soon", "300", 300),  # unreadable: the header
        (None, None, 3600),  # nothing said: what was asked
    ],
)
def test_the_granted_expiry(contact: str | None, expires: str | None, granted: int) -> None:
    assert granted_expiry(_ok(contact, expires), MINE, 3600) == granted
