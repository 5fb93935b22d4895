"""Transactions (RFC 3261 17, RFC 6026) on a simulated clock: timers, absorption,
ACKs, loss of any one datagram, and matching.

Time is a plain float passed in; nothing sleeps and nothing touches a socket.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phonecast.sip import Request, Response, TransactionError, parse_message
from phonecast.sip.response import make_response
from phonecast.sip.transaction import (
    MAGIC_COOKIE,
    BranchKey,
    ClientKey,
    ClientTransaction,
    InviteClientTransaction,
    InviteServerTransaction,
    LegacyKey,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    RequestReceived,
    ResponseReceived,
    ServerTransaction,
    State,
    Terminated,
    TimedOut,
    Timers,
    TransactionEvent,
    TransactionTable,
    TransportFailed,
    client_key,
    is_rfc3261_branch,
    make_ack,
    make_cancel,
    make_trying,
    new_branch,
    new_client_transaction,
    new_server_transaction,
    server_key,
)
from tests.conftest import CORPUS

NOTIFY = (
    b"NOTIFY sip:1001@192.0.2.10:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnotify1;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:phonecast@192.0.2.1>;tag=pc1\r\n"
    b"To: <sip:1001@192.0.2.10>\r\n"
    b"Call-ID: notify-1@192.0.2.1\r\n"
    b"CSeq: 7 NOTIFY\r\n"
    b"Event: check-sync\r\n"
    b"Content-Length: 0\r\n\r\n"
)

INVITE = (
    b"INVITE sip:1001@192.0.2.10:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKinvite1\r\n"
    b"Max-Forwards: 69\r\n"
    b"Route: <sip:p1.example.com;lr>\r\n"
    b"Route: <sip:p2.example.com;lr>\r\n"
    b'From: "Phonecast" <sip:phonecast@192.0.2.1>;tag=pc2\r\n'
    b"To: <sip:1001@example.com>\r\n"
    b"Call-ID: invite-1@192.0.2.1\r\n"
    b"CSeq: 42 INVITE\r\n"
    b"Contact: <sip:phonecast@192.0.2.1:5060>\r\n"
    b"Timestamp: 54.3\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def _req(data: bytes) -> Request:
    msg = parse_message(data)
    assert isinstance(msg, Request)
    return msg


def _resp(request: Request, code: int, tag: str | None = "phone1") -> Response:
    return make_response(request, code, to_tag=tag)


def _events(tx: ClientTransaction | ServerTransaction) -> list[TransactionEvent]:
    out = []
    while (event := tx.next_event()) is not None:
        out.append(event)
    return out


def _run_timers(
    tx: ClientTransaction | ServerTransaction, until: float = 1e9
) -> list[tuple[float, bytes]]:
    """Drive ``tx`` from deadline to deadline; what it sent, and when."""
    sent: list[tuple[float, bytes]] = []
    while (deadline := tx.next_deadline()) is not None and deadline <= until:
        tx.handle_timer(deadline)
        sent += [(deadline, d) for d in tx.datagrams_to_send()]
    return sent


def _state(tx: ClientTransaction | ServerTransaction) -> State:
    """The state, read through a call so that mypy does not narrow it between steps."""
    return tx.state


def _statuses(events: list[TransactionEvent]) -> list[int]:
    return [e.response.status_code for e in events if isinstance(e, ResponseReceived)]


# --------------------------------------------------------------------- timers


def test_timer_values_are_derived_from_t1_t2_t4() -> None:
    t = Timers()
    assert (t.t1, t.t2, t.t4, t.timeout) == (0.5, 4.0, 5.0, 32.0)
    assert (t.timer_d(False), t.timer_d(True)) == (32.0, 0.0)
    assert (t.timer_i(False), t.timer_i(True)) == (5.0, 0.0)
    assert (t.timer_j(False), t.timer_j(True)) == (32.0, 0.0)
    assert (t.timer_k(False), t.timer_k(True)) == (5.0, 0.0)
    slow = Timers(t1=1.0, t2=8.0)
    assert slow.timeout == 64.0 and slow.timer_d(False) == 64.0  # D covers the server's H
    with pytest.raises(ValueError):
        Timers(t1=0)
    with pytest.raises(ValueError):
        Timers(t1=5.0, t2=4.0)


# ------------------------------------------------------ non-INVITE client


def test_non_invite_client_retransmits_with_e_and_times_out_with_f() -> None:
    notify = _req(NOTIFY)
    tx = NonInviteClientTransaction(notify, 0.0, reliable=False)
    assert tx.datagrams_to_send() == [bytes(notify)]
    assert _state(tx) is State.TRYING and tx.next_deadline() == 0.5
    sent = _run_timers(tx)
    assert [t for t, _ in sent] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert all(data == bytes(notify) for _, data in sent)
    assert _events(tx) == [TimedOut("F"), Terminated()]
    assert tx.terminated and tx.next_deadline() is None


def test_non_invite_client_times_out_at_64_t1() -> None:
    tx = NonInviteClientTransaction(_req(NOTIFY), 100.0, reliable=False, timers=Timers(t1=0.1))
    assert len(tx.datagrams_to_send()) == 1
    sent = _run_timers(tx)
    assert [round(t - 100.0, 6) for t, _ in sent][:4] == [0.1, 0.3, 0.7, 1.5]
    assert tx.terminated
    # The last thing that happened was the timeout, 6.4 s after the start.
    assert _events(tx) == [TimedOut("F"), Terminated()]
    assert max(t for t, _ in sent) < 106.4


def test_non_invite_client_in_proceeding_retransmits_every_t2() -> None:
    notify = _req(NOTIFY)
    tx = NonInviteClientTransaction(notify, 0.0, reliable=False)
    tx.datagrams_to_send()
    tx.handle_response(_resp(notify, 100, None), 0.2)
    assert _state(tx) is State.PROCEEDING and _statuses(_events(tx)) == [100]
    sent = _run_timers(tx, until=13.0)
    assert [t for t, _ in sent] == [0.5, 4.5, 8.5, 12.5]


def test_non_invite_client_final_response_then_timer_k_on_udp() -> None:
    notify = _req(NOTIFY)
    tx = NonInviteClientTransaction(notify, 0.0, reliable=False)
    tx.datagrams_to_send()
    tx.handle_timer(0.5)
    assert len(tx.datagrams_to_send()) == 1
    ok = _resp(notify, 200)
    tx.handle_response(ok, 0.7)
    assert _state(tx) is State.COMPLETED
    assert _events(tx) == [ResponseReceived(ok)]
    assert tx.next_deadline() == pytest.approx(5.7)  # K = T4, no more E
    tx.handle_response(ok, 1.0)  # a retransmission of the 200
    tx.handle_response(_resp(notify, 100, None), 1.1)  # a late provisional
    assert _events(tx) == [] and tx.datagrams_to_send() == []
    tx.handle_timer(5.6)
    assert not tx.terminated
    tx.handle_timer(5.7)
    assert tx.terminated and _events(tx) == [Terminated()]
    assert tx.datagrams_to_send() == []


def test_non_invite_client_on_tcp_never_retransmits_and_ends_on_final() -> None:
    notify = _req(NOTIFY)
    tx = NonInviteClientTransaction(notify, 0.0, reliable=True)
    assert tx.datagrams_to_send() == [bytes(notify)]
    assert tx.next_deadline() == 32.0  # only F
    tx.handle_response(_resp(notify, 404), 3.0)
    assert tx.terminated
    assert _statuses(_events(tx)[:1]) == [404]
    assert tx.next_deadline() is None and tx.datagrams_to_send() == []


def test_non_invite_client_tcp_timeout_without_retransmissions() -> None:
    tx = NonInviteClientTransaction(_req(NOTIFY), 0.0, reliable=True)
    tx.datagrams_to_send()
    assert _run_timers(tx) == []
    assert _events(tx) == [TimedOut("F"), Terminated()]


def test_timers_fire_as_of_their_deadline_when_the_driver_is_late() -> None:
    tx = NonInviteClientTransaction(_req(NOTIFY), 0.0, reliable=False)
    tx.datagrams_to_send()
    tx.handle_timer(0.3)  # early: nothing happens
    assert tx.datagrams_to_send() == [] and tx.next_deadline() == 0.5
    tx.handle_timer(0.7)  # late: the schedule does not drift
    assert len(tx.datagrams_to_send()) == 1 and tx.next_deadline() == 1.5


def test_a_very_late_driver_gets_one_retransmission_and_the_timeout() -> None:
    notify = _req(NOTIFY)
    tx = NonInviteClientTransaction(notify, 0.0, reliable=False)
    tx.datagrams_to_send()
    # The response arrives after F was due: the timeout comes first.
    tx.handle_response(_resp(notify, 200), 40.0)
    assert len(tx.datagrams_to_send()) == 1
    assert _events(tx) == [TimedOut("F"), Terminated()]


def test_client_transport_error_terminates() -> None:
    tx = NonInviteClientTransaction(_req(NOTIFY), 0.0, reliable=True)
    tx.handle_transport_error(0.01)
    assert tx.terminated and _events(tx) == [TransportFailed(), Terminated()]


def test_client_rejects_foreign_responses_and_wrong_requests() -> None:
    notify = _req(NOTIFY)
    tx = NonInviteClientTransaction(notify, 0.0, reliable=False)
    other = _req(NOTIFY.replace(b"z9hG4bKnotify1", b"z9hG4bKother"))
    with pytest.raises(TransactionError):
        tx.handle_response(_resp(other, 200), 0.1)
    with pytest.raises(TransactionError):
        NonInviteClientTransaction(_req(INVITE), 0.0, reliable=False)
    with pytest.raises(TransactionError):
        InviteClientTransaction(notify, 0.0, reliable=False)
    with pytest.raises(TransactionError):  # no magic cookie: not a branch of ours
        NonInviteClientTransaction(
            _req(NOTIFY.replace(b"z9hG4bKnotify1", b"1234")), 0.0, reliable=False
        )


# ------------------------------------------------------ non-INVITE server


def test_non_invite_server_absorbs_and_answers_retransmissions() -> None:
    notify = _req(NOTIFY)
    tx = NonInviteServerTransaction(notify, reliable=False)
    assert _events(tx) == [RequestReceived(notify)]
    tx.handle_request(notify, 0.5)  # Trying: nothing to say yet
    assert tx.datagrams_to_send() == [] and _events(tx) == []
    trying = _resp(notify, 100, None)
    tx.send_response(trying, 0.6)
    assert _state(tx) is State.PROCEEDING and tx.datagrams_to_send() == [bytes(trying)]
    tx.handle_request(notify, 1.5)
    assert tx.datagrams_to_send() == [bytes(trying)]
    ok = _resp(notify, 200)
    tx.send_response(ok, 2.0)
    assert _state(tx) is State.COMPLETED and tx.datagrams_to_send() == [bytes(ok)]
    tx.handle_request(notify, 3.5)
    tx.handle_request(notify, 7.5)
    assert tx.datagrams_to_send() == [bytes(ok), bytes(ok)]
    assert _events(tx) == []  # the TU heard of the request once
    assert tx.next_deadline() == 34.0  # J = 64*T1
    tx.handle_timer(33.9)
    assert not tx.terminated
    tx.handle_timer(34.0)
    assert tx.terminated and _events(tx) == [Terminated()]
    tx.handle_request(notify, 35.0)  # too late: absorbed, nothing sent
    assert tx.datagrams_to_send() == []


def test_server_lets_go_of_its_request_once_the_final_response_is_out() -> None:
    """Timer J keeps a UDP server transaction 32 s after its work: only the
    key and the last response's bytes are needed for that, not the request."""
    notify = _req(NOTIFY)
    tx = NonInviteServerTransaction(notify, reliable=False)
    _events(tx)
    tx.send_response(_resp(notify, 100, None), 0.1)
    assert tx.request is notify  # provisional: the TU still works on it
    ok = _resp(notify, 200)
    tx.send_response(ok, 0.2)
    assert tx.request is None and tx.method == "NOTIFY"
    tx.datagrams_to_send()
    tx.handle_retransmission(1.0)  # a copy recognised by its bytes
    tx.handle_request(notify, 2.0)  # a copy parsed and matched by key
    assert tx.datagrams_to_send() == [bytes(ok), bytes(ok)]
    with pytest.raises(TransactionError):  # still checked against the method
        tx.handle_request(_req(NOTIFY.replace(b"NOTIFY", b"OPTIONS")), 3.0)
    invite = _req(INVITE)
    itx = InviteServerTransaction(invite, reliable=False)
    _events(itx)
    itx.send_response(_resp(invite, 486), 0.1)
    assert itx.request is None and itx.state is State.COMPLETED


