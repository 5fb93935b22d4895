"""Dialogs: creation on both sides, CSeq rules, target refresh, UPDATE glare."""

from __future__ import annotations

import pytest

from phonecast.sip import Request, SipUri, ValidationError, parse_message
from phonecast.sip.dialog import Dialog, DialogState, DialogTable, OfferState
from phonecast.sip.response import make_response

SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"


def _invite(body: bytes = SDP) -> Request:
    req = parse_message(
        b"INVITE sip:1001@127.0.0.1:5070 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKinv1\r\n"
        b"Max-Forwards: 70\r\n"
        b"From: <sip:caller@127.0.0.1>;tag=caller1\r\n"
        b"To: <sip:1001@127.0.0.1:5070>\r\n"
        b"Call-ID: call-1@127.0.0.1\r\n"
        b"CSeq: 10 INVITE\r\n"
        b"Contact: <sip:caller@127.0.0.1:5060>\r\n"
        b"Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    assert isinstance(req, Request)
    return req.with_body(body, "application/sdp") if body else req


def _in_dialog(method: str, seq: int, body: bytes = b"", contact: str | None = None) -> Request:
    req = _invite(b"")
    req = Request(method, req.uri, req.headers).with_header_replaced("CSeq", f"{seq} {method}")
    req = req.with_header_replaced("To", "<sip:1001@127.0.0.1:5070>;tag=phone1")
    if contact:
        req = req.with_header_replaced("Contact", contact)
    return req.with_body(body, "application/sdp") if body else req


def _uas_dialog(body: bytes = SDP) -> Dialog:
    inv = _invite(body)
    return Dialog.from_uas(inv, make_response(inv, 200, to_tag="phone1"))


def test_uas_dialog_fields() -> None:
    dlg = _uas_dialog()
    assert dlg.id == ("call-1@127.0.0.1", "phone1", "caller1")
    assert dlg.state is DialogState.CONFIRMED and dlg.remote_seq == 10
    assert dlg.offer is OfferState.REMOTE_OFFER
    assert [str(r.uri) for r in dlg.route_set] == ["sip:p1.example.com;lr", "sip:p2.example.com;lr"]
    early = Dialog.from_uas(_invite(), make_response(_invite(), 180, to_tag="phone1"))
    assert early.state is DialogState.EARLY and early.confirmed().state is DialogState.CONFIRMED


def test_uac_dialog_reverses_route_set_and_builds_requests() -> None:
    inv = _invite()
    resp = make_response(inv, 200, to_tag="phone1", headers=[("Contact", "<sip:1001@10.0.0.9>")])
    dlg = Dialog.from_uac(inv, resp)
    assert dlg.local_tag == "caller1" and dlg.remote_tag == "phone1"
    assert [str(r.uri) for r in dlg.route_set] == ["sip:p2.example.com;lr", "sip:p1.example.com;lr"]
    dlg2, bye = dlg.new_request("BYE", [("Via", "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKb")])
    assert bye.uri == SipUri("10.0.0.9", "1001")
    assert bye.cseq.seq == 11 and dlg2.local_seq == 11
    assert [str(r.uri) for r in bye.route] == ["sip:p2.example.com;lr", "sip:p1.example.com;lr"]
    assert bye.to.tag == "phone1" and bye.from_.tag == "caller1"
    _, ack = dlg2.new_request("ACK", [])
    assert ack.cseq.seq == 11


def test_strict_router_becomes_request_uri() -> None:
    inv = _invite().with_header_replaced("Record-Route", "<sip:strict.example.com>")
    resp = make_response(inv, 200, to_tag="t", headers=[("Contact", "<sip:1001@10.0.0.9>")])
    _, req = Dialog.from_uac(inv, resp).new_request("BYE", [])
    assert str(req.uri) == "sip:strict.example.com"
    assert str(req.route[-1].uri) == "sip:1001@10.0.0.9"


def test_cseq_must_grow_and_target_refresh() -> None:
    dlg = _uas_dialog()
    with pytest.raises(ValidationError) as info:
        dlg.receive_request(_in_dialog("UPDATE", 10))
    assert info.value.status_code == 500
    ack = dlg.receive_request(_in_dialog("ACK", 10))
    assert ack.remote_seq == 10
    update = _in_dialog("UPDATE", 11, contact="<sip:caller@127.0.0.9:5999>")
    received = dlg.receive_request(update)
    assert received.remote_seq == 11 and received.remote_target == dlg.remote_target
    moved = received.refreshed_by(update)
    assert moved.remote_seq == 11 and str(moved.remote_target) == "sip:caller@127.0.0.9:5999"


def test_only_target_refresh_methods_move_the_remote_target() -> None:
    dlg = _uas_dialog()
    info = _in_dialog("INFO", 11, contact="<sip:caller@127.0.0.9:5999>")
    assert dlg.refreshed_by(info).remote_target == dlg.remote_target


def test_update_offer_rules() -> None:
    update = _in_dialog("UPDATE", 11, SDP)
    idle = _uas_dialog(b"")
    assert idle.check_update(update, 3) is None
    glare = idle.with_offer(OfferState.LOCAL_OFFER).check_update(update, 3)
    assert glare is not None and glare.status_code == 491
    busy = idle.with_offer(OfferState.REMOTE_OFFER).check_update(update, 7)
    assert busy is not None and busy.status_code == 500
    assert busy.headers == (("Retry-After", "7"),)
    no_offer = _in_dialog("UPDATE", 12)
    assert idle.with_offer(OfferState.LOCAL_OFFER).check_update(no_offer, 3) is None


def test_table_finds_dialogs_and_481_outside() -> None:
    table = DialogTable(limit=1)
    dlg = _uas_dialog()
    table.put(dlg)
    assert table.for_request(_in_dialog("UPDATE", 11)) == dlg
    stranger = _in_dialog("UPDATE", 11).with_header_replaced("Call-ID", "other@x")
    assert table.for_request(stranger) is None
    assert table.for_request(_invite()) is None  # no To tag: not in a dialog
    with pytest.raises(ValidationError):
        table.put(_uas_dialog().__class__(**{**_dialog_fields(dlg), "call_id": "x"}))
    table.put(dlg.terminated())
    assert len(table) == 0


def _dialog_fields(dlg: Dialog) -> dict[str, object]:
    return {name: getattr(dlg, name) for name in dlg.__dataclass_fields__}


def test_dialog_needs_tags_and_falls_back_to_from_without_contact() -> None:
    inv = _invite().without_header("Contact")
    dlg = Dialog.from_uas(inv, make_response(inv, 200, to_tag="x"))
    assert str(dlg.remote_target) == "sip:caller@127.0.0.1"  # RFC 2543: no Contact
    with pytest.raises(ValidationError):
        Dialog.from_uas(_invite(), make_response(_invite(), 200))


def test_a_uas_dialog_without_a_from_tag_has_a_null_remote_tag() -> None:
    """RFC 3261 12.1.1: a UAS MUST be prepared for a request without a From
    tag (RFC 2543, RFC 4475 inv2543); the remote tag is null, and requests
    from that peer, without a From tag either, find the dialog."""
    inv = _invite().with_header_replaced("From", "<sip:caller@127.0.0.1>")
    dlg = Dialog.from_uas(inv, make_response(inv, 180, to_tag="phone1"))
    assert dlg.id == ("call-1@127.0.0.1", "phone1", "")
    table = DialogTable()
    table.put(dlg)
    bye = _in_dialog("BYE", 11).with_header_replaced("From", "<sip:caller@127.0.0.1>")
    assert table.for_request(bye) is dlg
    assert table.for_request(_in_dialog("BYE", 11)) is None  # a tag that is not ours
