"""SipEndpoint on loopback: client and server transactions over UDP and TCP."""

from __future__ import annotations

import asyncio
import gc
import socket
import tracemalloc
from collections.abc import AsyncIterator
from typing import NamedTuple

import pytest

from phonecast.net.endpoint import ServerHandle, SipEndpoint
from phonecast.net.transport import Flow
from phonecast.sip import Request, Response, SipUri, parse_message
from phonecast.sip.response import make_response
from phonecast.sip.transaction import Timers

#: Transports are where asyncio's loop and uvloop differ: run on both.
pytestmark = pytest.mark.both_loops

FAST = Timers(t1=0.02, t2=0.08, t4=0.1, d_min=0.0)


def _notify(ep: SipEndpoint, port: int, transport: str = "udp") -> Request:
    return Request(
        "NOTIFY",
        SipUri("127.0.0.1", "1001", port=port),
        [
            ("Via", ep.via(transport)),
            ("Max-Forwards", "70"),
            ("From", "<sip:pc@127.0.0.1>;tag=abc"),
            ("To", f"<sip:1001@127.0.0.1:{port}>"),
            ("Call-ID", f"call-{id(ep)}-{port}@127.0.0.1"),
            ("CSeq", "1 NOTIFY"),
            ("Event", "XML-Service"),
        ],
    ).with_body(b"http://127.0.0.1/x.xml", "text/html")


async def _recv(sock: socket.socket) -> Response:
    data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 65535), 2)
    msg = parse_message(data)
    assert isinstance(msg, Response)
    return msg


def _raw_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


async def _receive_from(sock: socket.socket, timeout: float) -> tuple[bytes, tuple[str, int]]:
    """One datagram and its source, on either loop (uvloop has no
    ``sock_recvfrom``)."""
    loop = asyncio.get_running_loop()
    arrived: asyncio.Future[None] = loop.create_future()
    loop.add_reader(sock.fileno(), lambda: arrived.done() or arrived.set_result(None))
    try:
        await asyncio.wait_for(arrived, timeout)
    finally:
        loop.remove_reader(sock.fileno())
    data, source = sock.recvfrom(65535)
    return data, source


class Answerer:
    """A TU answering every request with ``code``."""

    def __init__(self, code: int = 200) -> None:
        self.code = code
        self.seen: list[tuple[Request, Flow]] = []

    def __call__(self, request: Request, handle: ServerHandle | None, flow: Flow) -> None:
        self.seen.append((request, flow))
        if handle is not None:
            handle.respond(make_response(request, self.code, to_tag="srv"))


class UdpPair(NamedTuple):
    """A client endpoint and a server endpoint whose TU answers 200, on UDP."""

    tu: Answerer
    server: SipEndpoint
    client: SipEndpoint
    port: int  # the server's


@pytest.fixture
async def udp_pair() -> AsyncIterator[UdpPair]:
    tu = Answerer()
    server = SipEndpoint(handler=tu, timers=FAST)
    client = SipEndpoint(timers=FAST)
    _, sport = await server.listen_udp("127.0.0.1")
    await client.listen_udp("127.0.0.1")
    try:
        yield UdpPair(tu, server, client, sport)
    finally:
        await client.close()
        await server.close()


async def test_udp_request_response(udp_pair: UdpPair) -> None:
    tu, server, client, sport = udp_pair
    resp, why = await client.request(_notify(client, sport), "udp", ("127.0.0.1", sport))
    assert why == "final" and resp is not None and resp.status_code == 200
    req, flow = tu.seen[0]
    # RFC 3581: the server recorded where the request came from.
    assert req.top_via.rport == client.udp.local[1]  # type: ignore[union-attr]
    assert req.top_via.received == "127.0.0.1"
    assert flow.transport == "udp"
    assert server.stats.received == 1 and client.stats.received == 1


async def test_udp_timeout_and_retransmissions_counted() -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    client = SipEndpoint(timers=FAST)
    await client.listen_udp("127.0.0.1")
    try:
        resp, why = await asyncio.wait_for(
            client.request(_notify(client, port), "udp", ("127.0.0.1", port)), 5
        )
        assert (resp, why) == (None, "timeout")
        silent.setblocking(False)
        copies = 0
        while True:
            try:
                silent.recv(65535)
            except BlockingIOError:
                break
            copies += 1
        assert copies >= 5  # Timer E retransmitted until Timer F (64*T1)
        assert client.stats.transactions == 0
    finally:
        silent.close()
        await client.close()