def test_client_lets_go_of_its_request_once_a_final_response_arrives() -> None:
    notify = _req(NOTIFY)
    tx = NonInviteClientTransaction(notify, 0.0, reliable=False)
    tx.handle_response(_resp(notify, 100, None), 0.1)
    assert tx.request is notify  # still retransmitted while Proceeding
    tx.handle_response(_resp(notify, 200), 0.2)
    assert tx.request is None and tx.state is State.COMPLETED
    tx.handle_response(_resp(notify, 200), 0.3)  # a retransmission: absorbed
    assert tx.datagrams_to_send() == [bytes(notify)] and tx.next_deadline() == 5.2  # K
    invite = _req(INVITE)
    itx = InviteClientTransaction(invite, 0.0, reliable=False)
    busy = _resp(invite, 486)
    itx.handle_response(busy, 0.1)
    assert itx.request is None and itx.state is State.COMPLETED
    first_ack = itx.datagrams_to_send()[-1]
    itx.handle_response(busy, 0.5)  # the ACK was lost: the same ACK again
    assert itx.datagrams_to_send() == [first_ack] and first_ack.startswith(b"ACK ")


def test_non_invite_server_on_tcp_terminates_with_the_final_response() -> None:
    notify = _req(NOTIFY)
    tx = NonInviteServerTransaction(notify, reliable=True)
    _events(tx)
    tx.send_response(_resp(notify, 200), 1.0)
    assert tx.terminated and _events(tx) == [Terminated()]
    assert len(tx.datagrams_to_send()) == 1


