"""Datagram and stream transports for SIP, on asyncio.

Why not ``DatagramProtocol``: on the default event loop it costs one callback
per datagram through several layers; measured on this kind of machine it
caps at 13k-15k request/response pairs per second, while ``loop.add_reader``
with a read-until-EAGAIN drain reaches about ten times that.  So the UDP
transport owns a non-blocking socket, registers one reader, and drains it.
(With uvloop installed the same code runs on uvloop's reader.)

Streams (TCP, TLS) use an ``asyncio.Protocol`` per connection feeding the
core's :class:`~phonecast.sip.StreamFramer`; a framing fault closes that
connection, as RFC 3261 18.3 leaves no way to resynchronise.

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
from typing import Any, Final, cast

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


def _addr(sockaddr: tuple[object, ...]) -> Address:
    return (str(sockaddr[0]), int(sockaddr[1]))  # type: ignore[call-overload]


class UdpTransport:
    """One UDP socket, drained with ``add_reader``."""

    def __init__(self, sock: socket.socket, receiver: Receiver) -> None:
        self._sock = sock
        self._receiver = receiver
        self._loop = asyncio.get_running_loop()
        self._pending: collections.deque[tuple[bytes, Address]] = collections.deque()
        self._closed = False
        self.local: Address = _addr(sock.getsockname())
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


def _retrieved(dial: asyncio.Future[StreamConnection]) -> None:
    """Mark a shared dial's failure as seen: when no second caller waited
    for it, asyncio would otherwise log it as never retrieved (the first
    caller has it raised already)."""
    if not dial.cancelled():
        dial.exception()


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
    ) -> None:
        """``bound``: for an accepted connection, the address its listener is
        bound to, which its flow names as local (see :meth:`connection_made`)."""
        self.transport_name = transport_name
        self._bound = bound
        self._receiver = receiver
        self._on_open = on_open
        self._on_close = on_close
        self._framer = StreamFramer(max_size=max_message)
        self._transport: asyncio.Transport | None = None
        self.flow: Flow | None = None
        #: The address it was dialled as, when that is not its peer's own
        #: (a name, an IPv4-mapped spelling): pooled under it too.
        self.dialled_as: Address | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports (the commands
        # run on uvloop) are not subclasses of asyncio.Transport.
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        # An accepted connection's local address is its listener's bound one,
        # as a datagram's is its socket's: on a wildcard listener (0.0.0.0,
        # ::) the socket's own name would be the address the peer dialled,
        # which no table keyed by bound addresses knows.
        local = self._bound or _addr(transport.get_extra_info("sockname"))
        self.flow = Flow(self.transport_name, _addr(peer), local, self)
        self._on_open(self)

    def data_received(self, data: bytes) -> None:
        framer = self._framer
        framer.feed(data)
        assert self.flow is not None
        try:
            while (raw := framer.next_raw()) is not None:
                self._receiver(raw, self.flow)
        except ParseError:
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_close(self)
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, data: bytes) -> None:
        """Write a whole message."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    @property
    def is_open(self) -> bool:
        """True until the connection closes."""
        return self._transport is not None and not self._transport.is_closing()

    def close(self) -> None:
        """Close the connection."""
        if self._transport is not None:
            self._transport.close()