async def test_a_request_that_cannot_be_sent_ends_as_a_transport_failure(
    udp_pair: UdpPair,
) -> None:
    """Port 0 makes the kernel refuse the datagram (EINVAL): the transaction
    ends with "transport" at once, not after Timer F (the datagram is held
    to the end of the loop's turn, and the failure reported from there).
    Also for a request made by a response callback."""
    _, _, client, sport = udp_pair
    resp, why = await asyncio.wait_for(
        client.request(_notify(client, 0), "udp", ("127.0.0.1", 0)), 1
    )
    assert (resp, why) == (None, "transport")
    outcomes: list[str] = []
    finished = asyncio.Event()

    tasks: list[asyncio.Task[None]] = []

    def then(response: Response | None, why: str) -> None:
        if response is not None and response.status_code == 200:
            # Made from inside the client's drain: a second request, to nowhere.
            request = client.send_request(_notify(client, 0), "udp", ("127.0.0.1", 0), failed)
            tasks.append(asyncio.ensure_future(request))

    def failed(response: Response | None, why: str) -> None:
        outcomes.append(why)
        finished.set()

    await client.send_request(_notify(client, sport), "udp", ("127.0.0.1", sport), then)
    await asyncio.wait_for(finished.wait(), 1)
    assert outcomes == ["transport"]
    assert client.stats.transactions <= 1  # the first one may still absorb (Timer K)


async def test_a_udp_request_without_a_udp_transport_is_refused_before_anything_starts() -> None:
    """Both ways in (awaiting the final response, or a callback) refuse at
    once, and no transaction is left behind."""
    ep = SipEndpoint()
    await ep.listen_stream("tcp", "127.0.0.1", 0)
    request = _notify(ep, 5060, "tcp")
    try:
        with pytest.raises(OSError, match="no UDP transport"):
            await ep.request(request, "udp", ("127.0.0.1", 5060), timeout=1)
        with pytest.raises(OSError, match="no UDP transport"):
            await ep.send_request(request, "udp", ("127.0.0.1", 5060), lambda _r: None)
        assert ep.stats.transactions == 0
    finally:
        await ep.close()


async def test_past_its_transaction_bound_an_endpoint_answers_503_statelessly() -> None:
    """A flood of new requests cannot make the endpoint hold more than
    max_server_transactions: past it each is answered 503 with Retry-After
    (RFC 3261 21.5.4), the TU never sees it and nothing is kept; once
    transactions end (Timer J), requests are served again."""
    tu = Answerer()
    server = SipEndpoint(handler=tu, timers=FAST, max_server_transactions=3)
    client = SipEndpoint(timers=FAST)
    _, sport = await server.listen_udp("127.0.0.1")
    await client.listen_udp("127.0.0.1")
    try:
        codes = []
        for n in range(5):
            request = _notify(client, sport).with_header_replaced("Call-ID", f"bound-{n}@h")
            resp, why = await client.request(request, "udp", ("127.0.0.1", sport))
            assert resp is not None, why
            codes.append(resp.status_code)
            if resp.status_code == 503:
                assert resp.get("Retry-After") == "5"
        assert codes == [200, 200, 200, 503, 503]
        assert len(tu.seen) == 3 and server.stats.overloaded == 2
        assert server.stats.transactions == 3  # the refused left nothing behind
        await asyncio.sleep(64 * FAST.t1 + 0.2)  # Timer J ends the three
        assert server.stats.transactions == 0
        resp, _ = await client.request(_notify(client, sport), "udp", ("127.0.0.1", sport))
        assert resp is not None and resp.status_code == 200
    finally:
        await client.close()
        await server.close()


async def test_retransmitted_request_is_answered_once_by_tu() -> None:
    tu = Answerer()
    server = SipEndpoint(handler=tu, timers=FAST)
    _, sport = await server.listen_udp("127.0.0.1")
    raw = _raw_socket()
    try:
        req = _notify(server, sport).with_header_replaced(
            "Via", f"SIP/2.0/UDP 127.0.0.1:{raw.getsockname()[1]};branch=z9hG4bKretx"
        )
        for _ in range(3):
            raw.sendto(bytes(req), ("127.0.0.1", sport))
            assert (await _recv(raw)).status_code == 200
        assert len(tu.seen) == 1
    finally:
        raw.close()
        await server.close()