def test_non_invite_server_refuses_a_second_final_or_a_foreign_response() -> None:
    notify = _req(NOTIFY)
    tx = NonInviteServerTransaction(notify, reliable=False)
    tx.send_response(_resp(notify, 200), 1.0)
    with pytest.raises(TransactionError):
        tx.send_response(_resp(notify, 500), 1.1)
    with pytest.raises(TransactionError):
        tx.send_response(_resp(notify, 180), 1.1)
    fresh = NonInviteServerTransaction(notify, reliable=False)
    with pytest.raises(TransactionError):
        fresh.send_response(_resp(_req(INVITE), 200), 0.1)
    with pytest.raises(TransactionError):
        fresh.handle_request(_req(INVITE), 0.1)


# ----------------------------------------------------------- INVITE client


def test_invite_client_timer_a_doubles_without_cap_and_b_times_out() -> None:
    invite = _req(INVITE)
    tx = InviteClientTransaction(invite, 0.0, reliable=False)
    assert tx.datagrams_to_send() == [bytes(invite)] and _state(tx) is State.CALLING
    sent = _run_timers(tx)
    assert [t for t, _ in sent] == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert _events(tx) == [TimedOut("B"), Terminated()]


def test_invite_client_provisional_stops_retransmissions() -> None:
    invite = _req(INVITE)
    tx = InviteClientTransaction(invite, 0.0, reliable=False)
    tx.datagrams_to_send()
    tx.handle_response(_resp(invite, 180), 0.2)
    assert _state(tx) is State.PROCEEDING and _statuses(_events(tx)) == [180]
    # Neither A nor B runs in Proceeding: the TU decides when to CANCEL.
    assert tx.next_deadline() is None


