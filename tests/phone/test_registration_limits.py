"""What a registrar may make a line do: shorten its expiry but not lengthen
it, and ask for a longer one with 423 (RFC 3261 10.2.8, 10.3)."""

from __future__ import annotations

import pytest

from phonecast.phone.registration import MAX_MIN_EXPIRES, _min_expires, granted_expiry
from phonecast.sip import Request, Response, SipUri, make_response

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


async def test_a_423_is_answered_with_the_registrars_min_expires_from_then_on() -> None:
    """The registrar wants at least 7200 s: the line asks again at once with
    that, is registered, and asks for 7200 in its refreshes too."""
    import asyncio
    from typing import cast

    from phonecast.credentials import Secret
    from phonecast.phone.config import LineConfig, PhoneConfig, PhoneSettings
    from phonecast.phone.emulator import PhoneHost
    from phonecast.sip import parse_message
    from tests.ports import free_ports

    asked: list[str | None] = []

    class Strict(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.DatagramTransport, transport)

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            request = parse_message(data)
            assert isinstance(request, Request)
            asked.append(request.get("Expires"))
            if int(request.get("Expires") or 0) < 7200:
                answer = make_response(request, 423, to_tag="r", headers=[("Min-Expires", "7200")])
            else:
                answer = make_response(request, 200, to_tag="r")
            self.transport.sendto(bytes(answer), addr)

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Strict, local_addr=("127.0.0.1", 0))
    host = PhoneHost()
    await host.start()
    try:
        port = transport.get_extra_info("sockname")[1]
        settings = PhoneSettings(tcp=False, registrar=f"127.0.0.1:{port}", register_expires=600)
        line = LineConfig("1001", Secret("pw"), free_ports(1)[0])
        phone = await host.add_phone(PhoneConfig("p", "127.0.0.1", (line,), settings))
        assert await host.register(phone) == [200]
        assert await host.register(phone) == [200]  # as a refresh would
        assert asked == ["600", "7200", "7200"]
    finally:
        await host.close()
        transport.close()


async def test_a_grant_of_0_seconds_is_a_failure_retried_after_the_interval() -> None:
    """A "200" granting 0 s (a hostile or broken registrar) would otherwise
    make every line register again each second for ever."""
    import asyncio
    from typing import cast

    from phonecast.credentials import Secret
    from phonecast.phone.config import LineConfig, PhoneConfig, PhoneSettings
    from phonecast.phone.emulator import PhoneHost
    from phonecast.sip import parse_message
    from tests.ports import free_ports

    seen: list[float] = []

    class Zero(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.DatagramTransport, transport)

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            request = parse_message(data)
            assert isinstance(request, Request)
            seen.append(asyncio.get_running_loop().time())
            answer = make_response(request, 200, to_tag="r", headers=[("Expires", "0")])
            self.transport.sendto(bytes(answer), addr)

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Zero, local_addr=("127.0.0.1", 0))
    host = PhoneHost()
    host_events: list[dict[str, object]] = []
    host.events.subscribe(host_events.append)
    await host.start()
    try:
        port = transport.get_extra_info("sockname")[1]
        settings = PhoneSettings(tcp=False, registrar=f"127.0.0.1:{port}", register_retry=30)
        line = LineConfig("1001", Secret("pw"), free_ports(1)[0])
        phone = await host.add_phone(PhoneConfig("p", "127.0.0.1", (line,), settings))
        assert await host.register(phone) == [200]
        await asyncio.sleep(1.5)  # a refresh at MIN_REFRESH would have come by now
        assert len(seen) == 1
        failed = [e for e in host_events if e["event"] == "register_failed"]
        assert len(failed) == 1 and 30 <= float(str(failed[0]["retry_in"])) <= 36
    finally:
        await host.close()
        transport.close()