async def test_unparseable_request_gets_salvaged_400_and_next_request_works() -> None:
    tu = Answerer()
    server = SipEndpoint(handler=tu, timers=FAST)
    _, sport = await server.listen_udp("127.0.0.1")
    raw = _raw_socket()
    rport = raw.getsockname()[1]
    try:
        good = _notify(server, sport).with_header_replaced(
            "Via", f"SIP/2.0/UDP 127.0.0.1:{rport};branch=z9hG4bKbad1"
        )
        broken = bytes(good).replace(b"Content-Length: 22", b"Content-Length: -5")
        raw.sendto(broken, ("127.0.0.1", sport))
        assert (await _recv(raw)).status_code == 400
        raw.sendto(b"\x00\xff garbage", ("127.0.0.1", sport))
        fine = good.with_header_replaced("Via", f"SIP/2.0/UDP 127.0.0.1:{rport};branch=z9hG4bKok")
        raw.sendto(bytes(fine), ("127.0.0.1", sport))
        assert (await _recv(raw)).status_code == 200
        assert server.stats.parse_errors == 2
    finally:
        raw.close()
        await server.close()


async def test_invalid_request_refused_with_validation_code(udp_pair: UdpPair) -> None:
    tu, _server, client, sport = udp_pair
    req = _notify(client, sport).with_header("To", "<sip:other@127.0.0.1>")
    resp, _ = await client.request(req, "udp", ("127.0.0.1", sport))
    assert resp is not None and resp.status_code == 400
    assert tu.seen == []


async def test_tcp_request_response() -> None:
    tu = Answerer(486)
    server = SipEndpoint(handler=tu, timers=FAST)
    client = SipEndpoint(timers=FAST)
    _, sport = await server.listen_stream("tcp", "127.0.0.1")
    try:
        resp, why = await client.request(_notify(client, sport, "tcp"), "tcp", ("127.0.0.1", sport))
        assert resp is not None and resp.status_code == 486 and why == "final"
        assert tu.seen[0][1].transport == "tcp"
        # Over: its connection carries no client transaction any more, so
        # the connection's loss (or the server's, of any it accepted) is
        # not looked into (see SipEndpoint._connection_lost).
        assert not client._on_stream and not server._on_stream
    finally:
        await client.close()
        await server.close()


async def test_many_concurrent_transactions_share_one_timer(udp_pair: UdpPair) -> None:
    tu, _server, client, sport = udp_pair
    results = await asyncio.gather(
        *(
            client.request(
                _notify(client, sport).with_header_replaced("Call-ID", f"c{i}@h"),
                "udp",
                ("127.0.0.1", sport),
            )
            for i in range(300)
        )
    )
    assert all(r is not None and r.status_code == 200 for r, _ in results)
    assert len(tu.seen) == 300


async def test_each_udp_socket_answers_from_itself() -> None:
    tu = Answerer()
    server = SipEndpoint(handler=tu, timers=FAST)
    first = await server.listen_udp("127.0.0.1")
    second = await server.listen_udp("127.0.0.1")
    raw = _raw_socket()
    try:
        req = _notify(server, second[1]).with_header_replaced(
            "Via", f"SIP/2.0/UDP 127.0.0.1:{raw.getsockname()[1]};branch=z9hG4bKtwo"
        )
        raw.sendto(bytes(req), second)
        data, source = await _receive_from(raw, 2)
        assert data.startswith(b"SIP/2.0 200")
        assert source == second and source != first
        assert tu.seen[0][1].local == second
        server.close_udp(second)
        assert server.udp is not None and server.udp.local == first
    finally:
        raw.close()
        await server.close()


