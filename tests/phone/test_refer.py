"""Call transfer (RFC 3515) against the emulator over UDP, with phonecast's
own client: REFER accepted in a call with the transfer placed and reported
in NOTIFYs (``Event: refer``, sipfrag, Subscription-State), the answers to
those NOTIFYs acted on, and the REFERs refused (481, 403, 400, 491)."""

from __future__ import annotations

from phonecast.credentials import Secret
from phonecast.net.endpoint import ServerHandle, SipEndpoint
from phonecast.net.transport import Flow
from phonecast.phone.config import LineConfig, PhoneConfig, PhoneSettings
from phonecast.phone.emulator import PhoneHost
from phonecast.sip import Request, make_response, new_branch
from tests.dnsmasq import free_udp_port
from tests.phone.test_update_network import (
    CALL_ID,
    CLIENT_POLICY,
    OFFER,
    _answered_call,
    _events_of,
    _invite,
    _Peer,
    _phone,
    _request,
)
from tests.waiting import until

TARGET = "sip:2000@127.0.0.1"
TRYING = b"SIP/2.0 100 Trying\r\n"
SUCCEEDED = b"SIP/2.0 200 OK\r\n"
ACTIVE = "active;expires=60"
TERMINATED = "terminated;reason=noresource"


def _refer(ep: SipEndpoint, port: int, seq: int, tag: str | None, *targets: str) -> Request:
    """A REFER with one Refer-To header field per value in ``targets``."""
    refer = _request(ep, "REFER", port, seq, tag)
    for target in targets:
        refer = refer.with_header("Refer-To", target)
    return refer


def _check_notify(
    notify: Request, ep: SipEndpoint, tag: str, *, event: str, state: str, body: bytes
) -> None:
    """A NOTIFY of the phone in the call's dialog (RFC 3515 2.4.4, 2.4.5)."""
    assert notify.method == "NOTIFY"
    assert str(notify.uri) == f"sip:caller@{ep.sent_by('udp')}"  # the REFER's Contact
    assert notify.call_id == CALL_ID and notify.from_.tag == tag and notify.to.tag == "caller"
    assert notify.get("Event") == event
    assert notify.get("Subscription-State") == state
    assert notify.content_type is not None and notify.content_type.mime == "message/sipfrag"
    assert notify.body == body
    assert notify.contact


def _codes(sent: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(e["method"], e["code"]) for e in sent]


async def test_a_refer_in_a_call_is_accepted_placed_and_reported() -> None:
    """202; the transfer is recorded as an action and makes the phone busy
    as Dial does; a NOTIFY with 100 Trying (active), then, once that one got
    its 200, one with 200 OK (terminated;reason=noresource), each with the
    phone's next CSeq.  A second REFER in the same dialog is told apart by
    ``id`` = its CSeq number in the Event of its NOTIFYs (RFC 3515 2.4.6)."""
    peer = _Peer()
    async with _phone(ring_seconds=0, handler=peer) as (host, ep, port):
        actions = _events_of(host, "action")
        sent = _events_of(host, "sent_request")
        call, tag = await _answered_call(ep, port)
        accepted = await call.send(_refer(ep, port, 2, tag, f"<{TARGET}>"))
        assert accepted.status_code == 202 and accepted.contact

        trying, final = await peer.next(), await peer.next()
        _check_notify(trying, ep, tag, event="refer", state=ACTIVE, body=TRYING)
        _check_notify(final, ep, tag, event="refer", state=TERMINATED, body=SUCCEEDED)
        assert final.cseq.seq == trying.cseq.seq + 1
        phone = host.phones["p"]
        await until(
            lambda: len(sent) == 2 and not phone.calls.transfers,
            what="both NOTIFYs' 200s and the subscription's end",
        )
        assert _codes(sent) == [("NOTIFY", 200), ("NOTIFY", 200)]
        assert phone.calls.transfers == {}  # the subscription is over
        assert [(e["action"], e["target"]) for e in actions] == [("transfer", TARGET)]
        assert f"transfer:{TARGET}" in phone.actions and "dial" in phone.calls.busy_reasons

        again = await call.send(_refer(ep, port, 3, tag, "<sip:2001@127.0.0.1>"))
        assert again.status_code == 202
        for seq in (final.cseq.seq + 1, final.cseq.seq + 2):
            notify = await peer.next()
            assert notify.get("Event") == "refer;id=3" and notify.cseq.seq == seq
        assert (await call.send(_request(ep, "BYE", port, 4, tag))).status_code == 200
        await peer.nothing_more()


async def test_a_notify_refused_ends_the_subscription() -> None:
    """The transferor answers the first NOTIFY 481: no final NOTIFY follows
    (RFC 6665 4.2.2), and the dialog takes a new REFER."""
    peer = _Peer(code=481)
    async with _phone(ring_seconds=0, handler=peer) as (host, ep, port):
        sent = _events_of(host, "sent_request")
        call, tag = await _answered_call(ep, port)
        assert (await call.send(_refer(ep, port, 2, tag, f"<{TARGET}>"))).status_code == 202
        _check_notify(await peer.next(), ep, tag, event="refer", state=ACTIVE, body=TRYING)
        await peer.nothing_more()
        assert _codes(sent) == [("NOTIFY", 481)]
        assert host.phones["p"].calls.transfers == {}
        assert (await call.send(_refer(ep, port, 3, tag, f"<{TARGET}>"))).status_code == 202


