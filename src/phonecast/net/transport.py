"""Datagram and stream transports for SIP, on asyncio: the UDP socket, one
TCP or TLS connection, and the :class:`Flow` a message arrived on.

Why not ``DatagramProtocol``: on the default event loop it costs one callback
per datagram through several layers; measured on this kind of machine it
caps at 13k-15k request/response pairs per second, while ``loop.add_reader``
with a read-until-EAGAIN drain reaches about ten times that.  So the UDP
transport owns a non-blocking socket, registers one reader, and drains it.
(With uvloop installed the same code runs on uvloop's reader.)

Streams (TCP, TLS) use an ``asyncio.Protocol`` per connection feeding the
core's :class:`~phonecast.sip.StreamFramer`; a framing fault closes that
connection, as RFC 3261 18.3 leaves no way to resynchronise.  The pool of
connections and its limits are :mod:`phonecast.net.stream`'s.

Everything received is handed up as ``(data, flow)``: the raw message bytes
and the :class:`Flow` it arrived on, which is what a response must go back
over (RFC 3261 18.2.2; for UDP with RFC 3581 rport, the source address).

An ICMP "port unreachable" (or host or network unreachable) for a datagram
we sent is a transport error for whatever waits on an answer from there
(RFC 3261 18.4, 8.1.3.1): on Linux an unconnected UDP socket hears of it only
with ``IP_RECVERR``, in its error queue, with the address the datagram went
to.  The transport reads that queue and says which address could not be
reached (``unreachable``), so a push to a phone whose SIP port is closed
fails at once, and RFC 3263 failover moves on, instead of retransmitting
to nobody until Timer F (32 s).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import socket
import ssl
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, cast

from phonecast.net.tls_session import TlsSession
from phonecast.sip import ParseError, StreamFramer
from phonecast.sip._memo import remember

Address = tuple[str, int]

#: Called for every message received: raw bytes and where they came from.
Receiver = Callable[[bytes, "Flow"], None]

_DRAIN_BATCH: Final = 256
#: A datagram held by send_soon: bytes, destination, what to call if it fails.
_Held = tuple[bytes, Address, Callable[[], None] | None]
#: Most datagrams send_soon holds before sending them.
_HELD_MAX: Final = 32
#: Bound of a UDP transport's table of peers' flows.
_FLOWS_KEPT: Final = 4096
#: Told (local address, address a datagram could not reach) for each ICMP
#: unreachable read from a UDP socket's error queue.
Unreachable = Callable[[Address, Address], None]
#: Linux's socket options and values for the error queue (linux/in.h,
#: linux/in6.h, linux/errqueue.h); the socket module names none but the flag.
_IS_LINUX: Final = sys.platform.startswith("linux")
_IP_RECVERR: Final = 11
_IPV6_RECVERR: Final = 25
_MSG_ERRQUEUE: Final = 0x2000
_SO_EE_ORIGIN_ICMP: Final = 2
_SO_EE_ORIGIN_ICMP6: Final = 3
#: What an ICMP error for a datagram means here: nobody will answer there.
_UNREACHABLE_ERRNOS: Final = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH})
#: Error-queue entries read per readable event at most.
_ERRORS_BATCH: Final = 64


@dataclass(frozen=True, slots=True, eq=False)
class Flow:
    """Where a message came from and where its answer goes.

    ``transport`` is ``udp``, ``tcp`` or ``tls``; ``remote`` is the peer's
    address; ``local`` ours; ``connection`` the stream a response must reuse.
    """

    transport: str
    remote: Address
    local: Address
    connection: StreamConnection | None = field(default=None, repr=False)

    @property
    def reliable(self) -> bool:
        """True for streams: no retransmissions needed (RFC 3261 17)."""
        return self.transport != "udp"


def family_of(host: str) -> socket.AddressFamily:
    """AF_INET6 for an IPv6 literal, AF_INET otherwise."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def sockaddr_address(sockaddr: tuple[object, ...]) -> Address:
    """The (host, port) of a socket address (IPv6's flow and scope dropped)."""
    return (str(sockaddr[0]), int(sockaddr[1]))  # type: ignore[call-overload]