async def test_a_failing_handler_is_answered_500_and_the_endpoint_goes_on() -> None:
    calls: list[str] = []

    def flaky(request: Request, handle: ServerHandle | None, flow: Flow) -> None:
        calls.append(request.call_id)
        if len(calls) == 1:
            raise RuntimeError("bug in the TU")
        assert handle is not None
        handle.respond(make_response(request, 200, to_tag="ok"))

    server = SipEndpoint(handler=flaky, timers=FAST)
    client = SipEndpoint(timers=FAST)
    _, sport = await server.listen_udp("127.0.0.1")
    await client.listen_udp("127.0.0.1")
    try:
        first, _ = await client.request(_notify(client, sport), "udp", ("127.0.0.1", sport))
        assert first is not None and (first.status_code, first.reason) == (
            500,
            "Server Internal Error",
        )
        second, _ = await client.request(
            _notify(client, sport).with_header_replaced("Call-ID", "again@h"),
            "udp",
            ("127.0.0.1", sport),
        )
        assert second is not None and second.status_code == 200
        assert server.handler_errors == 1 and "bug in the TU" in server.last_handler_error
    finally:
        await client.close()
        await server.close()


async def test_request_timeout_uses_the_wheel_not_a_task() -> None:
    """``request(timeout=)`` gives up after ``timeout`` (sooner than Timer F)
    with no asyncio task or timer handle of its own: the only loop timer is
    the endpoint's timer wheel's."""
    silent = _raw_socket()
    port = silent.getsockname()[1]
    client = SipEndpoint(timers=Timers(t1=0.5))  # Timer F would be 32 s
    await client.listen_udp("127.0.0.1")
    tasks_before = len(asyncio.all_tasks())
    try:
        pending = asyncio.ensure_future(
            client.request(_notify(client, port), "udp", ("127.0.0.1", port), timeout=0.1)
        )
        await asyncio.sleep(0.01)
        assert len(asyncio.all_tasks()) == tasks_before + 1  # only ours
        assert len(client._wheel) >= 2
        resp, why = await asyncio.wait_for(pending, 2)
        assert (resp, why) == (None, "timeout")
    finally:
        silent.close()
        await client.close()


async def test_finished_requests_leave_no_reference_cycles(udp_pair: UdpPair) -> None:
    """Requests and their transactions are freed by reference counts once
    done, not left in cycles for the collector (compiled, a closure shares
    an environment with its parent: the first measurement found ~27 objects
    per transaction waiting for the cyclic collector)."""
    _tu, server, client, sport = udp_pair
    await client.request(_notify(client, sport), "udp", ("127.0.0.1", sport))  # warm up
    await asyncio.sleep(1.5)
    gc.collect()
    gc.disable()
    try:
        for timeout in (None, 5.0) * 10:
            resp, why = await client.request(
                _notify(client, sport), "udp", ("127.0.0.1", sport), timeout=timeout
            )
            assert why == "final" and resp is not None
        await asyncio.sleep(1.5)  # Timer K (T4) and Timer J (64*T1 = 1.28 s) pass
        assert client.stats.transactions == server.stats.transactions == 0
        assert gc.collect() == 0
        # Closing with transactions still alive leaves none behind either.
        for _ in range(5):
            await client.request(_notify(client, sport), "udp", ("127.0.0.1", sport))
        assert server.stats.transactions == 5
        await server.close()
        assert gc.collect() == 0
    finally:
        gc.enable()


async def test_client_callback_released_at_the_final_response() -> None:
    """A non-INVITE client transaction lives on in Completed (Timer K) to
    absorb retransmissions, but its TU hears "final" at once and is let go."""
    server = SipEndpoint(handler=Answerer(), timers=Timers(t1=0.5, t4=5.0))
    client = SipEndpoint(timers=Timers(t1=0.5, t4=5.0))
    _, sport = await server.listen_udp("127.0.0.1")
    await client.listen_udp("127.0.0.1")
    heard: list[tuple[int | None, str]] = []
    done = asyncio.Event()

    def callback(response: Response | None, why: str) -> None:
        heard.append((None if response is None else response.status_code, why))
        if response is None:
            done.set()

    try:
        await client.send_request(_notify(client, sport), "udp", ("127.0.0.1", sport), callback)
        await asyncio.wait_for(done.wait(), 2)
        assert heard == [(200, "response"), (None, "final")]
        assert client.stats.transactions == 1  # still absorbing, in Completed
    finally:
        await client.close()
        await server.close()


