"""Calls and RFC 3311 UPDATE against the emulator over UDP, with phonecast's
own client: ringing in an early dialog, UPDATE in early and confirmed
dialogs (200, 491, 500 + Retry-After, 481), CANCEL (RFC 3261 9.2), the 405
and its Allow, the 2xx resent until the ACK and the BYE when none comes,
INFO in and outside a dialog."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

from phonecast.credentials import Secret
from phonecast.net.endpoint import RequestHandler, ServerHandle, SipEndpoint
from phonecast.net.transport import Flow
from phonecast.phone.call_driver import CallDriver
from phonecast.phone.config import LineConfig, PhoneConfig, PhoneSettings
from phonecast.phone.emulator import PhoneHost
from phonecast.phone.sdp import Origin, make_answer, parse_offer
from phonecast.sip import (
    DialogState,
    Request,
    Response,
    SipUri,
    Timers,
    UasPolicy,
    make_response,
    new_branch,
    parse_message,
)
from phonecast.sip.transaction import make_cancel
from tests.dnsmasq import free_udp_port
from tests.interop.peers import emulated_phone, phonecast
from tests.ports import free_ports
from tests.waiting import until

OFFER = (
    b"v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0\r\n"
)
CALL_ID = "update-call@127.0.0.1"


def _request(
    ep: SipEndpoint,
    method: str,
    port: int,
    seq: int,
    to_tag: str | None = None,
    body: bytes = b"",
    call_id: str = CALL_ID,
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


#: What the client endpoint of these tests reads in requests the phone sends
#: it (the sipfrag of a transfer's NOTIFYs).
CLIENT_POLICY = UasPolicy(body_types=frozenset({"application/sdp", "message/sipfrag"}))


@contextlib.asynccontextmanager
async def _phone(
    ring_seconds: float, handler: RequestHandler | None = None, t1: float | None = None
) -> AsyncIterator[tuple[PhoneHost, SipEndpoint, int]]:
    """A phone ringing ``ring_seconds`` per call, and a client endpoint
    (whose ``handler`` sees the requests the phone sends it).  Another
    phone is bound first, so that the one under test is not the host's
    first socket (the phone's own requests must leave from its own).
    ``t1``: the calls' T1, which their 2xx is resent from (and given up at
    64 times), if not the default."""
    host = PhoneHost() if t1 is None else PhoneHost(call_timers=Timers(t1=t1))
    await host.start()
    other, port = free_ports(2)
    settings = PhoneSettings(tcp=False, ring_seconds=ring_seconds)
    await host.add_phone(
        PhoneConfig("q", "127.0.0.1", (LineConfig("2002", Secret("pw2"), other),), settings)
    )
    await host.add_phone(
        PhoneConfig("p", "127.0.0.1", (LineConfig("1001", Secret("pw"), port),), settings)
    )
    ep = SipEndpoint(handler=handler, policy=CLIENT_POLICY)
    await ep.listen_udp("127.0.0.1", 0)
    try:
        yield host, ep, port
    finally:
        await ep.close()
        await host.close()


class _Call:
    """An INVITE sent from the client endpoint; every response it gets is
    queued, provisional ones too (``SipEndpoint.request`` keeps only the final)."""

    def __init__(self, ep: SipEndpoint, invite: Request, port: int) -> None:
        self.ep, self.invite, self.port = ep, invite, port
        self.responses: asyncio.Queue[Response] = asyncio.Queue()

    async def start(self) -> _Call:
        await self.ep.send_request(self.invite, "udp", ("127.0.0.1", self.port), self._got)
        return self

    def _got(self, response: Response | None, _why: str) -> None:
        if response is not None:
            self.responses.put_nowait(response)

    async def next(self, timeout: float = 5.0) -> Response:
        return await asyncio.wait_for(self.responses.get(), timeout)

    async def send(self, request: Request) -> Response:
        """Another request of this call, its final response."""
        answer, why = await self.ep.request(request, "udp", ("127.0.0.1", self.port), timeout=5)
        assert answer is not None, why
        return answer

    def ack(self, to_tag: str, body: bytes = b"") -> None:
        ack = _request(self.ep, "ACK", self.port, self.invite.cseq.seq, to_tag, body)
        assert self.ep.udp is not None
        self.ep.udp.sendto(bytes(ack), ("127.0.0.1", self.port))


async def _invite(ep: SipEndpoint, port: int, body: bytes = b"") -> _Call:
    return await _Call(ep, _request(ep, "INVITE", port, 1, body=body), port).start()


async def _answered_call(ep: SipEndpoint, port: int) -> tuple[_Call, str]:
    """A call the phone answered and the client acknowledged; the phone's tag."""
    call = await _invite(ep, port, OFFER)
    assert (await call.next()).status_code == 180
    ok = await call.next()
    tag = ok.to.tag
    assert ok.status_code == 200 and tag
    call.ack(tag)
    return call, tag