class UdpTransport:
    """One UDP socket, drained with ``add_reader``."""

    def __init__(
        self, sock: socket.socket, receiver: Receiver, unreachable: Unreachable | None = None
    ) -> None:
        self._sock = sock
        self._receiver = receiver
        #: Told of ICMP unreachables; given only for a socket that queues its
        #: errors (IP_RECVERR, which bind sets), so None means none are queued.
        self._unreachable = unreachable
        #: True while a read of the error queue is scheduled (see sendto).
        self._errors_due = False
        self._loop = asyncio.get_running_loop()
        self._pending: collections.deque[tuple[bytes, Address]] = collections.deque()
        self._closed = False
        self.local: Address = sockaddr_address(sock.getsockname())
        #: Source address -> its Flow (immutable, so one per peer serves every
        #: datagram from it); bounded, since sources come from the network.
        self._flows: dict[object, Flow] = {}
        #: Datagrams held for the end of the drain or of the loop's turn (see
        #: send_soon); None when nothing is held.
        self._held: list[_Held] | None = None
        self._loop.add_reader(sock.fileno(), self._on_readable)

    @classmethod
    async def bind(
        cls,
        host: str,
        port: int,
        receiver: Receiver,
        *,
        rcvbuf: int = 4 << 20,
        unreachable: Unreachable | None = None,
    ) -> UdpTransport:
        """Bind ``host:port`` (port 0 picks a free one) and start receiving;
        ``unreachable`` hears of the ICMP errors for datagrams sent from it
        (see the module's docstring)."""
        family = family_of(host)
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, rcvbuf)
            told: Unreachable | None = None
            if unreachable is not None and _IS_LINUX:
                with contextlib.suppress(OSError):
                    if family == socket.AF_INET6:
                        sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVERR, 1)
                    else:
                        sock.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)
                    told = unreachable
            sock.bind((host, port))
        except BaseException:
            sock.close()
            raise
        return cls(sock, receiver, told)

    @property
    def _errors_queued(self) -> bool:
        """Whether the socket queues its ICMP errors for us to read."""
        return self._unreachable is not None

    def _on_readable(self) -> None:
        if self._held is None:
            self._held = []
        try:
            self._drain()
        finally:
            self._send_held()

    def _drain(self) -> None:
        recv = self._sock.recvfrom
        receiver = self._receiver
        flows = self._flows
        for _ in range(_DRAIN_BATCH):
            try:
                data, sockaddr = recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # An ICMP error for an earlier send, not this read: with
                # IP_RECVERR its entries wait in the error queue.
                self._read_errors()
                if self._closed:  # closed by whoever heard of the error
                    return
                continue
            flow = flows.get(sockaddr)
            if flow is None:
                flow = Flow("udp", (sockaddr[0], sockaddr[1]), self.local)
                remember(flows, sockaddr, flow, _FLOWS_KEPT)
            receiver(data, flow)
        if self._errors_queued:
            # The batch ran out before the socket's error (which a read
            # reports only once the datagrams before it are read) showed.
            self._read_errors()

    def _read_errors(self) -> None:
        """Empty the error queue; tell ``unreachable`` of each ICMP
        unreachable in it (a local error, EMSGSIZE say, is no such news).

        Then register the reader afresh: while the queue holds an entry,
        epoll reports an error on the socket, and uvloop (libuv's poll
        handle) stops watching a descriptor on an error, after one last
        call, so without this a single ICMP would leave the socket unread
        for good (asyncio's loop just calls the reader again)."""
        unreachable = self._unreachable
        if unreachable is None:  # no IP_RECVERR: nothing is queued
            return
        sock = self._sock
        read = 0
        for _ in range(_ERRORS_BATCH):
            try:
                _data, ancillary, _flags, sockaddr = sock.recvmsg(1, 512, _MSG_ERRQUEUE)
            except OSError:  # empty (EAGAIN)
                break
            read += 1
            if not sockaddr:
                continue
            for _level, _kind, cdata in ancillary:
                if len(cdata) < 5:
                    continue
                # struct sock_extended_err: ee_errno (u32), ee_origin (u8), ...
                ee_errno, ee_origin = struct.unpack_from("=IB", cdata)
                if ee_origin in (_SO_EE_ORIGIN_ICMP, _SO_EE_ORIGIN_ICMP6) and (
                    ee_errno in _UNREACHABLE_ERRNOS
                ):
                    unreachable(self.local, sockaddr_address(sockaddr))
        if read and not self._closed:
            fd = sock.fileno()
            self._loop.remove_reader(fd)
            self._loop.add_reader(fd, self._on_readable)

    def send_soon(
        self, data: bytes, remote: Address, failed: Callable[[], None] | None = None
    ) -> None:
        """Send a datagram at the end of this turn of the loop: datagrams made
        while a drain runs leave together when it ends, others when the loop
        next runs its callbacks, and at most ``_HELD_MAX`` wait.  If the send
        fails, ``failed`` (if given) is called soon after, from the loop, so
        that no caller is re-entered in the middle of its work.

        Why: on loopback each datagram that finds its receiver asleep pays
        for waking it, and a peer that handles one datagram faster than we
        make the next is asleep for every one.  Sent in a row, the datagrams
        of a burst mostly find it awake (measured: bench/README.md)."""
        if self._closed:
            return
        held = self._held
        if held is None:
            held = self._held = []
            self._loop.call_soon(self._send_held)
        held.append((data, remote, failed))
        if len(held) >= _HELD_MAX:
            self._send_held()

    def flush(self) -> None:
        """Send what :meth:`send_soon` holds, now."""
        self._send_held()

    def _send_held(self) -> None:
        held, self._held = self._held, None
        if not held:
            return
        for data, remote, failed in held:
            try:
                self.sendto(data, remote)
            except OSError:
                if failed is not None:
                    self._loop.call_soon(failed)

    def sendto(self, data: bytes, remote: Address) -> None:
        """Send a datagram now, or queue it if the socket buffer is full."""
        if self._closed:
            return
        if self._pending:
            self._pending.append((data, remote))
            return
        try:
            self._sock.sendto(data, remote)
        except (BlockingIOError, InterruptedError):
            self._pending.append((data, remote))
            self._loop.add_writer(self._sock.fileno(), self._on_writable)
        except OSError as exc:
            if exc.errno not in _UNREACHABLE_ERRNOS:
                raise
            self._errors_reported()

    def _errors_reported(self) -> None:
        """A send reported the socket's pending ICMP error (a send does,
        before a read can): its entries still wait in the error queue, and
        no read will say so any more, so read them soon (not from inside
        this send, which its caller may be in the middle of)."""
        if self._errors_queued and not self._errors_due:
            self._errors_due = True
            self._loop.call_soon(self._read_errors_due)

    def _read_errors_due(self) -> None:
        self._errors_due = False
        if not self._closed:
            self._read_errors()

    def _on_writable(self) -> None:
        while self._pending:
            data, remote = self._pending[0]
            try:
                self._sock.sendto(data, remote)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _UNREACHABLE_ERRNOS:
                    self._errors_reported()
            self._pending.popleft()
        self._loop.remove_writer(self._sock.fileno())

    def close(self) -> None:
        """Stop receiving and close the socket."""
        if self._closed:
            return
        self._send_held()  # what was sent before close() leaves
        self._closed = True
        self._loop.remove_reader(self._sock.fileno())
        if self._pending:
            self._loop.remove_writer(self._sock.fileno())
        self._sock.close()