async def test_byte_identical_retransmission_skips_the_parser() -> None:
    """A retransmission is the same datagram: it is matched to its server
    transaction by its bytes and answered from there, never parsed again; a
    copy that differs in bytes (here, header case) still matches by branch.
    (Counted by the endpoint's own stats, which hold compiled or not.)"""
    tu = Answerer()
    server = SipEndpoint(handler=tu, timers=FAST)
    _, sport = await server.listen_udp("127.0.0.1")
    raw = _raw_socket()
    try:
        req = bytes(
            _notify(server, sport).with_header_replaced(
                "Via", f"SIP/2.0/UDP 127.0.0.1:{raw.getsockname()[1]};branch=z9hG4bKsame"
            )
        )
        for _ in range(3):
            raw.sendto(req, ("127.0.0.1", sport))
            assert (await _recv(raw)).status_code == 200
        stats = server.stats
        assert (stats.received, stats.absorbed) == (3, 2)  # the first copy parsed only
        raw.sendto(req.replace(b"Max-Forwards:", b"max-forwards:"), ("127.0.0.1", sport))
        assert (await _recv(raw)).status_code == 200
        stats = server.stats
        assert (stats.received, stats.absorbed) == (4, 2) and len(tu.seen) == 1  # parsed, matched
    finally:
        raw.close()
        await server.close()


@pytest.mark.parametrize("branch", [";branch=z9hG4bKinvite", ""], ids=["same-branch", "rfc2543"])
async def test_an_ack_matching_the_invite_transaction_reaches_the_tu(branch: str) -> None:
    """RFC 6026 7.1, 8.7: an INVITE server transaction in Accepted passes a
    matching ACK of its 2xx to the TU.  One reusing the INVITE's branch, or
    an RFC 2543 client's without any (matched by 17.2.3's older rules),
    matches it; the TU must still get it, on the flow it came on, or it
    never learns its 2xx was acknowledged."""
    tu = Answerer()
    server = SipEndpoint(handler=tu, timers=FAST)
    _, sport = await server.listen_udp("127.0.0.1")
    raw = _raw_socket()
    via = f"SIP/2.0/UDP 127.0.0.1:{raw.getsockname()[1]}{branch}"

    def request(method: str, to_tag: str = "") -> bytes:
        return bytes(
            Request(
                method,
                SipUri("127.0.0.1", "1001", port=sport),
                [
                    ("Via", via),
                    ("Max-Forwards", "70"),
                    ("From", "<sip:pc@127.0.0.1>;tag=abc"),
                    ("To", f"<sip:1001@127.0.0.1:{sport}>{to_tag}"),
                    ("Call-ID", "ack-matching@127.0.0.1"),
                    ("CSeq", f"1 {method}"),
                    ("Contact", "<sip:pc@127.0.0.1>"),
                ],
            )
        )

    try:
        raw.sendto(request("INVITE"), ("127.0.0.1", sport))
        assert (await _recv(raw)).status_code == 200
        raw.sendto(request("ACK", ";tag=srv"), ("127.0.0.1", sport))
        await asyncio.sleep(0.1)
        assert [r.method for r, _ in tu.seen] == ["INVITE", "ACK"]
        assert tu.seen[1][1].remote == raw.getsockname()
        assert server.stats.transactions == 1  # the INVITE's, in Accepted (Timer L)
    finally:
        raw.close()
        await server.close()


async def test_a_stateless_answer_keeps_no_transaction_and_a_copy_gets_the_same_bytes() -> None:
    """RFC 3261 8.2.7: a TU may answer without a server transaction (the
    phone's challenges).  Nothing is kept but the answer's bytes: the same
    datagram again gets them again without reaching the TU; another request
    is the TU's again, with a To tag of its own; a later respond() on the
    handle is ignored."""
    seen: list[ServerHandle] = []

    def challenge(request: Request, handle: ServerHandle | None, flow: Flow) -> None:
        assert handle is not None
        seen.append(handle)
        handle.respond_statelessly(
            make_response(
                request, 401, to_tag=handle.stateless_tag, headers=[("X-Seq", str(len(seen)))]
            )
        )
        handle.respond(make_response(request, 200, to_tag="late"))  # answered already

    server = SipEndpoint(handler=challenge)
    _, sport = await server.listen_udp("127.0.0.1")
    raw = _raw_socket()
    via = f"SIP/2.0/UDP 127.0.0.1:{raw.getsockname()[1]}"
    try:
        first = bytes(_notify(server, sport).with_header_replaced("Via", f"{via};branch=z9hG4bKs1"))
        raw.sendto(first, ("127.0.0.1", sport))
        answer = await _recv(raw)
        assert answer.status_code == 401 and answer.get("X-Seq") == "1"
        assert server.stats.transactions == 0 and seen[0].tx is None and seen[0].stateless
        raw.sendto(first, ("127.0.0.1", sport))  # a retransmission
        again = await _recv(raw)
        assert bytes(again) == bytes(answer) and len(seen) == 1
        assert server.stats.absorbed == 1
        other = first.replace(b"z9hG4bKs1", b"z9hG4bKs2")  # a new request
        raw.sendto(other, ("127.0.0.1", sport))
        fresh = await _recv(raw)
        assert fresh.get("X-Seq") == "2" and fresh.to.tag != answer.to.tag
        assert server.stats.transactions == 0
    finally:
        raw.close()
        await server.close()