class _Peer:
    """The client's side of the requests the phone sends it (BYE, NOTIFY):
    each is queued with its handle, answered at once with ``code`` unless
    ``code`` is None (then the test answers it through the handle)."""

    def __init__(self, code: int | None = 200) -> None:
        self.code = code
        self.requests: asyncio.Queue[tuple[Request, ServerHandle]] = asyncio.Queue()
        #: Where each request came from.
        self.sources: list[tuple[str, int]] = []

    def __call__(self, request: Request, handle: ServerHandle | None, flow: Flow) -> None:
        if handle is None:
            return  # an ACK: the phone sends none
        self.sources.append(flow.remote)
        if self.code is not None:
            handle.respond(make_response(request, self.code))
        self.requests.put_nowait((request, handle))

    async def next(self, timeout: float = 5.0) -> Request:
        return (await asyncio.wait_for(self.requests.get(), timeout))[0]

    async def nothing_more(self, seconds: float = 0.3) -> None:
        with contextlib.suppress(TimeoutError):
            request = await self.next(timeout=seconds)
            raise AssertionError(f"the phone sent an unexpected {request.method}")


def _events_of(host: PhoneHost, kind: str) -> list[dict[str, object]]:
    """The host's events of ``kind`` from now on (the list fills as they come)."""
    seen: list[dict[str, object]] = []
    host.events.subscribe(lambda e: seen.append(e) if e["event"] == kind else None)
    return seen


async def test_update_with_an_offer_in_the_early_dialog_gets_an_sdp_answer() -> None:
    """RFC 3311 5.1: the 180 makes an early dialog; an UPDATE with an offer
    in it (the INVITE had none, so none is outstanding) gets 200 + SDP while
    the phone still rings."""
    async with _phone(ring_seconds=30) as (host, ep, port):
        call = await _invite(ep, port)
        ringing = await call.next()
        tag = ringing.to.tag
        assert ringing.status_code == 180 and tag
        dialog = next(iter(host.phones["p"].calls.dialogs))
        assert dialog.state is DialogState.EARLY and dialog.local_tag == tag

        update = await call.send(_request(ep, "UPDATE", port, 2, tag, OFFER))
        assert update.status_code == 200
        assert update.content_type is not None and update.content_type.mime == "application/sdp"
        assert parse_offer(update.body)[0].port != 0
        assert call.responses.empty()  # still ringing: no 200 to the INVITE yet

        assert (await call.send(make_cancel(call.invite))).status_code == 200
        assert (await call.next()).status_code == 487


async def test_update_with_an_offer_while_the_invites_offer_is_unanswered_is_500() -> None:
    """RFC 3311 5.2: the INVITE's offer is answered only in the 200, so an
    UPDATE with an offer while it rings gets 500 with Retry-After 0-10 s;
    once the 200 answered it and the ACK came, the same UPDATE gets 200."""
    async with _phone(ring_seconds=1.0) as (_host, ep, port):
        call = await _invite(ep, port, OFFER)
        ringing = await call.next()
        tag = ringing.to.tag
        assert ringing.status_code == 180 and tag
        refused = await call.send(_request(ep, "UPDATE", port, 2, tag, OFFER))
        assert refused.status_code == 500
        assert refused.retry_after is not None and 0 <= refused.retry_after.seconds <= 10
        assert call.responses.empty()

        ok = await call.next()
        assert ok.status_code == 200 and ok.to.tag == tag and parse_offer(ok.body)
        call.ack(tag)
        update = await call.send(_request(ep, "UPDATE", port, 3, tag, OFFER))
        assert update.status_code == 200 and parse_offer(update.body)[0].port != 0
        assert (await call.send(_request(ep, "BYE", port, 4, tag))).status_code == 200


