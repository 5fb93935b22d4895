"""RFC 3891 Replaces on an emulated line, which lists ``replaces`` in its
Supported as the SPA does: what each kind of match gets, and, over UDP, the
replaced call ended with a BYE to its caller."""

from __future__ import annotations

from phonecast.net.endpoint import SipEndpoint
from phonecast.phone.calls import ENDED_KEPT, CallAgent
from phonecast.sip import DialogState, Request, Response
from tests.phone.test_calls import OFFER, _agent, _call, _req, _ring
from tests.phone.test_update_network import (
    _answered_call,
    _Call,
    _events_of,
    _Peer,
    _phone,
    _request,
)


def _replacing(dialog_id: tuple[str, str, str], *extra: str, seq: int = 1) -> Request:
    """A third party's INVITE (its own Call-ID and From tag) naming ``dialog_id``."""
    call_id, local, remote = dialog_id
    invite = _req("INVITE", seq, body=OFFER, call_id="third@127.0.0.1")
    invite = invite.with_header_replaced("From", "<sip:third@127.0.0.1>;tag=third")
    value = f"{call_id};to-tag={local};from-tag={remote}" + "".join(f";{e}" for e in extra)
    return invite.with_header_replaced("Replaces", value)


def _answered(agent: CallAgent) -> tuple[str, str, str]:
    ok = _call(agent)
    agent.on_ack(_req("ACK", 1, to_tag=ok.to.tag))
    return (ok.call_id, ok.to.tag or "", ok.from_.tag or "")


def _only(agent: CallAgent, invite: Request) -> Response:
    reply = agent.on_invite(invite, 0.0)
    assert len(reply.responses) == 1 and reply.ringing is None
    return reply.responses[0]


def test_a_confirmed_call_is_replaced_at_once_even_when_the_phone_is_busy() -> None:
    agent = _agent()
    old = _answered(agent)
    assert agent.busy
    reply = agent.on_invite(_replacing(old), 0.0)
    (ok,) = reply.responses
    assert ok.status_code == 200 and ok.body and reply.ringing is None  # no ringing
    assert reply.replaced == old
    new = agent.dialogs.get((ok.call_id, ok.to.tag or "", "third"))
    assert new is not None and new.state is DialogState.CONFIRMED
    agent.end_replaced(old)
    assert agent.dialogs.get(old) is None and agent.busy  # busy with the new call


def test_a_replaces_naming_no_dialog_is_481_and_an_ended_one_603() -> None:
    agent = _agent()
    assert _only(agent, _replacing(("nosuch@x", "a", "b"))).status_code == 481
    old = _answered(agent)
    bye = agent.on_bye(_req("BYE", 2, to_tag=old[1]))
    assert bye.status_code == 200
    assert _only(agent, _replacing(old)).status_code == 603
    assert not agent.busy


def test_the_tags_must_both_match_in_the_recipients_orientation() -> None:
    agent = _agent()
    call_id, local, remote = _answered(agent)
    for wrong in ((call_id, remote, local), (call_id, local, "guess"), ("other", local, remote)):
        assert _only(agent, _replacing(wrong)).status_code == 481
    assert agent.dialogs.get((call_id, local, remote)) is not None


def test_an_early_dialog_is_not_replaced() -> None:
    """The phone's early dialogs are all INVITEs it received, not ones it
    initiated: 481, and the ringing goes on (RFC 3891 3)."""
    agent = _agent()
    ring = _ring(agent, _req("INVITE", 1, body=OFFER))
    assert _only(agent, _replacing(ring.dialog_id)).status_code == 481
    assert agent.ringing.get(ring.dialog_id) is ring


def test_early_only_against_a_confirmed_call_is_486() -> None:
    agent = _agent()
    old = _answered(agent)
    assert _only(agent, _replacing(old, "early-only")).status_code == 486
    assert agent.dialogs.get(old) is not None


def test_a_malformed_or_doubled_replaces_is_400() -> None:
    agent = _agent()
    old = _answered(agent)
    half = _req("INVITE", 1, body=OFFER, call_id="third@127.0.0.1")
    half = half.with_header_replaced("From", "<sip:third@127.0.0.1>;tag=third")
    half = half.with_header_replaced("Replaces", f"{old[0]};to-tag={old[1]}")
    assert _only(agent, half).status_code == 400
    value = f"{old[0]};to-tag={old[1]};from-tag={old[2]}"
    doubled = _replacing(old).with_header("Replaces", value)
    assert _only(agent, doubled).status_code == 400
    assert agent.dialogs.get(old) is not None


def test_the_ended_dialogs_kept_are_bounded() -> None:
    agent = _agent()
    for n in range(ENDED_KEPT + 5):
        agent._end((f"c{n}", "l", "r"))
    assert len(agent.ended) == ENDED_KEPT and ("c0", "l", "r") not in agent.ended


