"""RFC 3311 UPDATE against the emulator over UDP, with phonecast's own client."""

from __future__ import annotations

import asyncio
import contextlib
import socket

from phonecast.credentials import Secret
from phonecast.net.endpoint import SipEndpoint
from phonecast.phone.config import LineConfig, PhoneConfig, PhoneSettings
from phonecast.phone.emulator import PhoneHost
from phonecast.phone.sdp import parse_offer
from phonecast.sip import Request, Response, SipUri, new_branch, parse_message
from tests.dnsmasq import free_udp_port

OFFER = (
    b"v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0\r\n"
)


def _request(
    ep: SipEndpoint,
    method: str,
    port: int,
    seq: int,
    to_tag: str | None = None,
    body: bytes = b"",
    call_id: str = "update-call@127.0.0.1",
) -> Request:
    to = f"<sip:1001@127.0.0.1:{port}>" + (f";tag={to_tag}" if to_tag else "")
    req = Request(
        method,
        SipUri("127.0.0.1", "1001", port=port),
        [
            ("Via", ep.via("udp", new_branch())),
            ("Max-Forwards", "70"),
            ("From", f"<sip:caller@{ep.sent_by('udp')}>;tag=caller"),
            ("To", to),
            ("Call-ID", call_id),
            ("CSeq", f"{seq} {method}"),
            ("Contact", f"<sip:caller@{ep.sent_by('udp')}>"),
        ],
    )
    return req.with_body(body, "application/sdp") if body else req


async def test_update_offer_glare_and_outside_dialog() -> None:
    host = PhoneHost()
    await host.start()
    port = free_udp_port()
    await host.add_phone(
        PhoneConfig(
            "p", "127.0.0.1", (LineConfig("1001", Secret("pw"), port),), PhoneSettings(tcp=False)
        )
    )
    ep = SipEndpoint()
    await ep.listen_udp("127.0.0.1", 0)
    dest = ("127.0.0.1", port)
    try:
        ok, _ = await ep.request(_request(ep, "INVITE", port, 1, body=OFFER), "udp", dest)
        assert isinstance(ok, Response) and ok.status_code == 200
        tag = ok.to.tag
        assert tag and parse_offer(ok.body)[0].kind == "audio"
        assert ep.udp is not None
        ep.udp.sendto(bytes(_request(ep, "ACK", port, 1, tag)), dest)

        update, _ = await ep.request(_request(ep, "UPDATE", port, 2, tag, OFFER), "udp", dest)
        assert update is not None and update.status_code == 200
        assert parse_offer(update.body)[0].port != 0

        phone = host.phones["p"]
        phone.calls.offer_update(next(iter(phone.calls.dialogs)))  # the phone's own offer
        glare, _ = await ep.request(_request(ep, "UPDATE", port, 3, tag, OFFER), "udp", dest)
        assert glare is not None and glare.status_code == 491

        outside, _ = await ep.request(
            _request(ep, "UPDATE", port, 4, "nosuchtag", OFFER), "udp", dest
        )
        assert outside is not None and outside.status_code == 481

        bye, _ = await ep.request(_request(ep, "BYE", port, 5, tag), "udp", dest)
        assert bye is not None and bye.status_code == 200 and not phone.calls.busy
    finally:
        await ep.close()
        await host.close()


async def test_no_method_the_405_allows_is_answered_405() -> None:
    """REFER (advertised by the SPA, not emulated) gets 405; its Allow names
    what the emulator handles, and none of those is refused 405."""
    host = PhoneHost()
    await host.start()
    port = free_udp_port()
    await host.add_phone(
        PhoneConfig(
            "p", "127.0.0.1", (LineConfig("1001", Secret("pw"), port),), PhoneSettings(tcp=False)
        )
    )
    ep = SipEndpoint()
    await ep.listen_udp("127.0.0.1", 0)
    dest = ("127.0.0.1", port)
    try:
        refused, _ = await ep.request(_request(ep, "REFER", port, 1), "udp", dest, timeout=5)
        assert refused is not None and refused.status_code == 405
        allowed = [m.strip() for m in (refused.get("Allow") or "").split(",")]
        assert "REFER" not in allowed and {"INVITE", "UPDATE", "CANCEL"} <= set(allowed)
        for seq, method in enumerate(allowed, start=2):
            call_id = f"allow-{method}@127.0.0.1"
            if method == "ACK":
                assert await _answers_to_raw_ack(port) == []
                continue
            answer, why = await ep.request(
                _request(ep, method, port, seq, call_id=call_id), "udp", dest, timeout=5
            )
            assert answer is not None, (method, why)
            assert answer.status_code != 405, method
            if method == "INVITE" and answer.to.tag:
                bye = _request(ep, "BYE", port, seq + 100, answer.to.tag, call_id=call_id)
                await ep.request(bye, "udp", dest, timeout=5)
    finally:
        await ep.close()
        await host.close()