class DialTicket:
    """A dial of ours let through the cap (net.stream_room.Room.wait):
    the place it holds until its connection takes one (``placed``), and the
    idle connection it may close to make that place (``victim``)."""

    __slots__ = ("placed", "victim")

    def __init__(self, victim: StreamConnection | None) -> None:
        self.placed = False
        self.victim = victim


class StreamConnection(asyncio.Protocol):
    """One TCP or TLS connection carrying SIP messages both ways."""

    def __init__(
        self,
        transport_name: str,
        receiver: Receiver,
        on_open: Callable[[StreamConnection], None],
        on_close: Callable[[StreamConnection], None],
        *,
        max_message: int = 65535,
        bound: Address | None = None,
        on_activity: Callable[[StreamConnection, bool], None] | None = None,
        max_unsent: int = 1 << 20,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """``bound``: for an accepted connection, the address its listener is
        bound to, which its flow names as local (see :meth:`connection_made`).
        ``on_activity`` hears of every read and write, and whether a whole
        message arrived (the transport's idle and stalled-message
        bookkeeping); ``max_unsent``: see StreamLimits.  ``tls``: for a
        connection accepted by a TLS listener, the context it runs TLS with
        itself (net.tls_session says why)."""
        self.transport_name = transport_name
        self._bound = bound
        self._receiver = receiver
        self._on_open = on_open
        self._on_close = on_close
        self._on_activity = on_activity
        self._max_unsent = max_unsent
        self._framer = StreamFramer(max_size=max_message)
        self._tls = TlsSession(tls) if tls is not None else None
        self._transport: asyncio.Transport | None = None
        self.flow: Flow | None = None
        #: The address it was dialled as, when that is not its peer's own
        #: (a name, an IPv4-mapped spelling): pooled under it too.
        self.dialled_as: Address | None = None
        #: The loop's time of the last read or write.
        self.last_active = 0.0
        #: Set when the transport dropped it for a peer that does not read.
        self.unread = False
        #: Why the connection was closed for what its peer sent (a message
        #: without Content-Length, one too large, garbage between messages),
        #: for the endpoint to report once it is lost (RFC 3261 18.3: the
        #: framing is gone, so no response can be matched to the stream).
        self.framing_error: str | None = None
        #: Accepted from a peer (not dialled by us): only such a connection
        #: may be displaced by another peer's (StreamTransport._make_room).
        self.inbound = False
        #: While a dial of ours makes it: the dial's record of whether the
        #: connection has taken its place under the cap (StreamTransport._dial).
        self.ticket: DialTicket | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports (the commands
        # run on uvloop) are not subclasses of asyncio.Transport.
        self._transport = cast(asyncio.Transport, transport)
        # Past the high-water mark pause_writing drops the connection.
        self._transport.set_write_buffer_limits(high=self._max_unsent)
        peer = transport.get_extra_info("peername")
        # An accepted connection's local address is its listener's bound one,
        # as a datagram's is its socket's: on a wildcard listener (0.0.0.0,
        # ::) the socket's own name would be the address the peer dialled,
        # which no table keyed by bound addresses knows.
        local = self._bound or sockaddr_address(transport.get_extra_info("sockname"))
        self.flow = Flow(self.transport_name, sockaddr_address(peer), local, self)
        self._on_open(self)

    def data_received(self, data: bytes) -> None:
        # ``whole`` tells the transport's stalled-message clock that what is
        # buffered now began now: after a whole message, and when a TLS
        # handshake completes (the first message is not timed from the accept).
        whole = False
        tls = self._tls
        if tls is not None:
            handshaking = not tls.handshaken
            data = tls.receive(data)
            self._flush_tls()
            whole = handshaking and tls.handshaken
            if not data:
                self._after_tls(whole)
                return
        framer = self._framer
        framer.feed(data)
        assert self.flow is not None
        try:
            while (raw := framer.next_raw()) is not None:
                whole = True
                self._receiver(raw, self.flow)
                if not self.is_open:
                    # The receiver closed it (or it was dropped meanwhile):
                    # the rest of this read would be answered nowhere.
                    return
        except ParseError as exc:
            self.framing_error = str(exc)[:200]
            self.close()
            return
        pings = framer.take_pings()
        if pings and self.is_open:
            # RFC 5626 4.4.1: a pong per ping (the activity is told once, below).
            self._write(b"\r\n" * pings)
        if tls is not None:
            self._after_tls(whole)
        elif self._on_activity is not None:
            self._on_activity(self, whole)

    def _after_tls(self, whole: bool) -> None:
        """Once what a read decrypted is delivered: a failed handshake or a
        bad record closes the connection (its alert already sent), as does
        the peer's close_notify (ours answers it); else the activity is told."""
        tls = self._tls
        assert tls is not None
        if tls.failed or tls.peer_closed:
            self.close()
        elif self._on_activity is not None and self.is_open:
            self._on_activity(self, whole)

    def _flush_tls(self) -> None:
        tls = self._tls
        transport = self._transport
        if tls is not None and transport is not None and not transport.is_closing():
            out = tls.to_send()
            if out:
                transport.write(out)

    def _write(self, data: bytes) -> None:
        """Write to the peer, through TLS if this connection runs its own."""
        assert self._transport is not None
        if self._tls is None:
            self._transport.write(data)
            return
        tls = self._tls
        if tls.failed:
            return  # closing, its alert queued: nothing more can be encrypted
        if not tls.handshaken and tls.early_size + len(data) > self._max_unsent:
            self.pause_writing()  # as for a peer that does not read what it is sent
            return
        try:
            tls.send(data)
        except ssl.SSLError:
            self.abort()
            return
        self._flush_tls()

    @property
    def partial(self) -> bool:
        """True while part of a message is waiting for the rest, or the TLS
        handshake for its end, or a TLS record for the rest of it (all
        bounded by the message timeout)."""
        tls = self._tls
        return self._framer.buffered > 0 or (
            tls is not None and (not tls.handshaken or tls.mid_record)
        )

    def pause_writing(self) -> None:
        """More than ``max_unsent`` octets wait for a peer that does not
        read: drop the connection (and what waits), as a SIP server must
        rather than hold it (see StreamLimits)."""
        self.unread = True
        if self._transport is not None:
            self._transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_close(self)
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, data: bytes) -> None:
        """Write a whole message."""
        if self._transport is not None and not self._transport.is_closing():
            self._write(data)
            if self._on_activity is not None:
                self._on_activity(self, False)

    @property
    def is_open(self) -> bool:
        """True until the connection closes."""
        return self._transport is not None and not self._transport.is_closing()

    def close(self) -> None:
        """Close the connection, once what is queued for the peer is sent
        (on TLS after a close_notify)."""
        transport = self._transport
        if transport is not None:
            if self._tls is not None and not transport.is_closing():
                self._tls.shutdown()
                self._flush_tls()
            transport.close()

    def abort(self) -> None:
        """Close the connection now, dropping what is queued: a graceful
        close waits, without end, for a peer that does not read."""
        if self._transport is not None:
            self._transport.abort()
