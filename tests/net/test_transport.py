"""The UDP transport on loopback (streams: test_stream.py)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from phonecast.net.transport import Flow, UdpTransport

#: Transports are where asyncio's loop and uvloop differ: run on both.
pytestmark = pytest.mark.both_loops

MSG = (
    b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\n"
    b"Content-Length: 4\r\n\r\nbody"
)


class Inbox:
    def __init__(self) -> None:
        self.items: asyncio.Queue[tuple[bytes, Flow]] = asyncio.Queue()

    def __call__(self, data: bytes, flow: Flow) -> None:
        self.items.put_nowait((data, flow))

    async def get(self) -> tuple[bytes, Flow]:
        return await asyncio.wait_for(self.items.get(), 2)


async def test_udp_round_trip_and_drain() -> None:
    inbox_a, inbox_b = Inbox(), Inbox()
    a = await UdpTransport.bind("127.0.0.1", 0, inbox_a)
    b = await UdpTransport.bind("127.0.0.1", 0, inbox_b)
    try:
        for i in range(500):
            a.sendto(MSG + str(i).encode(), b.local)
        got = [await inbox_b.get() for _ in range(500)]
        assert got[0][1].remote == a.local and got[0][1].transport == "udp"
        assert not got[0][1].reliable
        assert {d for d, _ in got} == {MSG + str(i).encode() for i in range(500)}
        b.sendto(b"pong", got[0][1].remote)
        data, flow = await inbox_a.get()
        assert data == b"pong" and flow.remote == b.local
    finally:
        a.close()
        b.close()


async def test_udp_flows_are_one_per_peer_and_bounded() -> None:
    """Datagrams from one source share one Flow; each source has its own,
    and the table of them never outgrows its bound."""
    from phonecast.net import transport as module

    inbox = Inbox()
    b = await UdpTransport.bind("127.0.0.1", 0, inbox)
    a = await UdpTransport.bind("127.0.0.1", 0, Inbox())
    c = await UdpTransport.bind("127.0.0.1", 0, Inbox())
    try:
        for sender in (a, a, c):
            sender.sendto(MSG, b.local)
        flows = [(await inbox.get())[1] for _ in range(3)]
        assert flows[0] is flows[1] and flows[0].remote == a.local
        assert flows[2] is not flows[0] and flows[2].remote == c.local
        while len(b._flows) < module._FLOWS_KEPT:  # as if a flood of sources came
            b._flows[("192.0.2.1", len(b._flows))] = flows[0]
        d = await UdpTransport.bind("127.0.0.1", 0, Inbox())  # a source not seen yet
        d.sendto(MSG, b.local)  # the full table starts afresh
        assert (await inbox.get())[1].remote == d.local
        assert len(b._flows) == 1
        d.close()
    finally:
        a.close()
        b.close()
        c.close()


async def test_answers_of_a_drain_leave_together_when_it_ends() -> None:
    """send_soon inside a drain holds the answer: the peer has none of a
    burst's answers while the burst is read, all of them after it, at most
    _HELD_MAX late; outside a drain the datagram leaves at the loop's next
    turn, or at close()."""

    from phonecast.net import transport as module

    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.setblocking(False)

    def answered() -> int:
        count = 0
        while True:
            try:
                peer.recv(2048)
            except BlockingIOError:
                return count
            count += 1

    seen: list[int] = []  # answers the peer held when each request was read
    done = asyncio.Event()
    burst = module._HELD_MAX + 8
    total = 0

    def answer(data: bytes, flow: Flow) -> None:
        nonlocal total
        seen.append(total := total + answered())
        b.send_soon(b"answer", flow.remote)
        if len(seen) == burst:
            done.set()

    b = await UdpTransport.bind("127.0.0.1", 0, answer)
    try:
        for _ in range(burst):  # all queued before the loop reads any
            peer.sendto(MSG, b.local)
        await asyncio.wait_for(done.wait(), 2)
        assert seen[: module._HELD_MAX] == [0] * module._HELD_MAX
        assert seen[module._HELD_MAX :] == [module._HELD_MAX] * 8  # the first batch, when full
        assert total + answered() == burst  # the rest when the drain ended
        b.send_soon(b"soon", peer.getsockname())  # outside a drain: at the next turn
        assert answered() == 0
        await asyncio.sleep(0)
        assert peer.recv(2048) == b"soon"
        b.send_soon(b"last", peer.getsockname())
        b.close()  # what was sent before close() still leaves
        assert peer.recv(2048) == b"last"
    finally:
        b.close()
        peer.close()


async def test_udp_ipv6_loopback() -> None:
    inbox = Inbox()
    try:
        a = await UdpTransport.bind("::1", 0, inbox)
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    b = await UdpTransport.bind("::1", 0, Inbox())
    try:
        b.sendto(MSG, a.local)
        data, flow = await inbox.get()
        assert data == MSG and flow.remote[0] == "::1"
    finally:
        a.close()
        b.close()


async def test_udp_send_to_closed_port_does_not_raise() -> None:
    a = await UdpTransport.bind("127.0.0.1", 0, Inbox())
    dead = await UdpTransport.bind("127.0.0.1", 0, Inbox())
    port = dead.local
    dead.close()
    try:
        for _ in range(5):
            a.sendto(MSG, port)
            await asyncio.sleep(0.01)
    finally:
        a.close()


def _closed_udp_port(host: str) -> int:
    """A UDP port nobody listens on (bound, read, closed)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
@pytest.mark.parametrize("count", [1, 300])
async def test_icmp_unreachables_are_told_and_the_socket_reads_on(host: str, count: int) -> None:
    """A datagram sent to a closed port comes back as an ICMP port
    unreachable, which the transport reads from the error queue and tells
    with the address it was sent to.  The socket then still receives: on
    uvloop, an error on a descriptor stops its watcher, and a socket not
    registered again was deaf from the first ICMP on.  With 300 sent in a
    row, later sends report the pending error themselves (and the kernel
    limits how many ICMPs it sends): the queue must still be read."""
    told: list[tuple[tuple[str, int], tuple[str, int]]] = []
    inbox = Inbox()
    try:
        a = await UdpTransport.bind(host, 0, inbox, unreachable=lambda *pair: told.append(pair))
    except OSError:
        pytest.skip(f"no {host} loopback on this machine")
    b = await UdpTransport.bind(host, 0, Inbox())
    dead = (host, _closed_udp_port(host))
    try:
        for _ in range(count):
            a.sendto(MSG, dead)
        for _ in range(200):
            if told:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # the rest of them
        assert told and set(told) == {(a.local, dead)} and len(told) <= count
        b.sendto(b"still there?", a.local)
        data, flow = await inbox.get()
        assert data == b"still there?" and flow.remote == b.local
    finally:
        a.close()
        b.close()


async def test_without_a_listener_for_them_icmp_errors_are_not_queued() -> None:
    """A socket nobody asked to hear of unreachables keeps the kernel's
    default (no IP_RECVERR): nothing is queued for it to read."""
    inbox = Inbox()
    a = await UdpTransport.bind("127.0.0.1", 0, inbox)
    b = await UdpTransport.bind("127.0.0.1", 0, Inbox())
    try:
        a.sendto(MSG, ("127.0.0.1", _closed_udp_port("127.0.0.1")))
        await asyncio.sleep(0.05)
        assert not a._errors_queued
        b.sendto(b"x", a.local)
        assert (await inbox.get())[0] == b"x"
    finally:
        a.close()
        b.close()
