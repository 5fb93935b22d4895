"""A non-INVITE server transaction retired to a :class:`CompletedServer`.

The value must do exactly what the machine it replaces would have done for
the rest of Timer J, and the table must find it where it found the machine.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phonecast.sip import Request, TransactionError, parse_message
from phonecast.sip.response import make_response
from phonecast.sip.transaction import (
    CompletedServer,
    NonInviteServerTransaction,
    State,
    Timers,
    TransactionTable,
    new_server_transaction,
)
from tests.sip.test_transaction import INVITE, NOTIFY


def _req(data: bytes) -> Request:
    msg = parse_message(data)
    assert isinstance(msg, Request)
    return msg


def _answered(
    code: int = 200, *, at: float = 1.0, reliable: bool = False, timers: Timers | None = None
) -> tuple[NonInviteServerTransaction, bytes]:
    request = _req(NOTIFY)
    tx = new_server_transaction(request, reliable=reliable, timers=timers or Timers())
    assert isinstance(tx, NonInviteServerTransaction)
    response = make_response(request, code, to_tag="t1")
    tx.send_response(response, at)
    assert tx.datagrams_to_send() == [bytes(response)]
    return tx, bytes(response)


def test_only_a_completed_udp_transaction_has_a_record() -> None:
    tx = new_server_transaction(_req(NOTIFY), reliable=False)
    assert isinstance(tx, NonInviteServerTransaction)
    assert tx.completed() is None  # Trying: the TU has not answered
    request = _req(NOTIFY)
    proceeding = NonInviteServerTransaction(request, reliable=False)
    proceeding.send_response(make_response(request, 100), 0.0)
    assert proceeding.completed() is None  # a provisional is not the end
    over_tcp, _ = _answered(reliable=True)
    assert over_tcp.terminated and over_tcp.completed() is None  # Timer J is zero
    tx, response = _answered(at=2.0)
    record = tx.completed()
    assert record is not None
    assert (record.key, record.response, record.expires) == (tx.key, response, 34.0)
    tx.handle_timer(34.0)
    assert tx.terminated and tx.completed() is None


@given(
    code=st.integers(200, 699),
    t1=st.floats(0.01, 2.0),
    answered_at=st.floats(0.0, 1e6),
    copies=st.lists(st.floats(0.0, 200.0), max_size=6),
)
def test_the_record_answers_as_the_machine_would(
    code: int, t1: float, answered_at: float, copies: list[float]
) -> None:
    """Every retransmission at any time after the final response: the machine
    sends the response while in Completed and nothing once Timer J ended it;
    the record's answer is the same, copy by copy."""
    timers = Timers(t1=t1, t2=max(4.0, t1), t4=5.0)
    tx, response = _answered(code, at=answered_at, timers=timers)
    record = tx.completed()
    assert record is not None
    request = _req(NOTIFY)
    for offset in sorted(copies):
        now = answered_at + offset
        tx.handle_request(request, now)
        sent = tx.datagrams_to_send()
        assert sent == ([] if record.answer(now) is None else [response])
        assert (tx.state is State.COMPLETED) == (record.answer(now) is not None)


def test_the_table_finds_a_retired_transaction_by_its_key() -> None:
    table = TransactionTable()
    tx, response = _answered()
    table.add(tx)
    record = table.retire(tx)
    assert isinstance(record, CompletedServer) and len(table) == 1
    copy = _req(NOTIFY.replace(b"Max-Forwards: 70", b"max-forwards:   70"))
    assert table.match_request(copy) is None  # the machine is gone...
    assert table.match_completed(copy) is record  # ...its value answers
    assert record.answer(2.0) == response
    other = _req(NOTIFY.replace(b"z9hG4bKnotify1", b"z9hG4bKnotify2"))
    assert table.match_completed(other) is None
    with pytest.raises(TransactionError):  # the key is still taken
        table.add(new_server_transaction(_req(NOTIFY), reliable=False))
    table.remove_completed(record)
    assert len(table) == 0 and table.match_completed(copy) is None
    table.add(new_server_transaction(_req(NOTIFY), reliable=False))  # free again


def test_retire_leaves_what_it_cannot_replace() -> None:
    table = TransactionTable()
    unregistered, _ = _answered()
    assert table.retire(unregistered) is None
    pending = new_server_transaction(_req(NOTIFY), reliable=False)
    assert isinstance(pending, NonInviteServerTransaction)
    table.add(pending)
    assert table.retire(pending) is None  # not answered yet: still the machine
    assert table.match_request(_req(NOTIFY)) is pending
    stale, _ = _answered()
    table.remove_completed(CompletedServer(stale.key, b"other", 1.0))  # not the one held
    assert len(table) == 1


def test_an_ack_never_matches_a_retired_transaction() -> None:
    """Only an INVITE's transaction takes an ACK; a retired NOTIFY with the
    INVITE's branch (a peer reusing it) does not swallow the INVITE's ACK."""
    table = TransactionTable()
    invite_branch = b"z9hG4bKinvite1"
    request = _req(NOTIFY.replace(b"z9hG4bKnotify1", invite_branch))
    tx = NonInviteServerTransaction(request, reliable=False)
    tx.send_response(make_response(request, 200, to_tag="t1"), 0.0)
    table.add(tx)
    assert table.retire(tx) is not None
    ack = _req(INVITE.replace(b"INVITE sip", b"ACK sip").replace(b"42 INVITE", b"42 ACK"))
    assert table.match_completed(ack) is None