async def _answers_to_raw_ack(port: int) -> list[int]:
    """Send an ACK outside any dialog from a socket of its own; what came back."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    me = sock.getsockname()[1]
    ack = Request(
        "ACK",
        SipUri("127.0.0.1", "1001", port=port),
        [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:{me};branch={new_branch()}"),
            ("Max-Forwards", "70"),
            ("From", "<sip:caller@127.0.0.1>;tag=a1"),
            ("To", f"<sip:1001@127.0.0.1:{port}>;tag=none"),
            ("Call-ID", "allow-ACK@127.0.0.1"),
            ("CSeq", "1 ACK"),
        ],
    ).with_body(b"")
    codes: list[int] = []
    try:
        sock.sendto(bytes(ack), ("127.0.0.1", port))
        with contextlib.suppress(TimeoutError):
            while True:
                reply = parse_message(await asyncio.wait_for(loop.sock_recv(sock, 65535), 0.3))
                assert isinstance(reply, Response)
                codes.append(reply.status_code)
    finally:
        sock.close()
    return codes


async def test_invite_2xx_is_retransmitted_until_ack() -> None:
    host = PhoneHost()
    await host.start()
    port = free_udp_port()
    await host.add_phone(
        PhoneConfig(
            "p", "127.0.0.1", (LineConfig("1001", Secret("pw"), port),), PhoneSettings(tcp=False)
        )
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    me = sock.getsockname()[1]
    loop = asyncio.get_running_loop()

    async def codes_for(seconds: float) -> list[int]:
        got: list[int] = []
        end = loop.time() + seconds
        while (left := end - loop.time()) > 0:
            try:
                data = await asyncio.wait_for(loop.sock_recv(sock, 65535), left)
            except TimeoutError:
                break
            reply = parse_message(data)
            assert isinstance(reply, Response)
            got.append(reply.status_code)
        return got

    invite = Request(
        "INVITE",
        SipUri("127.0.0.1", "1001", port=port),
        [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKinv2xx"),
            ("Max-Forwards", "70"),
            ("From", "<sip:caller@127.0.0.1>;tag=c1"),
            ("To", f"<sip:1001@127.0.0.1:{port}>"),
            ("Call-ID", "retx-2xx@127.0.0.1"),
            ("CSeq", "1 INVITE"),
            ("Contact", f"<sip:caller@127.0.0.1:{me}>"),
        ],
    ).with_body(OFFER, "application/sdp")
    try:
        sock.sendto(bytes(invite), ("127.0.0.1", port))
        first = await codes_for(1.8)  # 180, 200, then 200 at T1 and 3*T1
        assert first[:2] == [180, 200] and first.count(200) >= 3, first
        tag = next(iter(host.phones["p"].calls.dialogs)).local_tag
        ack = Request(
            "ACK",
            invite.uri,
            [
                ("Via", f"SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKack2xx"),
                ("Max-Forwards", "70"),
                ("From", "<sip:caller@127.0.0.1>;tag=c1"),
                ("To", f"<sip:1001@127.0.0.1:{port}>;tag={tag}"),
                ("Call-ID", "retx-2xx@127.0.0.1"),
                ("CSeq", "1 ACK"),
            ],
        ).with_body(b"")
        sock.sendto(bytes(ack), ("127.0.0.1", port))
        await asyncio.sleep(0.1)
        assert await codes_for(2.2) == []  # no more 200s once acknowledged
    finally:
        sock.close()
        await host.close()