async def test_glare_while_the_phones_offer_awaits_the_ack_then_offer_and_outside() -> None:
    """An INVITE without SDP: the phone's 200 carries its own offer, answered
    only by the ACK.  An UPDATE with an offer before the ACK is glare (491);
    after it, 200 with an answer; with tags of no dialog, 481."""
    async with _phone(ring_seconds=0) as (host, ep, port):
        states: list[str] = []
        host.events.subscribe(lambda e: states.append(e["state"]) if e["event"] == "call" else None)
        call = await _invite(ep, port)
        assert (await call.next()).status_code == 180
        ok = await call.next()
        tag = ok.to.tag
        assert ok.status_code == 200 and tag and parse_offer(ok.body)

        glare = await call.send(_request(ep, "UPDATE", port, 2, tag, OFFER))
        assert glare.status_code == 491

        answer = make_answer(ok.body, address="127.0.0.1", port=4000)
        call.ack(tag, Origin(1, 1).render(answer, address="127.0.0.1")[1])
        await asyncio.sleep(0.05)
        update = await call.send(_request(ep, "UPDATE", port, 3, tag, OFFER))
        assert update.status_code == 200 and parse_offer(update.body)[0].port != 0

        outside = await call.send(_request(ep, "UPDATE", port, 4, "nosuchtag", OFFER))
        assert outside.status_code == 481

        phone = host.phones["p"]
        assert (await call.send(_request(ep, "BYE", port, 5, tag))).status_code == 200
        assert not phone.calls.busy
        assert states == ["ringing", "answered", "ended"]


async def test_cancel_of_a_ringing_invite_gets_200_and_the_invite_487() -> None:
    """RFC 3261 9.2: the CANCEL matches the INVITE's server transaction,
    which has no final response yet: 200 to the CANCEL (the INVITE's To
    tag), 487 to the INVITE, and the phone never answers it."""
    async with _phone(ring_seconds=1.0) as (host, ep, port):
        states: list[tuple[str, str | None]] = []
        host.events.subscribe(
            lambda e: states.append((e["state"], e.get("reason"))) if e["event"] == "call" else None
        )
        call = await _invite(ep, port, OFFER)
        ringing = await call.next()
        assert ringing.status_code == 180
        cancelled = await call.send(make_cancel(call.invite))
        assert cancelled.status_code == 200 and cancelled.to.tag == ringing.to.tag
        terminated = await call.next()
        assert terminated.status_code == 487 and terminated.to.tag == ringing.to.tag
        phone = host.phones["p"]
        assert not phone.calls.busy and len(phone.calls.dialogs) == 0
        with contextlib.suppress(TimeoutError):
            late = await call.next(timeout=1.5)  # past the ring time
            raise AssertionError(f"a cancelled INVITE was answered {late.status_code}")
        assert states == [("ringing", None), ("cancelled", "CANCEL")]


async def test_cancel_matching_no_transaction_is_481() -> None:
    async with _phone(ring_seconds=1.0) as (_host, ep, port):
        stray = make_cancel(_request(ep, "INVITE", port, 1, body=OFFER))  # never sent
        answer, _ = await ep.request(stray, "udp", ("127.0.0.1", port), timeout=5)
        assert answer is not None and answer.status_code == 481


async def test_cancel_after_the_final_response_is_200_and_changes_nothing() -> None:
    async with _phone(ring_seconds=0) as (host, ep, port):
        call, tag = await _answered_call(ep, port)
        cancelled = await call.send(make_cancel(call.invite))
        assert cancelled.status_code == 200 and cancelled.to.tag == tag
        phone = host.phones["p"]
        dialog = next(iter(phone.calls.dialogs))
        assert phone.calls.busy and dialog.state is DialogState.CONFIRMED
        assert (await call.send(_request(ep, "BYE", port, 2, tag))).status_code == 200


async def test_bye_in_the_early_dialog_ends_the_ringing_with_487() -> None:
    """RFC 3261 15.1.2: the BYE gets 200, the pending INVITE 487."""
    async with _phone(ring_seconds=30) as (host, ep, port):
        call = await _invite(ep, port, OFFER)
        ringing = await call.next()
        assert ringing.status_code == 180 and ringing.to.tag
        bye = await call.send(_request(ep, "BYE", port, 2, ringing.to.tag))
        assert bye.status_code == 200
        assert (await call.next()).status_code == 487
        assert not host.phones["p"].calls.busy


async def test_no_method_the_405_allows_is_answered_405() -> None:
    """MESSAGE (not advertised by the SPA) gets 405, with a To tag like any
    final response to a request without one (RFC 3261 8.2.6.2); its Allow
    names what the emulator handles, REFER included, and none of those is
    refused 405."""
    async with _phone(ring_seconds=0) as (_host, ep, port):
        dest = ("127.0.0.1", port)
        refused, _ = await ep.request(_request(ep, "MESSAGE", port, 1), "udp", dest, timeout=5)
        assert refused is not None and refused.status_code == 405 and refused.to.tag
        allowed = [m.strip() for m in (refused.get("Allow") or "").split(",")]
        assert {"INVITE", "UPDATE", "CANCEL", "REFER", "INFO"} <= set(allowed)
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