def test_invite_client_acks_a_failure_per_17_1_1_3() -> None:
    invite = _req(INVITE)
    tx = InviteClientTransaction(invite, 0.0, reliable=False)
    tx.datagrams_to_send()
    busy = _resp(invite, 486, tag="busy9")
    tx.handle_response(busy, 0.3)
    assert _state(tx) is State.COMPLETED
    assert _events(tx) == [ResponseReceived(busy)]
    (ack_bytes,) = tx.datagrams_to_send()
    ack = _req(ack_bytes)
    assert ack.method == "ACK" and ack.uri == invite.uri
    assert ack.get_all("Via") == ["SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKinvite1"]
    assert ack.get_all("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert ack.get("From") == invite.get("From") and ack.call_id == invite.call_id
    assert ack.to.tag == "busy9" and ack.to.uri == invite.to.uri
    assert (ack.cseq.seq, ack.cseq.method) == (42, "ACK")
    assert ack.max_forwards == 69 and ack.content_length == 0 and ack.body == b""
    assert "Contact" not in ack and "Timestamp" not in ack
    # A retransmitted 486 gets the same ACK again; the TU is not told twice.
    tx.handle_response(busy, 1.0)
    assert tx.datagrams_to_send() == [ack_bytes] and _events(tx) == []
    assert tx.next_deadline() == pytest.approx(32.3)  # D
    assert _run_timers(tx) == []
    assert tx.terminated and _events(tx) == [Terminated()]


def test_invite_client_on_tcp_acks_and_terminates_at_once() -> None:
    invite = _req(INVITE.replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP"))
    tx = InviteClientTransaction(invite, 0.0, reliable=True)
    tx.datagrams_to_send()
    assert tx.next_deadline() == 32.0  # B only, no A
    tx.handle_response(_resp(invite, 603), 2.0)
    assert _req(tx.datagrams_to_send()[0]).method == "ACK"
    assert tx.terminated and isinstance(_events(tx)[-1], Terminated)


def test_invite_client_2xx_moves_to_accepted_until_timer_m() -> None:
    invite = _req(INVITE)
    tx = InviteClientTransaction(invite, 0.0, reliable=False)
    tx.datagrams_to_send()
    tx.handle_response(_resp(invite, 180), 0.1)
    ok = _resp(invite, 200)
    tx.handle_response(ok, 2.0)
    assert _state(tx) is State.ACCEPTED
    # Every 2xx reaches the TU (it ACKs them); the transaction sends nothing.
    tx.handle_response(ok, 2.5)
    forked = _resp(invite, 200, tag="other-phone")
    tx.handle_response(forked, 2.6)
    tx.handle_response(_resp(invite, 486), 2.7)  # absorbed
    assert _statuses(_events(tx)) == [180, 200, 200, 200]
    assert tx.datagrams_to_send() == []
    assert tx.next_deadline() == 34.0  # M = 64*T1
    _run_timers(tx)
    assert tx.terminated and _events(tx) == [Terminated()]


# ----------------------------------------------------------- INVITE server


def test_invite_server_retransmits_a_failure_with_g_until_h() -> None:
    invite = _req(INVITE)
    tx = InviteServerTransaction(invite, reliable=False)
    assert _events(tx) == [RequestReceived(invite)]
    assert tx.next_deadline() is None
    busy = _resp(invite, 486)
    tx.send_response(busy, 1.0)
    assert _state(tx) is State.COMPLETED and tx.datagrams_to_send() == [bytes(busy)]
    sent = _run_timers(tx)
    assert [t for t, _ in sent] == [1.5, 2.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5, 32.5]
    assert all(d == bytes(busy) for _, d in sent)
    assert _events(tx) == [TimedOut("H"), Terminated()]


def test_invite_server_ack_confirms_and_timer_i_terminates() -> None:
    invite = _req(INVITE)
    tx = InviteServerTransaction(invite, reliable=False)
    _events(tx)
    busy = _resp(invite, 486, tag="busy9")
    tx.send_response(busy, 1.0)
    tx.datagrams_to_send()
    tx.handle_request(invite, 1.2)  # a retransmitted INVITE gets the 486 again
    assert tx.datagrams_to_send() == [bytes(busy)]
    ack = make_ack(invite, busy)
    tx.handle_request(ack, 1.3)
    assert _state(tx) is State.CONFIRMED and _events(tx) == []
    assert tx.next_deadline() == pytest.approx(6.3)  # I = T4; G and H are gone
    tx.handle_request(ack, 2.0)
    tx.handle_request(invite, 2.1)
    assert tx.datagrams_to_send() == [] and _events(tx) == []
    tx.handle_timer(6.3)
    assert tx.terminated and _events(tx) == [Terminated()]


def test_invite_server_on_tcp_has_no_g_and_no_i() -> None:
    invite = _req(INVITE)
    tx = InviteServerTransaction(invite, reliable=True)
    busy = _resp(invite, 486)
    tx.send_response(busy, 1.0)
    assert tx.next_deadline() == 33.0  # H only
    tx.handle_request(make_ack(invite, busy), 1.1)
    assert tx.terminated


def test_invite_server_sends_trying_and_repeats_the_last_provisional() -> None:
    invite = _req(INVITE)
    tx = InviteServerTransaction(invite, reliable=False)
    tx.handle_request(invite, 0.1)  # nothing sent yet: nothing to repeat
    assert tx.datagrams_to_send() == []
    trying = make_trying(invite)
    assert trying.status_code == 100 and trying.to.tag is None
    assert trying.get("Timestamp") == "54.3"
    tx.send_response(trying, 0.15)
    ringing = _resp(invite, 180)
    tx.send_response(ringing, 0.3)
    assert tx.datagrams_to_send() == [bytes(trying), bytes(ringing)]
    tx.handle_request(invite, 0.5)
    assert tx.datagrams_to_send() == [bytes(ringing)]


def test_invite_server_2xx_accepted_absorbs_invites_until_l() -> None:
    invite = _req(INVITE)
    tx = InviteServerTransaction(invite, reliable=False)
    _events(tx)
    ok = _resp(invite, 200)
    tx.send_response(ok, 1.0)
    assert _state(tx) is State.ACCEPTED and tx.datagrams_to_send() == [bytes(ok)]
    tx.handle_request(invite, 1.5)  # absorbed: neither answered nor passed up
    assert tx.datagrams_to_send() == [] and _events(tx) == []
    tx.send_response(ok, 1.5)  # the TU's own 2xx retransmission goes out
    assert tx.datagrams_to_send() == [bytes(ok)]
    with pytest.raises(TransactionError):
        tx.send_response(_resp(invite, 486), 1.6)
    assert tx.next_deadline() == 33.0  # L = 64*T1, no G
    _run_timers(tx)
    assert tx.terminated and _events(tx) == [Terminated()]


def test_invite_server_passes_an_ack_up_in_accepted() -> None:
    invite = _req(INVITE)
    tx = InviteServerTransaction(invite, reliable=False)
    _events(tx)
    ok = _resp(invite, 200)
    tx.send_response(ok, 1.0)
    ack = make_ack(invite, ok)  # an ACK reusing the INVITE's branch
    tx.handle_request(ack, 1.1)
    assert _events(tx) == [RequestReceived(ack)]


def test_invite_server_transport_error_informs_but_keeps_state() -> None:
    invite = _req(INVITE)
    tx = InviteServerTransaction(invite, reliable=False)
    _events(tx)
    tx.send_response(_resp(invite, 486), 1.0)
    tx.handle_transport_error(1.0)
    assert _state(tx) is State.COMPLETED and _events(tx) == [TransportFailed()]


def test_factories_pick_the_machine() -> None:
    assert isinstance(
        new_client_transaction(_req(INVITE), 0, reliable=False), InviteClientTransaction
    )
    assert isinstance(
        new_client_transaction(_req(NOTIFY), 0, reliable=False), NonInviteClientTransaction
    )
    assert isinstance(new_server_transaction(_req(INVITE), reliable=False), InviteServerTransaction)
    assert isinstance(
        new_server_transaction(_req(NOTIFY), reliable=False), NonInviteServerTransaction
    )
    with pytest.raises(TransactionError):
        new_server_transaction(make_ack(_req(INVITE), _resp(_req(INVITE), 200)), reliable=False)


# ------------------------------------------------ loss of any one datagram

LATENCY = 0.05


@dataclass
class _Sim:
    """A client and a server endpoint joined by a lossy UDP "wire".

    Everything is ordered on one heap of (time, seq, action): datagrams in
    flight, transaction timers (re-read after every step) and the server
    TU's delayed answers.
    """

    request: Request
    final: int
    answer_delay: float
    provisional: bool
    latency: float = LATENCY
    drop: int | None = None
    sent: int = 0
    dropped: bool = False
    client_events: list[TransactionEvent] = field(default_factory=list)
    server_requests: list[Request] = field(default_factory=list)
    server_timeouts: int = 0
    servers: list[ServerTransaction] = field(default_factory=list)
    heap: list[tuple[float, int, Callable[[float], None]]] = field(default_factory=list)
    seq: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.table = TransactionTable()
        self.client = new_client_transaction(self.request, 0.0, reliable=False)
        self.table.add(self.client)

    def at(self, when: float, action: Callable[[float], None]) -> None:
        heapq.heappush(self.heap, (when, next(self.seq), action))

    def transmit(self, now: float, data: bytes, to_server: bool) -> None:
        index, self.sent = self.sent, self.sent + 1
        if index == self.drop:
            self.dropped = True
            return
        deliver = self.to_server if to_server else self.to_client
        self.at(now + self.latency, lambda t: deliver(t, data))

    def pump(self, tx: ClientTransaction | ServerTransaction, now: float) -> None:
        for data in tx.datagrams_to_send():
            self.transmit(now, data, to_server=tx is self.client)
        while (event := tx.next_event()) is not None:
            if tx is self.client:
                self.client_events.append(event)
            elif isinstance(event, RequestReceived) and event.request.method != "ACK":
                self.server_requests.append(event.request)
                assert isinstance(tx, ServerTransaction)
                self.answer(tx, now)
            elif isinstance(event, TimedOut):
                self.server_timeouts += 1
        deadline = tx.next_deadline()
        if deadline is not None:
            self.at(deadline, lambda t: self.fire(tx, t))

    def fire(self, tx: ClientTransaction | ServerTransaction, now: float) -> None:
        tx.handle_timer(now)
        self.pump(tx, now)

    def answer(self, tx: ServerTransaction, now: float) -> None:
        request = tx.request

        def final(t: float) -> None:
            tx.send_response(_resp(request, self.final), t)
            self.pump(tx, t)

        if self.provisional:
            tx.send_response(_resp(request, 100, None), now)
        self.at(now + self.answer_delay, final)

    def to_server(self, now: float, data: bytes) -> None:
        request = _req(data)
        tx = self.table.match_request(request)
        if tx is None:
            tx = new_server_transaction(request, reliable=False)
            self.table.add(tx)
            self.servers.append(tx)
        else:
            tx.handle_request(request, now)
        self.pump(tx, now)

    def to_client(self, now: float, data: bytes) -> None:
        response = parse_message(data)
        assert isinstance(response, Response)
        tx = self.table.match_response(response)
        assert tx is self.client
        tx.handle_response(response, now)
        self.pump(tx, now)

    def run(self) -> _Sim:
        self.pump(self.client, 0.0)
        while self.heap:
            when, _, action = heapq.heappop(self.heap)
            action(when)
        return self


def _check_exchange(sim: _Sim) -> None:
    finals = [s for s in _statuses(sim.client_events) if s >= 200]
    assert finals == [sim.final], "the client TU must see exactly one final response"
    assert not any(isinstance(e, TimedOut | TransportFailed) for e in sim.client_events)
    assert len(sim.server_requests) == 1, "the server TU must see the request once"
    assert len(sim.servers) == 1 and sim.server_timeouts == 0
    assert sim.client.terminated and all(s.terminated for s in sim.servers)
    if not sim.provisional:
        assert _statuses(sim.client_events) == [sim.final]


SCENARIOS = [
    pytest.param(NOTIFY, 200, 0.0, False, id="notify-200-at-once"),
    pytest.param(NOTIFY, 200, 1.2, True, id="notify-100-then-200"),
    pytest.param(NOTIFY, 489, 0.0, False, id="notify-489"),
    pytest.param(INVITE, 486, 0.0, False, id="invite-486-and-ack"),
    pytest.param(INVITE, 486, 2.0, True, id="invite-100-then-486"),
]


@pytest.mark.parametrize(("raw", "final", "delay", "provisional"), SCENARIOS)
def test_loss_of_any_one_datagram_is_repaired(
    raw: bytes, final: int, delay: float, provisional: bool
) -> None:
    request = _req(raw)
    clean = _Sim(request, final, delay, provisional).run()
    _check_exchange(clean)
    assert clean.sent >= 2
    for drop in range(clean.sent):
        lossy = _Sim(request, final, delay, provisional, drop=drop).run()
        assert lossy.dropped
        _check_exchange(lossy)


def test_the_simulation_notices_a_broken_transaction_layer() -> None:
    """The harness itself can fail: with the loss repaired by nothing (a
    transaction that never retransmits, as on TCP), the exchange times out."""
    sim = _Sim(_req(NOTIFY), 200, 0.0, False, drop=0)
    sim.client = new_client_transaction(sim.request, 0.0, reliable=True)
    sim.table = TransactionTable()
    sim.table.add(sim.client)
    sim.run()
    with pytest.raises(AssertionError):
        _check_exchange(sim)
    assert TimedOut("F") in sim.client_events


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    latency=st.floats(0.001, 0.9),
    delay=st.floats(0.0, 6.0),
    provisional=st.booleans(),
    invite=st.booleans(),
)
def test_loss_of_any_one_datagram_with_any_timing(
    data: st.DataObject, latency: float, delay: float, provisional: bool, invite: bool
) -> None:
    request = _req(INVITE if invite else NOTIFY)
    final = 486 if invite else 200
    clean = _Sim(request, final, delay, provisional, latency=latency).run()
    _check_exchange(clean)
    drop = data.draw(st.integers(0, clean.sent - 1), label="drop")
    lossy = _Sim(request, final, delay, provisional, latency=latency, drop=drop).run()
    assert lossy.dropped
    _check_exchange(lossy)


# ------------------------------------------------------------------ matching


def test_new_branch_is_unique_and_rfc3261() -> None:
    branches = {new_branch() for _ in range(1000)}
    assert len(branches) == 1000
    assert all(b.startswith(MAGIC_COOKIE) and is_rfc3261_branch(b) for b in branches)
    assert all(len(b) >= len(MAGIC_COOKIE) + 16 for b in branches)
    assert not is_rfc3261_branch(MAGIC_COOKIE) and not is_rfc3261_branch("abc123")
    assert not is_rfc3261_branch(None)


def test_client_key_of_a_request_equals_that_of_its_responses() -> None:
    notify = _req(NOTIFY)
    assert client_key(notify) == ClientKey("z9hG4bKnotify1", "NOTIFY")
    assert client_key(_resp(notify, 200)) == client_key(notify)
    cancel = make_cancel(_req(INVITE))
    assert client_key(cancel) == ClientKey("z9hG4bKinvite1", "CANCEL")
    assert client_key(cancel) != client_key(_req(INVITE))


def test_table_matches_responses_by_branch_and_cseq_method() -> None:
    table = TransactionTable()
    invite = _req(INVITE)
    inv_tx = new_client_transaction(invite, 0.0, reliable=False)
    cancel_tx = new_client_transaction(make_cancel(invite), 1.0, reliable=False)
    table.add(inv_tx)
    table.add(cancel_tx)
    assert table.match_response(_resp(invite, 487)) is inv_tx
    assert table.match_response(_resp(make_cancel(invite), 200)) is cancel_tx
    stranger = _req(INVITE.replace(b"z9hG4bKinvite1", b"z9hG4bKunknown"))
    assert table.match_response(_resp(stranger, 200)) is None
    no_via = Response(200, "OK", [("CSeq", "42 INVITE")])
    assert table.match_response(no_via) is None


def test_the_server_key_is_computed_once_and_not_kept_across_a_new_top_via() -> None:
    from phonecast.sip.headers import Via

    notify = _req(NOTIFY)
    assert server_key(notify) is server_key(notify)  # cached with the message
    moved = notify.with_top_via(Via("UDP", "192.0.2.7", 5070, (("branch", "z9hG4bKother"),)))
    assert server_key(moved) == BranchKey("z9hG4bKother", "192.0.2.7", 5070, "NOTIFY")
    stamped = notify.with_top_via(notify.top_via.with_params(received="198.51.100.1"))
    assert server_key(stamped) == server_key(notify)  # received is not part of it
    assert client_key(notify) is client_key(notify)
    assert client_key(moved) == ClientKey("z9hG4bKother", "NOTIFY")


def test_server_matching_by_branch_sent_by_and_method() -> None:
    notify = _req(NOTIFY)
    key = server_key(notify)
    assert key == BranchKey("z9hG4bKnotify1", "192.0.2.1", 5060, "NOTIFY")
    table = TransactionTable()
    tx = new_server_transaction(notify, reliable=False)
    table.add(tx)
    assert table.match_request(_req(NOTIFY)) is tx  # a retransmission
    other_host = _req(NOTIFY.replace(b"UDP 192.0.2.1:5060", b"UDP 192.0.2.99:5060"))
    assert table.match_request(other_host) is None
    other_branch = _req(NOTIFY.replace(b"z9hG4bKnotify1", b"z9hG4bKnotify2"))
    assert table.match_request(other_branch) is None
    with pytest.raises(TransactionError):
        table.add(new_server_transaction(notify, reliable=False))


def test_ack_for_a_failure_matches_its_invite_and_cancel_does_not() -> None:
    invite = _req(INVITE)
    table = TransactionTable()
    tx = new_server_transaction(invite, reliable=False)
    assert isinstance(tx, InviteServerTransaction)
    table.add(tx)
    busy = _resp(invite, 486, tag="busy9")
    tx.send_response(busy, 1.0)
    ack = make_ack(invite, busy)
    assert server_key(ack) == server_key(invite)
    assert table.match_request(ack) is tx
    tx.handle_request(ack, 1.1)
    assert _state(tx) is State.CONFIRMED
    cancel = make_cancel(invite)
    assert cancel.method == "CANCEL" and cancel.to.tag is None
    assert table.match_request(cancel) is None  # CANCEL is its own transaction
    assert table.find_cancel_target(cancel) is tx
    # The ACK of a 2xx has a branch of its own: it goes to the TU.
    ack_2xx = ack.with_header_replaced("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKack2")
    assert table.match_request(ack_2xx) is None


def test_rfc2543_fallback_absorbs_a_badbranch_retransmission() -> None:
    data = (CORPUS / "rfc4475" / "badbranch.dat").read_bytes()
    options = _req(data)
    assert options.top_via.branch == MAGIC_COOKIE  # the cookie and nothing else
    key = server_key(options)
    assert isinstance(key, LegacyKey) and key.cseq == 8 and key.from_tag == "33242"
    table = TransactionTable()
    tx = new_server_transaction(options, reliable=False)
    table.add(tx)
    ok = _resp(options, 200)
    tx.send_response(ok, 0.1)
    tx.datagrams_to_send()
    again = table.match_request(_req(data))
    assert again is tx
    again.handle_request(_req(data), 0.6)
    assert tx.datagrams_to_send() == [bytes(ok)] and _events(tx) == [RequestReceived(options)]
    # Any difference in the identifying fields is a new request.
    for old, new in [
        (b"CSeq: 8", b"CSeq: 9"),
        (b"tag=33242", b"tag=33243"),
        (b"Call-ID: badbranch.", b"Call-ID: otherbranch."),
        (b"OPTIONS sip:user@example.com", b"OPTIONS sip:other@example.com"),
        (b"192.0.2.1;", b"192.0.2.2;"),
    ]:
        assert table.match_request(_req(data.replace(old, new))) is None, new


def test_rfc2543_ack_matches_by_the_to_tag_of_our_response() -> None:
    legacy = INVITE.replace(b";branch=z9hG4bKinvite1", b"")
    invite = _req(legacy)
    assert isinstance(server_key(invite), LegacyKey)
    table = TransactionTable()
    tx = new_server_transaction(invite, reliable=False)
    assert isinstance(tx, InviteServerTransaction)
    table.add(tx)
    busy = _resp(invite, 486, tag="busy9")
    tx.send_response(busy, 1.0)
    ack = make_ack(invite, busy)
    assert ack.to.tag == "busy9"
    assert table.match_request(ack) is tx
    wrong = ack.with_header_replaced("To", "<sip:1001@example.com>;tag=someone-else")
    assert table.match_request(wrong) is None
    assert table.match_request(_req(legacy)) is tx  # INVITE retransmission
    assert table.match_request(_req(legacy.replace(b"CSeq: 42", b"CSeq: 43"))) is None


def test_table_removal() -> None:
    table = TransactionTable()
    done = new_server_transaction(_req(NOTIFY), reliable=True)
    done.send_response(_resp(done.request, 200), 0.0)
    live = new_client_transaction(_req(INVITE), 0.0, reliable=False)
    table.add(done)
    table.add(live)
    assert len(table) == 2
    assert table.remove_terminated() == 1
    assert table.match_request(_req(NOTIFY)) is None and len(table) == 1
    table.remove(new_client_transaction(_req(INVITE), 0.0, reliable=False))  # not the one held
    assert table.match_response(_resp(_req(INVITE), 180)) is live
    table.remove(live)
    assert len(table) == 0
    # A terminated transaction's key can be reused; a live one's cannot.
    table.add(done)
    table.add(new_server_transaction(_req(NOTIFY), reliable=False))
    with pytest.raises(TransactionError):
        table.add(new_server_transaction(_req(NOTIFY), reliable=False))