def test_a_from_tag_of_0_names_an_rfc_2543_callers_call() -> None:
    """RFC 3891 6.1: such a call's remote tag is null; ``from-tag=0`` names it."""
    agent = _agent()
    untagged = _req("INVITE", 1, body=OFFER).with_header_replaced("From", "<sip:caller@127.0.0.1>")
    ring = _ring(agent, untagged)
    ok = agent.answer(ring, ring.answer_at)
    assert ok is not None and ring.dialog_id[2] == ""
    reply = agent.on_invite(_replacing((ring.dialog_id[0], ring.dialog_id[1], "0")), 3.0)
    assert [r.status_code for r in reply.responses] == [200]
    assert reply.replaced == ring.dialog_id


def test_a_fork_to_another_line_of_the_phone_is_no_merged_request() -> None:
    """The phone's lines are separate UAs to the network: the same INVITE
    forked to two of them rings the first and is busy on the second, not
    a 482 (RFC 3261 8.2.2.2 is one UA's own transactions)."""
    agent = _agent()
    first = _req("INVITE", 1, body=OFFER)
    assert [r.status_code for r in agent.on_invite(first, 0.0, "1001").responses] == [180]
    fork = first.with_first_header_replaced("Via", "SIP/2.0/UDP 127.0.0.1:5998;branch=z9hG4bKfork2")
    assert [r.status_code for r in agent.on_invite(fork, 0.0, "2002").responses] == [486]
    assert [r.status_code for r in agent.on_invite(fork, 0.0, "1001").responses] == [482]


async def _replace(ep: SipEndpoint, port: int, call: _Call, tag: str) -> Response:
    """A third party's INVITE replacing ``call`` (the phone's tag ``tag``): its 200."""
    third = _request(ep, "INVITE", port, 1, body=OFFER, call_id="third@127.0.0.1")
    third = third.with_header_replaced("From", "<sip:third@127.0.0.1>;tag=third")
    caller_tag = call.invite.from_.tag or ""
    third = third.with_header_replaced(
        "Replaces", f"{call.invite.call_id};to-tag={tag};from-tag={caller_tag}"
    )
    answer, why = await ep.request(third, "udp", ("127.0.0.1", port), timeout=5)
    assert answer is not None and answer.status_code == 200, why
    return answer


def _ack_third(ep: SipEndpoint, port: int, ok: Response) -> None:
    ack = _request(ep, "ACK", port, 1, ok.to.tag, call_id="third@127.0.0.1")
    ack = ack.with_header_replaced("From", "<sip:third@127.0.0.1>;tag=third")
    assert ep.udp is not None
    ep.udp.sendto(bytes(ack), ("127.0.0.1", port))


async def test_the_replaced_caller_gets_a_bye_once_the_new_call_is_acknowledged() -> None:
    """Over UDP: A's answered call is replaced by a third party's INVITE
    naming it.  The third party gets 200 at once; once it acknowledges it,
    A gets the phone's BYE in its own dialog, and A's call is gone (its
    own BYE then gets 481)."""
    peer = _Peer()
    async with _phone(0.0, peer) as (host, ep, port):
        call, tag = await _answered_call(ep, port)
        caller_tag = call.invite.from_.tag or ""
        ok = await _replace(ep, port, call, tag)
        await peer.nothing_more(0.3)  # no BYE before the new call's ACK
        _ack_third(ep, port, ok)
        bye = await peer.next()
        assert bye.method == "BYE" and bye.call_id == call.invite.call_id
        assert bye.from_.tag == tag and bye.to.tag == caller_tag
        calls = host.phones["p"].calls
        assert calls.dialogs.get((call.invite.call_id, tag, caller_tag)) is None
        assert calls.busy  # with the third party's call
        late = await call.send(_request(ep, "BYE", port, 2, tag))
        assert late.status_code == 481


async def test_a_call_replaced_before_its_own_ack_gets_its_bye_after_it() -> None:
    """RFC 3261 15: no BYE in a dialog before the ACK of the phone's 2xx.
    A call replaced while its 200 is still resent keeps being resent, and
    its BYE waits for its ACK."""
    peer = _Peer()
    async with _phone(0.0, peer, t1=0.1) as (host, ep, port):
        retransmits = _events_of(host, "retransmit")
        call = await _Call(ep, _request(ep, "INVITE", port, 1, body=OFFER), port).start()
        first = await call.next()
        while first.status_code < 200:
            first = await call.next()
        tag = first.to.tag or ""
        ok = await _replace(ep, port, call, tag)
        _ack_third(ep, port, ok)
        await peer.nothing_more(0.5)
        assert retransmits  # A's 200 still being resent
        call.ack(tag)
        bye = await peer.next()
        assert bye.method == "BYE" and bye.call_id == call.invite.call_id


async def test_a_replacement_never_acknowledged_leaves_the_old_call_up() -> None:
    """The replacing call's 2xx gives up after 64*T1 (the phone BYEs it):
    the call it was to replace was never ended, and stays."""
    peer = _Peer()
    async with _phone(0.0, peer, t1=0.03) as (host, ep, port):
        call, tag = await _answered_call(ep, port)
        caller_tag = call.invite.from_.tag or ""
        await _replace(ep, port, call, tag)
        bye = await peer.next(timeout=5)  # after 64*T1 = 1.9 s
        assert bye.call_id == "third@127.0.0.1"
        await peer.nothing_more(0.3)
        assert host.phones["p"].calls.dialogs.get((call.invite.call_id, tag, caller_tag))