async def test_a_call_whose_200_is_never_acknowledged_ends() -> None:
    """RFC 3261 13.3.1.4: 64*T1 of 2xx resends without an ACK end the call,
    and the phone is idle again (it would otherwise stay busy for ever)."""
    async with _phone(ring_seconds=0) as (host, ep, port):
        assert host.endpoint is not None
        # T1 of 50 ms: the 64*T1 the phone waits for the ACK is 3.2 s.
        host._calls = CallDriver(host.endpoint, host._respond, host.events, Timers(t1=0.05))
        ended = asyncio.Event()
        host.events.subscribe(
            lambda e: ended.set() if e.get("reason") == "no ACK" and e["event"] == "call" else None
        )
        call = await _invite(ep, port, OFFER)
        assert (await call.next()).status_code == 180
        assert (await call.next()).status_code == 200
        phone = host.phones["p"]
        assert phone.calls.busy
        await asyncio.wait_for(ended.wait(), 10)
        assert not phone.calls.busy and len(phone.calls.dialogs) == 0


def _waiting_only_briefly_for_acks(host: PhoneHost) -> None:
    """A call driver with T1 = 30 ms: the 64*T1 a 2xx waits for its ACK is 1.9 s."""
    assert host.endpoint is not None and host._calls is not None
    host._calls.close()
    host._calls = CallDriver(host.endpoint, host._respond, host.events, Timers(t1=0.03))


async def test_a_call_whose_200_is_never_acknowledged_is_ended_with_a_bye() -> None:
    """RFC 3261 13.3.1.4: the session SHOULD be ended with a BYE.  It is the
    phone's request in the dialog: its own CSeq, From and To as the UAS side
    has them (its tag in From), sent to the remote target (the caller's
    Contact); the 200 to it ends its transaction."""
    peer = _Peer()
    async with _phone(ring_seconds=0, handler=peer) as (host, ep, port):
        _waiting_only_briefly_for_acks(host)
        sent = _events_of(host, "sent_request")
        call = await _invite(ep, port, OFFER)
        assert (await call.next()).status_code == 180
        ok = await call.next()
        assert ok.status_code == 200 and ok.to.tag
        bye = await peer.next(timeout=10)
        assert bye.method == "BYE" and str(bye.uri) == f"sip:caller@{ep.sent_by('udp')}"
        assert bye.call_id == CALL_ID and bye.cseq.method == "BYE" and bye.cseq.seq >= 1
        assert bye.from_.tag == ok.to.tag and bye.from_.uri == ok.to.uri
        assert bye.to.tag == "caller" and bye.to.uri == call.invite.from_.uri
        assert not bye.route
        # From the line's own socket, and its Via says so (not the host's first).
        assert peer.sources == [("127.0.0.1", port)] and bye.top_via.port == port
        phone = host.phones["p"]
        await until(
            lambda: sent and not phone.calls.busy and not phone.calls.dialogs,
            what="the BYE's 200 and an idle phone",
        )
        assert [(e["method"], e["code"]) for e in sent] == [("BYE", 200)]
        await peer.nothing_more()


async def test_the_bye_of_an_unacknowledged_call_follows_the_route_set() -> None:
    """The INVITE came through a proxy that recorded its route: the BYE
    carries it as Route and goes to that proxy (here the client itself),
    with the caller's Contact as its Request-URI (RFC 3261 12.2.1.1)."""
    peer = _Peer()
    async with _phone(ring_seconds=0, handler=peer) as (host, ep, port):
        _waiting_only_briefly_for_acks(host)
        proxy = f"<sip:{ep.sent_by('udp')};lr>"
        contact = f"sip:caller@127.0.0.1:{free_udp_port()}"  # nobody there
        invite = _request(ep, "INVITE", port, 1, body=OFFER)
        invite = invite.with_header("Record-Route", proxy).with_header_replaced(
            "Contact", f"<{contact}>"
        )
        call = await _Call(ep, invite, port).start()
        assert (await call.next()).status_code == 180
        assert (await call.next()).status_code == 200
        bye = await peer.next(timeout=10)
        assert bye.method == "BYE" and str(bye.uri) == contact
        assert bye.get_all("Route") == [proxy]