async def test_a_request_is_given_a_transaction_when_the_tu_answers_later() -> None:
    """A TU that returns without answering gets the transaction made for it
    then: a retransmission meanwhile is absorbed, not handed up again, and
    the answer given later goes out through it."""
    handles: list[ServerHandle] = []

    def later(request: Request, handle: ServerHandle | None, flow: Flow) -> None:
        assert handle is not None
        handles.append(handle)

    server = SipEndpoint(handler=later)
    _, sport = await server.listen_udp("127.0.0.1")
    raw = _raw_socket()
    via = f"SIP/2.0/UDP 127.0.0.1:{raw.getsockname()[1]};branch=z9hG4bKlate"
    try:
        request = bytes(_notify(server, sport).with_header_replaced("Via", via))
        raw.sendto(request, ("127.0.0.1", sport))
        await asyncio.sleep(0.1)
        assert len(handles) == 1 and handles[0].tx is not None
        assert server.stats.transactions == 1
        raw.sendto(request, ("127.0.0.1", sport))
        await asyncio.sleep(0.1)
        assert len(handles) == 1  # absorbed by the transaction
        handles[0].respond(make_response(handles[0].request, 200, to_tag="t"))
        assert (await _recv(raw)).status_code == 200
    finally:
        raw.close()
        await server.close()


async def test_a_completed_transaction_keeps_only_what_absorbing_needs() -> None:
    """A UDP server transaction waits out Timer J (32 s) after answering: a
    peer sending unique requests must not make the endpoint hold every
    parsed request, response and handle that long.  What a completed one
    keeps is bounded per transaction: its key, its response's bytes and
    where they go, ~910 bytes (it held ~6 KB per NOTIFY before the request
    was let go, ~1.75 KB before the machine and the request datagram were
    retired for a CompletedServer)."""

    def answer(request: Request, handle: ServerHandle | None, flow: Flow) -> None:
        if handle is not None:  # keeps nothing: what remains is the endpoint's
            handle.respond(make_response(request, 200, to_tag="srv"))

    server = SipEndpoint(handler=answer)  # default timers: Timer J is 32 s
    _, sport = await server.listen_udp("127.0.0.1")
    raw = _raw_socket()
    via = f"SIP/2.0/UDP 127.0.0.1:{raw.getsockname()[1]}"
    template = bytes(_notify(server, sport))
    count = 300
    try:
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        for n in range(count):
            request = parse_message(template.replace(b"call-", f"c{n}-".encode()))
            unique = request.with_header_replaced("Via", f"{via};branch=z9hG4bK{n}")
            raw.sendto(bytes(unique), ("127.0.0.1", sport))
            assert (await _recv(raw)).status_code == 200
        assert server.stats.transactions == count  # all still absorbing
        gc.collect()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        held = sum(d.size_diff for d in after.compare_to(before, "filename")) / count
        assert held < 1200, f"{held:.0f} bytes held per completed transaction"
        assert not server._entries and not server._by_wire  # retired: no machine, no datagram
    finally:
        tracemalloc.stop()
        raw.close()
        await server.close()