class StreamTransport:
    """TCP or TLS: a listener (optional) and a pool of connections by peer."""

    def __init__(
        self,
        name: str,
        receiver: Receiver,
        *,
        client_ssl: ssl.SSLContext | None = None,
        server_ssl: ssl.SSLContext | None = None,
        on_lost: Callable[[StreamConnection], None] | None = None,
    ) -> None:
        """``on_lost`` hears of each connection that closes, whichever end
        closed it (what was under way on it can no longer be answered)."""
        if name not in ("tcp", "tls"):
            raise ValueError(f"unknown stream transport {name!r}")
        self.name = name
        self._receiver = receiver
        self._client_ssl = client_ssl
        self._server_ssl = server_ssl
        self._on_lost = on_lost
        self._pool: dict[Address, StreamConnection] = {}
        #: Every open connection, pooled or not (an accepted one whose peer
        #: has a newer one, say): what close() closes.
        self._open: set[StreamConnection] = set()
        #: Dials under way, by the address dialled: a second caller waits
        #: for the first one's connection instead of opening its own.
        self._dialing: dict[Address, asyncio.Future[StreamConnection]] = {}
        self._closed = False
        self._servers: list[asyncio.AbstractServer] = []
        #: The first listening address (what a Via names).
        self.local: Address | None = None

    def _remember(self, conn: StreamConnection) -> None:
        self._open.add(conn)
        if conn.flow is not None:
            self._pool[conn.flow.remote] = conn

    def _forget(self, conn: StreamConnection) -> None:
        self._open.discard(conn)
        if conn.flow is not None and self._pool.get(conn.flow.remote) is conn:
            del self._pool[conn.flow.remote]
        dialled = conn.dialled_as
        if dialled is not None and self._pool.get(dialled) is conn:
            del self._pool[dialled]
        if self._on_lost is not None:
            self._on_lost(conn)

    def _factory(self) -> StreamConnection:
        return StreamConnection(self.name, self._receiver, self._remember, self._forget)

    async def listen(self, host: str, port: int) -> Address:
        """Accept connections on ``host:port`` (call again for more listeners)."""
        loop = asyncio.get_running_loop()
        ssl_ctx = self._server_ssl if self.name == "tls" else None
        if self.name == "tls" and ssl_ctx is None:
            raise ValueError("a TLS listener needs a server SSL context")
        bound: list[Address] = []  # known once listening; nothing is accepted before

        def accepted() -> StreamConnection:
            return StreamConnection(
                self.name,
                self._receiver,
                self._remember,
                self._forget,
                bound=bound[0] if bound else None,
            )

        server = await loop.create_server(accepted, host, port, ssl=ssl_ctx)
        self._servers.append(server)
        # Read as Any: uvloop's Server.sockets is a list where typeshed says
        # tuple, and compiled code checks the declared type.
        listening: Any = cast(Any, server).sockets
        local = _addr(listening[0].getsockname())
        bound.append(local)
        if self.local is None:
            self.local = local
        return local

    async def connect(
        self, remote: Address, *, server_hostname: str | None = None, timeout: float = 5.0
    ) -> StreamConnection:
        """An open connection to ``remote``, reused from the pool if possible.

        Callers that ask at once share one dial: the lines of a fleet
        registering together over TCP get one connection to their
        registrar, not one each (of which the pool would keep the last).
        A waiter keeps its own ``timeout``; the dial's failure is its too,
        but not the first caller's cancellation (it then looks again).
        Raises ``ConnectionAbortedError`` once the transport is closed."""
        while True:
            if self._closed:
                raise ConnectionAbortedError(f"the {self.name} transport is closed")
            pooled = self._pool.get(remote)
            if pooled is not None and pooled.is_open:
                return pooled
            dialing = self._dialing.get(remote)
            if dialing is None:
                break
            try:
                # Shielded: a waiter's own cancellation leaves the dial alone.
                shared = await asyncio.wait_for(asyncio.shield(dialing), timeout)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if dialing.cancelled() and (task is None or task.cancelling() == 0):
                    continue  # the dialler was cancelled, not us: look again
                raise
            if shared.is_open:
                return shared
        return await self._dial(remote, server_hostname, timeout)

    async def _dial(
        self, remote: Address, server_hostname: str | None, timeout: float
    ) -> StreamConnection:
        """Open a connection to ``remote``, as the dial others wait on."""
        loop = asyncio.get_running_loop()
        dial: asyncio.Future[StreamConnection] = loop.create_future()
        dial.add_done_callback(_retrieved)
        self._dialing[remote] = dial
        ssl_ctx = self._client_ssl if self.name == "tls" else None
        if self.name == "tls" and ssl_ctx is None:
            ssl_ctx = ssl.create_default_context()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    self._factory,
                    remote[0],
                    remote[1],
                    ssl=ssl_ctx,
                    server_hostname=(server_hostname or remote[0]) if ssl_ctx else None,
                ),
                timeout,
            )
            if self._closed:  # closed while dialling: nothing may outlive close()
                conn.close()
                raise ConnectionAbortedError(f"the {self.name} transport is closed")
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                dial.cancel()
            else:
                dial.set_exception(exc)
            raise
        finally:
            if self._dialing.get(remote) is dial:
                del self._dialing[remote]
        dial.set_result(conn)
        if conn.flow is None or conn.flow.remote != remote:
            conn.dialled_as = remote
        self._pool[remote] = conn  # under the name we dialled, too
        return conn

    async def close(self) -> None:
        """Close the listener and every connection (a dial still under way
        closes its connection when it completes)."""
        self._closed = True
        for server in self._servers:
            server.close()
        for conn in [*self._pool.values(), *self._open]:
            conn.close()
        self._pool.clear()
        self._open.clear()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