async def test_info_is_answered_200_in_a_dialog_and_481_outside_any() -> None:
    """RFC 6086 4.2.2 and RFC 3261 12.2.2: INFO is a mid-dialog request; one
    naming no dialog (no To tag, a tag of no dialog, a call that ended)
    gets 481; inside a dialog, 200 (and a CSeq gone back, 500)."""
    async with _phone(ring_seconds=0) as (_host, ep, port):
        info = _request(ep, "INFO", port, 1, call_id="no-call@127.0.0.1")
        untagged, _ = await ep.request(info, "udp", ("127.0.0.1", port), timeout=5)
        assert untagged is not None and untagged.status_code == 481 and untagged.to.tag
        call, tag = await _answered_call(ep, port)
        assert (await call.send(_request(ep, "INFO", port, 2, "nosuchtag"))).status_code == 481
        assert (await call.send(_request(ep, "INFO", port, 3, tag))).status_code == 200
        assert (await call.send(_request(ep, "INFO", port, 2, tag))).status_code == 500
        assert (await call.send(_request(ep, "BYE", port, 4, tag))).status_code == 200
        assert (await call.send(_request(ep, "INFO", port, 5, tag))).status_code == 481


async def test_invite_2xx_is_retransmitted_until_ack() -> None:
    host = PhoneHost()
    await host.start()
    port = free_udp_port()
    await host.add_phone(
        PhoneConfig(
            "p",
            "127.0.0.1",
            (LineConfig("1001", Secret("pw"), port),),
            PhoneSettings(tcp=False, ring_seconds=0),
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


def test_ring_seconds_from_the_command_line_sets_when_the_200_comes(tmp_path: Path) -> None:
    """``phonecast phone --ring-seconds 1.5``: the 180, then the 200 not
    before the ring time (the default is 0.5 s); a negative ring time is
    refused as bad usage.  How soon the 180 comes is not timed here: a
    process started on a loaded machine may be slow to answer at all, and
    the in-process tests above show the 180 coming while the phone rings."""
    port = free_udp_port()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(5)
    me = peer.getsockname()[1]
    invite = (
        f"INVITE sip:1001@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKring1\r\n"
        f"From: <sip:caller@127.0.0.1>;tag=r1\r\nTo: <sip:1001@127.0.0.1:{port}>\r\n"
        f"Call-ID: ring-cli@127.0.0.1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:caller@127.0.0.1:{me}>\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    extra = ["--ring-seconds", "1.5"]
    try:
        with emulated_phone(f"1001:secret@{port}", events=tmp_path / "ev.jsonl", extra=extra):
            sent = time.monotonic()
            peer.sendto(invite, ("127.0.0.1", port))
            codes = []
            while 200 not in codes:
                reply = parse_message(peer.recv(65535))
                assert isinstance(reply, Response)
                codes.append(reply.status_code)
            assert codes == [180, 200] and time.monotonic() - sent >= 1.5
    finally:
        peer.close()
    refused = phonecast("phone", "--line", f"1001:secret@{port}", "--ring-seconds", "-1")
    assert refused.returncode == 2 and "--ring-seconds" in refused.stderr


async def test_a_push_deferred_while_ringing_runs_once_the_call_is_cancelled() -> None:
    """A ringing phone is busy: a priority-1 push waits.  The CANCEL that
    ends the ringing leaves it idle, and the deferred page is then fetched
    and shown (the call driver tells the host a call is over, whichever
    way it ended)."""
    from phonecast.ciscoxml import Text, to_xml
    from phonecast.content import ContentServer
    from phonecast.push.payload import execute_payload
    from phonecast.push.pusher import Destination, Pusher

    content = ContentServer()
    await content.start()
    try:
        async with _phone(ring_seconds=30) as (host, ep, port):
            url = content.publish("p", to_xml(Text("After", None, (), "the call")))
            events: list[dict[str, object]] = []
            host.events.subscribe(events.append)
            call = await _invite(ep, port, OFFER)
            assert (await call.next()).status_code == 180
            outcome = await Pusher(ep).push(
                SipUri("127.0.0.1", "1001", port=port),
                Secret("pw"),
                execute_payload([url], priority=1),
                destinations=[Destination("udp", "127.0.0.1", port)],
            )
            assert outcome.delivered

            def kinds() -> list[object]:
                return [e["event"] for e in events]

            await until(lambda: "deferred" in kinds(), what="the deferred event")
            assert "fetch_started" not in kinds()
            assert (await call.send(make_cancel(call.invite))).status_code == 200
            assert (await call.next()).status_code == 487
            await until(
                lambda: host.phones["p"].screen.title == "After", what="the deferred page shown"
            )
            fetched = [e["url"] for e in events if e["event"] == "fetch_finished"]
            assert fetched == [url]
    finally:
        await content.stop()