async def test_a_request_leaves_from_the_udp_socket_it_names() -> None:
    """``request(local=...)``: a client transaction sent from the second of
    two sockets leaves from it (its Via, from ``via(local=...)``, says so)
    and gets its response there; naming a socket the endpoint does not
    have is an OSError, and nothing is sent."""
    tu = Answerer()
    server = SipEndpoint(handler=tu, timers=FAST)
    target = await server.listen_udp("127.0.0.1")
    client = SipEndpoint(timers=FAST)
    await client.listen_udp("127.0.0.1")
    second = await client.listen_udp("127.0.0.1")
    try:
        request = _notify(client, target[1]).with_header_replaced(
            "Via", client.via("udp", local=second)
        )
        response, why = await client.request(request, "udp", target, timeout=2, local=second)
        assert response is not None and response.status_code == 200, why
        assert tu.seen[0][1].remote == second
        with pytest.raises(OSError, match="no UDP socket"):
            await client.request(request, "udp", target, local=("127.0.0.1", 1))
    finally:
        await client.close()
        await server.close()


async def test_a_via_from_a_wildcard_socket_names_a_reachable_address() -> None:
    """A line bound to 0.0.0.0 or :: cannot be reached at that address: the
    Via of a request it sends names loopback, as the endpoint's own does."""
    ep = SipEndpoint()
    assert ep.via("udp", "z9hG4bKw", local=("0.0.0.0", 5070)).startswith(
        "SIP/2.0/UDP 127.0.0.1:5070;"
    )
    assert ep.via("udp", "z9hG4bKw", local=("::", 5070)).startswith("SIP/2.0/UDP [::1]:5070;")
    await ep.close()


async def test_a_request_from_a_wildcard_socket_can_name_the_address_it_is_reached_at() -> None:
    """A line bound to 0.0.0.0 knows its dialog by the address it was
    reached at (127.0.0.1:port): sending "from" there uses the wildcard
    socket of that port, not an OSError."""
    tu = Answerer()
    server = SipEndpoint(handler=tu, timers=FAST)
    target = await server.listen_udp("127.0.0.1")
    client = SipEndpoint(timers=FAST)
    wild = await client.listen_udp("0.0.0.0")
    try:
        local = ("127.0.0.1", wild[1])
        request = _notify(client, target[1]).with_header_replaced(
            "Via", client.via("udp", local=local)
        )
        response, why = await client.request(request, "udp", target, timeout=2, local=local)
        assert response is not None and response.status_code == 200, why
    finally:
        await client.close()
        await server.close()


async def test_an_endpoint_without_a_handler_answers_requests_501_and_keeps_nothing() -> None:
    """A pusher's endpoint has no TU: a request a phone sends it (over UDP,
    or back over the connection a push went on) gets 501 at once, and no
    transaction waits for an answer that would never come (it would hold
    memory, and on a stream its connection, for good)."""
    tu = Answerer(200)
    phone = SipEndpoint(handler=tu, timers=FAST)
    pusher = SipEndpoint(timers=FAST)
    await pusher.listen_udp("127.0.0.1", 0)
    await phone.listen_udp("127.0.0.1", 0)
    _, port = await phone.listen_stream("tcp", "127.0.0.1")
    try:
        response, why = await pusher.request(
            _notify(pusher, port, "tcp"), "tcp", ("127.0.0.1", port), timeout=3
        )
        assert response is not None and response.status_code == 200, why
        _, flow = tu.seen[0]
        back = _notify(phone, 5060, "tcp").with_header_replaced("Call-ID", "back@127.0.0.1")
        answer, why = await phone.request(back, "tcp", flow.remote, timeout=3)
        assert answer is not None and answer.status_code == 501, why
        assert pusher.stats.transactions == 0 and not pusher._on_stream
        assert pusher.udp is not None
        over_udp, why = await phone.request(
            _notify(phone, pusher.udp.local[1]), "udp", pusher.udp.local, timeout=3
        )
        assert over_udp is not None and over_udp.status_code == 501, why
        assert pusher.stats.transactions == 0
    finally:
        await pusher.close()
        await phone.close()


async def test_a_client_transaction_on_a_lost_connection_ends_at_once() -> None:
    """The peer closes the connection a request went on before answering:
    the transaction ends with a transport error then (RFC 3261 17.1.4), not
    when Timer F runs out (64*T1 later)."""
    closed = asyncio.Event()

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()
        closed.set()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = SipEndpoint(timers=Timers(t1=10.0, t2=10.0))  # Timer F: 640 s
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        response, why = await asyncio.wait_for(
            client.request(_notify(client, port, "tcp"), "tcp", ("127.0.0.1", port)), 5
        )
        assert (response, why) == (None, "transport")
        assert loop.time() - started < 2 and closed.is_set()
        assert client.stats.transactions == 0
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