async def test_a_transfer_being_reported_refuses_another_and_outlives_the_call() -> None:
    """While the first NOTIFY awaits its answer, a second REFER gets 491.
    A BYE ends the call, not the subscription (RFC 5057): once the NOTIFY
    is answered the final one still comes, with the next CSeq."""
    peer = _Peer(code=None)
    async with _phone(ring_seconds=0, handler=peer) as (_host, ep, port):
        call, tag = await _answered_call(ep, port)
        assert (await call.send(_refer(ep, port, 2, tag, f"<{TARGET}>"))).status_code == 202
        trying, handle = await peer.requests.get()
        assert (await call.send(_refer(ep, port, 3, tag, f"<{TARGET}>"))).status_code == 491
        assert (await call.send(_request(ep, "BYE", port, 4, tag))).status_code == 200
        peer.code = 200
        handle.respond(make_response(trying, 200))
        final = await peer.next()
        _check_notify(final, ep, tag, event="refer", state=TERMINATED, body=SUCCEEDED)
        assert final.cseq.seq == trying.cseq.seq + 1


async def test_refer_outside_any_dialog_is_481() -> None:
    """The SPA transfers the call it is in; a REFER naming none (no To tag,
    or a tag of no dialog) refers to a call that does not exist."""
    peer = _Peer()
    async with _phone(ring_seconds=0, handler=peer) as (host, ep, port):
        dest = ("127.0.0.1", port)
        for tag in (None, "nosuchtag"):
            answer, _ = await ep.request(_refer(ep, port, 1, tag, f"<{TARGET}>"), "udp", dest)
            assert answer is not None and answer.status_code == 481 and answer.to.tag
        await peer.nothing_more()
        assert not host.phones["p"].calls.busy


async def test_refer_in_a_ringing_call_is_403() -> None:
    """Until the phone answers there is no call to transfer."""
    async with _phone(ring_seconds=30) as (_host, ep, port):
        call = await _invite(ep, port, OFFER)
        ringing = await call.next()
        assert ringing.status_code == 180 and ringing.to.tag
        refused = await call.send(_refer(ep, port, 2, ringing.to.tag, f"<{TARGET}>"))
        assert refused.status_code == 403


async def test_refer_with_no_refer_to_or_several_is_400_and_uncallable_targets_403() -> None:
    """RFC 3515 2.4.2: zero or more than one Refer-To value (in one field or
    two), or one that does not parse, is 400; a target the phone cannot
    call is 403.  None of them places a call or sends a NOTIFY."""
    peer = _Peer()
    async with _phone(ring_seconds=0, handler=peer) as (host, ep, port):
        actions = _events_of(host, "action")
        call, tag = await _answered_call(ep, port)
        cases: list[tuple[tuple[str, ...], int]] = [
            ((), 400),
            ((f"<{TARGET}>", "<sip:2001@127.0.0.1>"), 400),
            ((f"<{TARGET}>, <sip:2001@127.0.0.1>",), 400),
            (("<sip:2000@127.0.0.1",), 400),
            (("<http://127.0.0.1/transfer>",), 403),
            (("<sip:2000@127.0.0.1;method=BYE>",), 403),
        ]
        for seq, (targets, code) in enumerate(cases, start=2):
            answer = await call.send(_refer(ep, port, seq, tag, *targets))
            assert answer.status_code == code, targets
        await peer.nothing_more()
        assert actions == [] and host.phones["p"].calls.transfers == {}


async def test_a_tel_target_is_accepted() -> None:
    """A phone dials telephone numbers as well as SIP URIs."""
    peer = _Peer()
    async with _phone(ring_seconds=0, handler=peer) as (host, ep, port):
        actions = _events_of(host, "action")
        call, tag = await _answered_call(ep, port)
        assert (await call.send(_refer(ep, port, 2, tag, "<tel:+15551234>"))).status_code == 202
        _check_notify(await peer.next(), ep, tag, event="refer", state=ACTIVE, body=TRYING)
        assert [e["target"] for e in actions] == ["tel:+15551234"]


async def test_over_tcp_the_notifies_come_back_on_the_refers_connection() -> None:
    """A transferor over TCP need not listen for connections: the phone's
    NOTIFYs reuse the connection the REFER came on."""
    peer = _Peer()
    flows: list[str] = []

    def handler(request: Request, handle: ServerHandle | None, flow: Flow) -> None:
        flows.append(flow.transport)
        peer(request, handle, flow)

    host = PhoneHost()
    await host.start()
    port = free_udp_port()
    settings = PhoneSettings(tcp=True, ring_seconds=0)
    await host.add_phone(
        PhoneConfig("p", "127.0.0.1", (LineConfig("1001", Secret("pw"), port),), settings)
    )
    ep = SipEndpoint(handler=handler, policy=CLIENT_POLICY)
    await ep.listen_udp("127.0.0.1", 0)
    dest = ("127.0.0.1", port)

    def over_tcp(request: Request) -> Request:
        """``request`` with a TCP Via and a Content-Length (which frames it)."""
        request = request.with_header_replaced("Via", ep.via("tcp", new_branch()))
        return request if request.body else request.with_body(b"")

    try:
        ok, _ = await ep.request(over_tcp(_request(ep, "INVITE", port, 1, body=OFFER)), "tcp", dest)
        assert ok is not None and ok.status_code == 200 and ok.to.tag
        refer = over_tcp(_refer(ep, port, 2, ok.to.tag, f"<{TARGET}>"))
        accepted, _ = await ep.request(refer, "tcp", dest, timeout=5)
        assert accepted is not None and accepted.status_code == 202
        trying, final = await peer.next(), await peer.next()
        _check_notify(trying, ep, ok.to.tag, event="refer", state=ACTIVE, body=TRYING)
        _check_notify(final, ep, ok.to.tag, event="refer", state=TERMINATED, body=SUCCEEDED)
        assert flows == ["tcp", "tcp"]
    finally:
        await ep.close()
        await host.close()
