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
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import socket
import ssl
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

    def __init__(self, sock: socket.socket, receiver: Receiver) -> None:
        self._sock = sock
        self._receiver = receiver
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
        cls, host: str, port: int, receiver: Receiver, *, rcvbuf: int = 4 << 20
    ) -> UdpTransport:
        """Bind ``host:port`` (port 0 picks a free one) and start receiving."""
        sock = socket.socket(family_of(host), socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, rcvbuf)
            sock.bind((host, port))
        except BaseException:
            sock.close()
            raise
        return cls(sock, receiver)

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
                # ICMP errors surface here on some kernels; they concern an
                # earlier send, not this read.  Keep draining.
                continue
            flow = flows.get(sockaddr)
            if flow is None:
                flow = Flow("udp", (sockaddr[0], sockaddr[1]), self.local)
                remember(flows, sockaddr, flow, _FLOWS_KEPT)
            receiver(data, flow)

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
            if exc.errno not in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
                raise

    def _on_writable(self) -> None:
        while self._pending:
            data, remote = self._pending[0]
            try:
                self._sock.sendto(data, remote)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                pass
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
        except ParseError:
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
