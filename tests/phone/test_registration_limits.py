"""What a registrar may make a line do: shorten its expiry but not lengthen
it, and ask for a longer one with 423 (RFC 3261 10.2.8, 10.3)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import pytest

from phonecast.credentials import Secret
from phonecast.phone.config import LineConfig, PhoneConfig, PhoneSettings
from phonecast.phone.emulator import PhoneHost
from phonecast.phone.registration import MAX_MIN_EXPIRES, _min_expires, granted_expiry
from phonecast.phone.state import PhoneState
from phonecast.sip import Request, Response, SipUri, make_response, parse_message
from tests.ports import free_ports

MINE = SipUri("127.0.0.1", "1001", port=5070)


def _answer(code: int, headers: list[tuple[str, str]]) -> Response:
    request = Request(
        "REGISTER",
        SipUri("127.0.0.1"),
        [
            ("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKlimits"),
            ("From", "<sip:1001@127.0.0.1>;tag=a"),
            ("To", "<sip:1001@127.0.0.1>"),
            ("Call-ID", "limits@h"),
            ("CSeq", "1 REGISTER"),
        ],
    )
    return make_response(request, code, to_tag="r", headers=headers)


@pytest.mark.parametrize(
    ("headers", "granted"),
    [
        ([("Contact", "<sip:1001@127.0.0.1:5070>;expires=7200")], 3600),  # never more than asked
        ([("Expires", "99999")], 3600),
        ([("Contact", "<sip:1001@127.0.0.1:5070>;expires=²")], 3600),  # not ASCII digits
        ([("Contact", "<sip:1001@127.0.0.1:5070>;expires=1e400")], 3600),
    ],
)
def test_a_registrar_can_shorten_the_expiry_but_never_lengthen_it(
    headers: list[tuple[str, str]], granted: int
) -> None:
    assert granted_expiry(_answer(200, headers), MINE, 3600) == granted


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("7200", 7200), (" 60 ", 60), ("0", None), ("²", None), ("soon", None), ("", None),
     (str(MAX_MIN_EXPIRES + 1), None)],
)  # fmt: skip
def test_a_423s_min_expires_is_taken_only_as_a_sane_number(value: str, seconds: int | None) -> None:
    headers = [("Min-Expires", value)] if value else []
    assert _min_expires(_answer(423, headers)) == seconds


class _Registrar(asyncio.DatagramProtocol):
    """A registrar on loopback answering each REGISTER with ``answer``; it
    keeps what it was sent, with the loop time of arrival."""

    def __init__(self, answer: Callable[[Request], Response]) -> None:
        self.answer = answer
        self.seen: list[tuple[Request, float]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = parse_message(data)
        assert isinstance(request, Request)
        self.seen.append((request, asyncio.get_running_loop().time()))
        self.transport.sendto(bytes(self.answer(request)), addr)


@contextlib.asynccontextmanager
async def _registering(
    answer: Callable[[Request], Response], **settings: Any
) -> AsyncIterator[tuple[PhoneHost, PhoneState, _Registrar, list[dict[str, Any]]]]:
    """A one-line phone whose registrar answers with ``answer``, with the
    host's events; ``settings`` are PhoneSettings fields."""
    loop = asyncio.get_running_loop()
    registrar = _Registrar(answer)
    transport, _ = await loop.create_datagram_endpoint(
        lambda: registrar, local_addr=("127.0.0.1", 0)
    )
    host = PhoneHost()
    events: list[dict[str, Any]] = []
    host.events.subscribe(events.append)
    await host.start()
    try:
        port = transport.get_extra_info("sockname")[1]
        config = PhoneSettings(tcp=False, registrar=f"127.0.0.1:{port}", **settings)
        line = LineConfig("1001", Secret("pw"), free_ports(1)[0])
        phone = await host.add_phone(PhoneConfig("p", "127.0.0.1", (line,), config))
        yield host, phone, registrar, events
    finally:
        await host.close()
        transport.close()


def _at_least_7200(request: Request) -> Response:
    if int(request.get("Expires") or 0) < 7200:
        return make_response(request, 423, to_tag="r", headers=[("Min-Expires", "7200")])
    return make_response(request, 200, to_tag="r")


async def test_a_423_is_answered_with_the_registrars_min_expires_from_then_on() -> None:
    """The registrar wants at least 7200 s: the line asks again at once with
    that, is registered, and asks for 7200 in its refreshes too."""
    async with _registering(_at_least_7200, register_expires=600) as (host, phone, registrar, _):
        assert await host.register(phone) == [200]
        assert await host.register(phone) == [200]  # as a refresh would
        assert [r.get("Expires") for r, _ in registrar.seen] == ["600", "7200", "7200"]


def _granting_nothing(request: Request) -> Response:
    return make_response(request, 200, to_tag="r", headers=[("Expires", "0")])


async def test_a_grant_of_0_seconds_is_a_failure_retried_after_the_interval() -> None:
    """A "200" granting 0 s (a hostile or broken registrar) would otherwise
    make every line register again each second for ever."""
    async with _registering(_granting_nothing, register_retry=30) as (
        host,
        phone,
        registrar,
        events,
    ):
        assert await host.register(phone) == [200]
        await asyncio.sleep(1.5)  # a refresh at 70-90 % of a 1 s grant would have come by now
        assert len(registrar.seen) == 1
        failed = [e for e in events if e["event"] == "register_failed"]
        assert len(failed) == 1 and 30 <= float(failed[0]["retry_in"]) <= 36
