"""Calls and RFC 3311 UPDATE on an emulated line."""

from __future__ import annotations

import random

import pytest

from phonecast.phone.calls import (
    ALLOW,
    ALLOW_HANDLED,
    HANDLED_METHODS,
    CallAgent,
    CallSettings,
    Ringing,
)
from phonecast.phone.sdp import Origin, SdpError, make_answer, parse_offer
from phonecast.sip import DialogState, OfferState, Request, Response, parse_message

OFFER = (
    b"v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0 8\r\nm=video 4002 RTP/AVP 31\r\n"
)


def _req(
    method: str,
    seq: int,
    *,
    to_tag: str | None = None,
    body: bytes = b"",
    call_id: str = "c1@127.0.0.1",
) -> Request:
    to = "<sip:1001@127.0.0.1:5070>" + (f";tag={to_tag}" if to_tag else "")
    req = parse_message(
        (
            f"{method} sip:1001@127.0.0.1:5070 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK{method}{seq}\r\n"
            f"From: <sip:caller@127.0.0.1>;tag=ctag\r\nTo: {to}\r\nCall-ID: {call_id}\r\n"
            f"CSeq: {seq} {method}\r\nContact: <sip:caller@127.0.0.1:5999>\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        ).encode()
    )
    assert isinstance(req, Request)
    return req.with_body(body, "application/sdp") if body else req


def _agent(mode: str = "answer") -> CallAgent:
    return CallAgent(
        "<sip:1001@127.0.0.1:5070>", CallSettings(mode=mode, ring_seconds=2.0), random.Random(7)
    )


def _ring(agent: CallAgent, invite: Request) -> Ringing:
    """Send ``invite`` at t=0: the phone rings, a 180 with its To tag."""
    responses, ring, _ = agent.on_invite(invite, 0.0)
    assert [r.status_code for r in responses] == [180] and ring is not None
    assert responses[0].to.tag == ring.dialog_id[1] and ring.answer_at == 2.0
    return ring


def _call(agent: CallAgent, body: bytes = OFFER) -> Response:
    """A call answered (at its deadline) and acknowledged: its 200."""
    ring = _ring(agent, _req("INVITE", 1, body=body))
    ok = agent.answer(ring, ring.answer_at)
    assert ok is not None and ok.status_code == 200 and ok.to.tag == ring.dialog_id[1]
    return ok


def test_invite_rings_in_an_early_dialog_then_is_answered_with_sdp() -> None:
    agent = _agent()
    ring = _ring(agent, _req("INVITE", 1, body=OFFER))
    early = agent.dialogs.get(ring.dialog_id)
    assert early is not None and early.state is DialogState.EARLY
    assert agent.busy
    assert agent.answer(ring, 1.99) is None  # not before its time
    ok = agent.answer(ring, 2.0)
    assert ok is not None and ok.status_code == 200
    assert ok.content_type is not None and ok.content_type.mime == "application/sdp"
    media = parse_offer(ok.body)
    assert [(m.kind, m.port == 0, m.formats) for m in media] == [
        ("audio", False, ("0",)),
        ("video", True, ("31",)),
    ]
    assert ALLOW in (ok.get("Allow") or "") and ok.get("Supported") == "replaces"
    confirmed = agent.dialogs.get(ring.dialog_id)
    assert confirmed is not None and confirmed.state is DialogState.CONFIRMED
    assert agent.answer(ring, 3.0) is None  # answered once
    assert agent.busy and len(agent.dialogs) == 1
    second, _, _ = agent.on_invite(_req("INVITE", 1, call_id="c2@127.0.0.1", body=OFFER), 3.0)
    assert [r.status_code for r in second] == [486]


@pytest.mark.parametrize(("mode", "code"), [("busy", 486), ("decline", 603)])
def test_modes(mode: str, code: int) -> None:
    responses, ring, _ = _agent(mode).on_invite(_req("INVITE", 1, body=OFFER), 0.0)
    assert [r.status_code for r in responses] == [code] and ring is None


def test_bad_offer_is_488() -> None:
    responses, ring, _ = _agent().on_invite(_req("INVITE", 1, body=b"not sdp"), 0.0)
    assert [r.status_code for r in responses] == [488] and ring is None


def test_cancelled_ringing_gets_487_and_is_never_answered() -> None:
    agent = _agent()
    ring = _ring(agent, _req("INVITE", 1, body=OFFER))
    terminated = agent.cancel(ring)
    assert terminated is not None and terminated.status_code == 487
    assert terminated.to.tag == ring.dialog_id[1]
    assert not agent.busy and len(agent.dialogs) == 0
    assert agent.cancel(ring) is None and agent.answer(ring, 2.0) is None


def test_update_while_ringing_follows_the_invites_offer() -> None:
    """RFC 3311 5.2 in the early dialog: the INVITE's offer is owed its
    answer until the 200 (500 + Retry-After); an INVITE without one leaves
    nothing outstanding (200 with an SDP answer)."""
    agent = _agent()
    ring = _ring(agent, _req("INVITE", 1, body=OFFER))
    tag = ring.dialog_id[1]
    pending = agent.on_update(_req("UPDATE", 2, to_tag=tag, body=OFFER))
    assert pending.status_code == 500
    retry = pending.retry_after
    assert retry is not None and 0 <= retry.seconds <= 10
    assert agent.on_update(_req("UPDATE", 3, to_tag=tag)).status_code == 200  # no offer

    agent = _agent()
    ring = _ring(agent, _req("INVITE", 1))
    ok = agent.on_update(_req("UPDATE", 2, to_tag=ring.dialog_id[1], body=OFFER))
    assert ok.status_code == 200 and parse_offer(ok.body)[0].kind == "audio"


def test_update_in_dialog_outside_and_glare() -> None:
    agent = _agent()
    tag = _call(agent).to.tag
    assert tag
    agent.on_ack(_req("ACK", 1, to_tag=tag))
    ok = agent.on_update(_req("UPDATE", 2, to_tag=tag, body=OFFER))
    assert ok.status_code == 200 and parse_offer(ok.body)[0].kind == "audio"
    stale = agent.on_update(_req("UPDATE", 2, to_tag=tag, body=OFFER))
    assert stale.status_code == 500  # CSeq not above the last
    outside = agent.on_update(_req("UPDATE", 3, to_tag="nope", body=OFFER))
    assert outside.status_code == 481
    no_offer = agent.on_update(_req("UPDATE", 4, to_tag=tag))
    assert no_offer.status_code == 200 and not no_offer.body


def test_an_update_refused_488_still_sets_the_remote_cseq() -> None:
    """RFC 3261 12.2.2: the remote CSeq is that of every in-dialog request
    received, one answered 488 too; a lower one afterwards gets 500."""
    agent = _agent()
    tag = _call(agent).to.tag
    agent.on_ack(_req("ACK", 1, to_tag=tag))
    bad = agent.on_update(_req("UPDATE", 10, to_tag=tag, body=b"v=0\r\nm=bogus\r\n"))
    assert bad.status_code == 488
    assert next(iter(agent.dialogs)).remote_seq == 10
    assert agent.on_update(_req("UPDATE", 6, to_tag=tag, body=OFFER)).status_code == 500


def test_invite_without_offer_gets_ours_glare_until_the_ack_settles_it() -> None:
    agent = _agent()
    ok = _call(agent, body=b"")
    assert parse_offer(ok.body)
    assert next(iter(agent.dialogs)).offer is OfferState.LOCAL_OFFER
    glare = agent.on_update(_req("UPDATE", 2, to_tag=ok.to.tag, body=OFFER))
    assert glare.status_code == 491
    reinvite, _, _ = agent.on_invite(_req("INVITE", 3, to_tag=ok.to.tag, body=OFFER), 3.0)
    assert [r.status_code for r in reinvite] == [491]
    body = make_answer(ok.body, address="127.0.0.1", port=4000)
    answer = Origin(1, 1).render(body, address="127.0.0.1")[1]
    agent.on_ack(_req("ACK", 1, to_tag=ok.to.tag, body=answer))
    assert next(iter(agent.dialogs)).offer is OfferState.IDLE
    assert agent.on_update(_req("UPDATE", 4, to_tag=ok.to.tag, body=OFFER)).status_code == 200


def test_ack_without_the_answer_still_ends_the_offer() -> None:
    agent = _agent()
    ok = _call(agent, body=b"")
    agent.on_ack(_req("ACK", 1, to_tag=ok.to.tag))
    assert agent.on_update(_req("UPDATE", 2, to_tag=ok.to.tag, body=OFFER)).status_code == 200


def test_only_the_ack_of_the_invite_that_carried_our_offer_ends_it() -> None:
    """RFC 3261 13.3.1.4 / 17.1.1.3: an ACK acknowledges the 2xx of the
    INVITE with its CSeq.  A late copy of the first INVITE's ACK does not
    answer the offer the phone made in the 200 to a later re-INVITE."""
    agent = _agent()
    tag = _call(agent).to.tag
    agent.on_ack(_req("ACK", 1, to_tag=tag))
    reinvite, _, _ = agent.on_invite(_req("INVITE", 2, to_tag=tag), 3.0)  # no SDP: we offer
    assert [r.status_code for r in reinvite] == [200]
    agent.on_ack(_req("ACK", 1, to_tag=tag))  # stale
    assert next(iter(agent.dialogs)).offer is OfferState.LOCAL_OFFER
    assert agent.on_update(_req("UPDATE", 3, to_tag=tag, body=OFFER)).status_code == 491
    agent.on_ack(_req("ACK", 2, to_tag=tag))
    assert next(iter(agent.dialogs)).offer is OfferState.IDLE
    assert agent.on_update(_req("UPDATE", 4, to_tag=tag, body=OFFER)).status_code == 200


def test_reinvite_while_ringing_is_500_with_retry_after() -> None:
    agent = _agent()
    ring = _ring(agent, _req("INVITE", 1, body=OFFER))
    responses, _, _ = agent.on_invite(_req("INVITE", 2, to_tag=ring.dialog_id[1], body=OFFER), 1.0)
    assert [r.status_code for r in responses] == [500] and responses[0].retry_after is not None


def test_bye_ends_call_then_481() -> None:
    agent = _agent()
    tag = _call(agent).to.tag
    assert agent.on_bye(_req("BYE", 2, to_tag=tag)).status_code == 200
    assert not agent.busy and len(agent.dialogs) == 0
    assert agent.on_bye(_req("BYE", 3, to_tag=tag)).status_code == 481


def test_a_481_outside_any_dialog_has_a_to_tag_of_its_own() -> None:
    """RFC 3261 8.2.6.2: a final response to a request whose To has no tag
    adds one, a 481 to a BYE or an UPDATE naming no dialog too."""
    agent = _agent()
    refusals = [agent.on_bye(_req("BYE", 1)), agent.on_update(_req("UPDATE", 1))]
    assert [(r.status_code, bool(r.to.tag)) for r in refusals] == [(481, True)] * 2


def test_a_bye_with_a_lower_cseq_is_500_and_the_call_stays_up() -> None:
    """RFC 3261 12.2.2: a BYE is an in-dialog request like any other; one
    with a CSeq below the last (an old copy) must not end the call."""
    agent = _agent()
    tag = _call(agent).to.tag
    agent.on_ack(_req("ACK", 1, to_tag=tag))
    assert agent.on_update(_req("UPDATE", 5, to_tag=tag)).status_code == 200
    assert agent.on_bye(_req("BYE", 3, to_tag=tag)).status_code == 500
    assert agent.busy and len(agent.dialogs) == 1
    assert agent.on_bye(_req("BYE", 6, to_tag=tag)).status_code == 200
    assert not agent.busy


def test_an_rfc_2543_invite_without_a_from_tag_is_a_call() -> None:
    """RFC 4475 3.4.1 (inv2543): no From tag is a valid RFC 2543 INVITE;
    the phone rings and answers it in a dialog with a null remote tag
    (RFC 3261 12.1.1), and that peer's BYE, untagged too, ends it."""
    agent = _agent()
    untagged = "<sip:caller@127.0.0.1>"
    ring = _ring(agent, _req("INVITE", 1, body=OFFER).with_header_replaced("From", untagged))
    assert ring.dialog_id[2] == ""
    ok = agent.answer(ring, ring.answer_at)
    assert ok is not None and ok.status_code == 200
    agent.on_ack(_req("ACK", 1, to_tag=ok.to.tag).with_header_replaced("From", untagged))
    bye = _req("BYE", 2, to_tag=ok.to.tag).with_header_replaced("From", untagged)
    assert agent.on_bye(bye).status_code == 200 and not agent.busy


def test_unacknowledged_call_ends_and_frees_the_phone() -> None:
    agent = _agent()
    ok = _call(agent)
    agent.end_unacknowledged((ok.call_id, ok.to.tag or "", ok.from_.tag or ""))
    assert not agent.busy and len(agent.dialogs) == 0


@pytest.mark.parametrize(("mode", "code"), [("busy", 486), ("decline", 603)])
def test_options_gets_the_code_an_invite_would(mode: str, code: int) -> None:
    """RFC 3261 11.2: the response to OPTIONS is the one an INVITE would get."""
    opts = _agent(mode).on_options(_req("OPTIONS", 1))
    assert opts.status_code == code and opts.get("Allow") == ALLOW and opts.to.tag
    agent = _agent()
    tag = _call(agent).to.tag
    assert agent.on_options(_req("OPTIONS", 1, call_id="other@x")).status_code == 486  # in a call
    assert agent.on_options(_req("OPTIONS", 2, to_tag=tag)).status_code == 200  # in its dialog


def test_options_and_reinvite() -> None:
    agent = _agent()
    opts: Response = agent.on_options(_req("OPTIONS", 1))
    assert opts.status_code == 200 and opts.get("Accept") == "application/sdp"
    tag = _call(agent).to.tag
    agent.on_ack(_req("ACK", 1, to_tag=tag))
    re, _, _ = agent.on_invite(_req("INVITE", 2, to_tag=tag, body=OFFER), 3.0)
    assert [r.status_code for r in re] == [200]
    other, _, _ = agent.on_invite(_req("INVITE", 3, to_tag="other", body=OFFER), 3.0)
    assert [r.status_code for r in other] == [481]


def test_the_405_allow_names_only_handled_methods() -> None:
    """Every method the SPA advertises is handled (REFER too, since call
    transfer is emulated), so a 405's Allow is the whole Allow."""
    assert set(ALLOW_HANDLED.split(", ")) == HANDLED_METHODS
    assert ALLOW_HANDLED == ALLOW


def test_sdp_errors() -> None:
    for bad in (b"", b"v=0\r\n", b"v=0\r\nm=audio x RTP/AVP 0\r\n", b"\xff\xfe"):
        with pytest.raises(SdpError):
            parse_offer(bad)


def test_a_merged_copy_of_an_invite_is_482_and_no_second_call() -> None:
    """RFC 3261 8.2.2.2: the same INVITE (From tag, Call-ID, CSeq) arriving
    again by another path (another branch) while the phone rings for it,
    or after it answered."""
    agent = _agent()
    first = _req("INVITE", 1, body=OFFER)
    ring = _ring(agent, first)
    copy = first.with_first_header_replaced(
        "Via", "SIP/2.0/UDP 127.0.0.1:5998;branch=z9hG4bKforked"
    )
    (merged,) = agent.on_invite(copy, 0.1).responses
    assert merged.status_code == 482 and merged.to.tag
    assert list(agent.ringing) == [ring.dialog_id] and len(agent.dialogs) == 1
    assert agent.answer(ring, ring.answer_at) is not None
    (late,) = agent.on_invite(copy, 3.0).responses
    assert late.status_code == 482 and len(agent.dialogs) == 1


def test_a_refused_target_refresh_leaves_the_remote_target_where_it_was() -> None:
    """RFC 6141 4: a re-INVITE or UPDATE moves the remote target only when
    it is accepted (2xx); refused 491 for glare, it does not."""
    agent = _agent()
    ok = _call(agent, body=b"")  # the phone's offer is outstanding until the ACK
    tag = ok.to.tag
    moved = "<sip:caller@127.0.0.9:5999>"
    reinvite = _req("INVITE", 2, to_tag=tag, body=OFFER).with_header_replaced("Contact", moved)
    assert [r.status_code for r in agent.on_invite(reinvite, 3.0).responses] == [491]
    update = _req("UPDATE", 3, to_tag=tag, body=OFFER).with_header_replaced("Contact", moved)
    assert agent.on_update(update).status_code == 491
    assert str(next(iter(agent.dialogs)).remote_target) == "sip:caller@127.0.0.1:5999"
    agent.on_ack(_req("ACK", 1, to_tag=tag))
    accepted = _req("UPDATE", 4, to_tag=tag, body=OFFER).with_header_replaced("Contact", moved)
    assert agent.on_update(accepted).status_code == 200
    assert str(next(iter(agent.dialogs)).remote_target) == "sip:caller@127.0.0.9:5999"


def _origin(response: Response) -> tuple[str, int]:
    """The session id and version of a response's SDP."""
    (line,) = [ln for ln in response.body.decode().split("\r\n") if ln.startswith("o=")]
    _, session, version, *_ = line.split()
    return session, int(version)


def test_the_phone_keeps_one_sdp_session_per_call() -> None:
    """RFC 3264 8: every SDP of a call has the same o= session id, and a
    version one up when it differs from the last one sent, the same when
    it does not."""
    agent = _agent()
    ok = _call(agent, body=b"")  # the phone's offer in the 200
    tag = ok.to.tag
    session, version = _origin(ok)
    agent.on_ack(_req("ACK", 1, to_tag=tag))
    (answer,) = agent.on_invite(_req("INVITE", 2, to_tag=tag, body=OFFER), 3.0).responses
    assert _origin(answer) == (session, version + 1)
    same = agent.on_update(_req("UPDATE", 3, to_tag=tag, body=OFFER))
    assert _origin(same) == (session, version + 1)
    (offer,) = agent.on_invite(_req("INVITE", 4, to_tag=tag), 4.0).responses
    assert _origin(offer) == (session, version + 2)
    assert agent.on_bye(_req("BYE", 5, to_tag=tag)).status_code == 200
    ring = _ring(agent, _req("INVITE", 1, body=OFFER, call_id="c2@127.0.0.1"))
    other = agent.answer(ring, ring.answer_at)
    assert other is not None and _origin(other)[0] != session  # a session of its own


def test_an_early_update_answered_before_the_200_comes_first_in_the_versions() -> None:
    """INVITE without an offer, an UPDATE answered in the early dialog, then
    the 200 with the phone's offer: one session, the version growing."""
    agent = _agent()
    ring = _ring(agent, _req("INVITE", 1))
    early = agent.on_update(_req("UPDATE", 2, to_tag=ring.dialog_id[1], body=OFFER))
    ok = agent.answer(ring, ring.answer_at)
    assert ok is not None and early.status_code == 200
    session, version = _origin(early)
    assert _origin(ok) == (session, version + 1)
    agent.on_bye(_req("BYE", 3, to_tag=ring.dialog_id[1]))
    assert not agent.origins


def test_the_phones_re_offer_in_a_call_keeps_its_streams_in_place() -> None:
    """RFC 3264 8: after an answer of audio and a rejected video, the offer
    in the 200 to a re-INVITE without SDP has both m= lines, in order."""
    agent = _agent()
    ok = _call(agent)  # OFFER: audio, then video (rejected)
    agent.on_ack(_req("ACK", 1, to_tag=ok.to.tag))
    (offer,) = agent.on_invite(_req("INVITE", 2, to_tag=ok.to.tag), 3.0).responses
    assert [m.kind for m in parse_offer(offer.body)] == ["audio", "video"]
    assert parse_offer(offer.body)[1].port == 0


def test_an_options_in_a_dialog_has_its_cseq_checked_and_counted() -> None:
    """RFC 3261 12.2.2: a mid-dialog OPTIONS moved no CSeq, so a later
    request with a lower one was taken; a To tag naming no dialog is 481,
    as a re-INVITE there gets (11.2)."""
    agent = _agent()
    tag = _call(agent).to.tag
    assert agent.on_options(_req("OPTIONS", 10, to_tag=tag)).status_code == 200
    assert agent.on_options(_req("OPTIONS", 5, to_tag=tag)).status_code == 500
    assert agent.on_info(_req("INFO", 3, to_tag=tag)).status_code == 500
    assert agent.on_info(_req("INFO", 11, to_tag=tag)).status_code == 200
    assert agent.on_options(_req("OPTIONS", 12, to_tag="nosuch")).status_code == 481


def test_an_info_naming_an_info_package_is_469_legacy_info_200() -> None:
    """RFC 6086 4.2.2: the phone offered to receive no package (an empty
    Recv-Info says so); an INFO without Info-Package is legacy, taken."""
    agent = _agent()
    tag = _call(agent).to.tag
    named = _req("INFO", 2, to_tag=tag).with_header("Info-Package", "nosuchpkg")
    refused = agent.on_info(named)
    assert (refused.status_code, refused.get("Recv-Info")) == (469, "")
    dtmf = _req("INFO", 3, to_tag=tag).with_body(
        b"Signal=5\r\nDuration=160\r\n", "application/dtmf-relay"
    )
    assert agent.on_info(dtmf).status_code == 200
