"""A UDP server transaction retired after its final response (see
SipEndpoint._retire): it must answer as the machine it replaced would have,
to the same place, refuse what the machine refused, and be over at Timer J."""

from __future__ import annotations

import asyncio
import time

import pytest

from phonecast.net.endpoint import ServerHandle, SipEndpoint
from phonecast.net.transport import Flow
from phonecast.sip import Request, TransactionError, make_response
from tests.net.test_endpoint import FAST, Answerer, _notify, _raw_socket, _recv
from tests.waiting import until

pytestmark = pytest.mark.both_loops


async def test_an_answered_udp_request_is_retired_until_timer_j() -> None:
    """After its final response a UDP NOTIFY's transaction is kept as the
    core's CompletedServer: no machine, no timer of its own.  Until Timer J
    it answers a byte-identical copy without a parse and a copy in other
    bytes by its key, and the TU hears of the request once; then it goes,
    and the same datagram is a new request."""
    tu = Answerer()
    server = SipEndpoint(handler=tu, timers=FAST)
    _, sport = await server.listen_udp("127.0.0.1")
    raw = _raw_socket()
    via = f"SIP/2.0/UDP 127.0.0.1:{raw.getsockname()[1]}"
    try:
        sent = []
        for n in range(5):
            request = _notify(server, sport).with_header_replaced(
                "Via", f"{via};branch=z9hG4bKr{n}"
            )
            sent.append(bytes(request))
            raw.sendto(sent[-1], ("127.0.0.1", sport))
            assert (await _recv(raw)).status_code == 200
        assert server.stats.transactions == 5 and not server._entries
        raw.sendto(sent[0], ("127.0.0.1", sport))
        first = await _recv(raw)
        assert first.status_code == 200 and server.stats.absorbed == 1
        raw.sendto(sent[1].replace(b"Max-Forwards:", b"max-forwards:"), ("127.0.0.1", sport))
        assert (await _recv(raw)).status_code == 200
        assert server.stats.absorbed == 1 and len(tu.seen) == 5  # matched by key, not bytes
        await until(lambda: server.stats.transactions == 0, what="Timer J ends all five")
        raw.sendto(sent[0], ("127.0.0.1", sport))
        assert (await _recv(raw)).status_code == 200
        assert len(tu.seen) == 6  # over: a new request, a new transaction
        assert server.stats.transactions == 1
    finally:
        raw.close()
        await server.close()
    assert server.stats.transactions == 0  # closing forgets the retired too


async def test_a_copy_in_other_bytes_is_answered_where_the_transaction_was() -> None:
    """A copy matched by key from another source, asking by its Via (rport)
    for an answer there, gets nothing there: the answer goes to where the
    transaction's went, as the machine's retransmission did, so that copies
    from forged sources cannot make the phone a reflector."""
    tu = Answerer()
    server = SipEndpoint(handler=tu, timers=FAST)
    _, sport = await server.listen_udp("127.0.0.1")
    first, other = _raw_socket(), _raw_socket()
    try:
        via = f"SIP/2.0/UDP 127.0.0.1:{first.getsockname()[1]};branch=z9hG4bKrefl;rport"
        request = bytes(_notify(server, sport).with_header_replaced("Via", via))
        first.sendto(request, ("127.0.0.1", sport))
        assert (await _recv(first)).status_code == 200
        other.sendto(request.replace(b"Max-Forwards:", b"max-forwards:"), ("127.0.0.1", sport))
        assert (await _recv(first)).status_code == 200  # the retransmission, to the first
        await asyncio.sleep(0.1)
        with pytest.raises(BlockingIOError):  # nothing came to the copy's source
            other.recv(65535)
        assert len(tu.seen) == 1
    finally:
        first.close()
        other.close()
        await server.close()


async def test_a_kept_handle_still_cannot_answer_twice() -> None:
    """The TU may keep its handle; a second final response through it was
    refused by the machine (TransactionError) and still is once retired,
    until Timer J ends the transaction (then it is ignored, as before)."""
    handles: list[ServerHandle] = []

    def answer(request: Request, handle: ServerHandle | None, flow: Flow) -> None:
        assert handle is not None
        handles.append(handle)
        handle.respond(make_response(request, 200, to_tag="srv"))

    server = SipEndpoint(handler=answer, timers=FAST)
    _, sport = await server.listen_udp("127.0.0.1")
    raw = _raw_socket()
    try:
        via = f"SIP/2.0/UDP 127.0.0.1:{raw.getsockname()[1]};branch=z9hG4bKtwice"
        request = _notify(server, sport).with_header_replaced("Via", via)
        raw.sendto(bytes(request), ("127.0.0.1", sport))
        assert (await _recv(raw)).status_code == 200
        assert not server._entries  # retired
        with pytest.raises(TransactionError):
            handles[0].respond(make_response(request, 486, to_tag="srv"))
        await until(lambda: server.stats.transactions == 0, what="Timer J")
        handles[0].respond(make_response(request, 486, to_tag="srv"))  # over: ignored
    finally:
        raw.close()
        await server.close()


@pytest.mark.parametrize("reworded", [False, True], ids=["same-bytes", "other-bytes"])
async def test_a_copy_after_timer_j_is_a_new_request_even_before_the_sweep(
    reworded: bool,
) -> None:
    """The loop is held past Timer J, so the sweep has not run when a copy
    arrives: both ways of matching it see the transaction is over, and the
    copy is a new request with a transaction of its own (not an answer from
    the dead one, nor a refused transaction for a key still taken)."""
    tu = Answerer()
    server = SipEndpoint(handler=tu, timers=FAST)
    local = await server.listen_udp("127.0.0.1")
    raw = _raw_socket()
    try:
        via = f"SIP/2.0/UDP 127.0.0.1:{raw.getsockname()[1]};branch=z9hG4bKlate"
        request = bytes(_notify(server, local[1]).with_header_replaced("Via", via))
        raw.sendto(request, local)
        assert (await _recv(raw)).status_code == 200
        time.sleep(64 * FAST.t1 + 0.1)  # past Timer J, the loop held: no sweep yet
        copy = request.replace(b"Max-Forwards:", b"max-forwards:") if reworded else request
        now = server.now()
        server._on_data(copy, Flow("udp", raw.getsockname(), local))
        assert len(tu.seen) == 2  # a new request reached the TU
        # ...and has a transaction of its own (retired once answered); the
        # dead one is gone.
        assert not server._entries
        assert [r.record.expires > now for r in server._retired] == [True]
        server.flush()
        assert (await _recv(raw)).status_code == 200
    finally:
        raw.close()
        await server.close()
