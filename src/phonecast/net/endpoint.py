"""The SIP endpoint: transports + transactions + one timer, driving the core.

This is the only place where the sans-IO core meets the network.  For every
message received it parses, matches a transaction (or makes one), feeds it
with the loop's ``now``, then *pumps* the transaction: sends what it queued,
hands its events to the transaction user (TU), and re-arms its deadline on
the endpoint's single :class:`~phonecast.net.timers.TimerWheel`.

Requests that fail parsing get a salvaged 400 when the fields to echo are
readable (RFC 4475 3.1.2); requests that fail validation are answered 400
statelessly.  Malformed responses are dropped.  A local address may be
restricted to one source host (:meth:`SipEndpoint.restrict_source`): what
else arrives there is dropped before it is parsed.  Every request the
endpoint refuses or drops itself, before the TU sees it, is reported to
:attr:`SipEndpoint.on_refused`.

A server transaction is opened when the TU first answers a request (or
when it returns without answering, to answer later).  The TU may instead
answer without one, :meth:`ServerHandle.respond_statelessly`, as RFC 3261
8.2.7 wants for challenges: a flood of unauthenticated requests then costs
no transaction state.  A retransmission of a request answered so gets the
same bytes again from a bounded table of recent stateless answers.

Once a non-INVITE server transaction over UDP has sent its final response,
all it does for the rest of Timer J (32 s) is repeat that response to
retransmissions; the endpoint then keeps it as the core's small
:class:`~phonecast.sip.transaction.CompletedServer` value instead of the
machine, its entry and its timer (:meth:`SipEndpoint._retire`).  Those
values all last Timer J, so they expire in the order they were made: one
queue and one timer on the wheel for all of them.

Responses go back where RFC 3261 18.2.2 and RFC 3581 say: over the same
connection for streams; for UDP as :mod:`phonecast.net.replies` works out
(which also keeps the recent stateless answers).

Why one module of this size: the receive path, the transactions and the
send path are one class sharing its tables, and compiled, calls within it
are native.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from phonecast.net.limits import DEFAULT_STREAM_LIMITS, StreamLimits
from phonecast.net.redial import Redials
from phonecast.net.replies import StatelessAnswers, reply_address, stamp_via
from phonecast.net.retired import RetiredTransactions
from phonecast.net.stream import StreamTransport
from phonecast.net.timers import Timer, TimerWheel
from phonecast.net.transport import Address, Flow, StreamConnection, UdpTransport
from phonecast.sip import (
    HeaderError,
    ParseError,
    Request,
    Response,
    SipError,
    UasPolicy,
    ValidationError,
    parse_message,
    validate,
)
from phonecast.sip.headers import Via
from phonecast.sip.response import (
    error_response,
    make_response,
    new_tag,
    salvage_error_response,
)
from phonecast.sip.transaction import (
    DEFAULT_TIMERS,
    ClientTransaction,
    CompletedServer,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    RequestReceived,
    ResponseReceived,
    ServerTransaction,
    Terminated,
    TimedOut,
    Timers,
    TransactionTable,
    TransportFailed,
    new_branch,
    new_client_transaction,
    new_server_transaction,
)

Transaction = ClientTransaction | ServerTransaction

#: TU callback for requests: (request, its server transaction or None for an
#: ACK of a 2xx, the flow it came on).  Answer with :meth:`SipEndpoint.respond`.
RequestHandler = Callable[[Request, "ServerHandle | None", Flow], None]

#: TU callback of a client transaction: each response passed up, then a final
#: ``None`` with the reason it ended ("final", "timeout", "transport") as soon
#: as no more responses can come up (a non-INVITE's final response).
ResponseCallback = Callable[[Response | None, str], None]


def _unmapped(host: str) -> str:
    """An IPv4 peer of a dual-stack (``::``) socket as itself: the kernel
    reports ``::ffff:127.0.0.1`` for 127.0.0.1."""
    if host.startswith("::ffff:") and "." in host:
        return host[7:]
    return host


#: Live server transactions an endpoint keeps before it answers new requests
#: 503.  A UDP server transaction lives 32 s after answering (Timer J, RFC
#: 3261 17.2.2), retired to ~0.9 KB (~1.1 KB a NOTIFY in the emulator, with
#: its nonce's state), so a peer firing new requests at 10,000/s would
#: otherwise hold ~350 MB, and a flood from forged sources grows without end.
#: 250,000 is ~270 MB, and carries ~7,800 authenticated NOTIFYs/s
#: indefinitely, more in bursts (a push has one transaction: its 401 is
#: stateless).
DEFAULT_MAX_SERVER_TRANSACTIONS: Final = 250_000
#: What a request past that bound is answered (RFC 3261 21.5.4).
_OVERLOADED: Final = ValidationError(
    "too many transactions under way",
    status_code=503,
    reason="Service Unavailable",
    headers=(("Retry-After", "5"),),
)


@dataclass(frozen=True, slots=True)
class Stats:
    """Counters an operator (or a benchmark) reads."""

    received: int
    sent: int
    parse_errors: int
    transactions: int
    timers: int
    #: Retransmitted datagrams answered by their transaction, matched by
    #: their bytes without being parsed again.
    absorbed: int = 0
    #: Requests answered 503 because ``max_server_transactions`` were live.
    overloaded: int = 0
    #: Messages dropped unread: their source is not the one their local
    #: address is restricted to (see SipEndpoint.restrict_source).
    restricted: int = 0
    #: New connections opened to send a response whose request's
    #: connection had closed (RFC 3261 18.2.2), and those that could not be.
    redialled: int = 0
    redial_failed: int = 0
    #: ICMP unreachables read for our datagrams, and the client
    #: transactions they ended (RFC 3261 18.4: a transport error).
    unreachable: int = 0
    unreachable_ended: int = 0


class ServerHandle:
    """What the TU holds to answer one request."""

    __slots__ = ("_endpoint", "_wire", "flow", "request", "stateless", "tx")

    def __init__(
        self,
        endpoint: SipEndpoint,
        tx: ServerTransaction | None,
        request: Request,
        flow: Flow,
        wire: bytes = b"",
    ) -> None:
        self._endpoint = endpoint
        #: The server transaction, once the request has one (see respond()).
        self.tx = tx
        self.request = request
        self.flow = flow
        #: True once answered by :meth:`respond_statelessly`.
        self.stateless = False
        self._wire = wire  # the datagram, for the stateless answers' table

    def respond(self, response: Response) -> None:
        """Send ``response`` through the server transaction (opened now if
        the request has none yet)."""
        self._endpoint._respond(self, response)

    def respond_statelessly(self, response: Response) -> None:
        """Send ``response`` without a transaction (RFC 3261 8.2.7), for a
        final answer that acts on nothing, such as a challenge: nothing is
        kept but the bytes, in a bounded table, for the request's
        retransmissions.  Give it a To tag from :attr:`stateless_tag`.
        Later answers to this request are ignored."""
        self._endpoint._respond_statelessly(self, response)

    @property
    def stateless_tag(self) -> str:
        """The To tag for a stateless answer: the same for every copy."""
        return self._endpoint._answers.tag(self.request)


class _Entry:
    """Book-keeping of one live transaction.

    Called with ``now``, it is the callback of its own deadline on the timer wheel
    (one object fewer per scheduled deadline than a closure, and a UDP
    server transaction waits out Timer J's 32 s with one scheduled).
    """

    __slots__ = (
        "callback",
        "destination",
        "endpoint",
        "flow",
        "handle",
        "reply_to",
        "timer",
        "tx",
        "via",
        "wire",
    )

    def __init__(self, endpoint: SipEndpoint, tx: Transaction) -> None:
        self.endpoint = endpoint
        self.tx = tx
        self.timer: Timer | None = None
        self.flow: Flow | None = None
        #: Server transactions over UDP: where every response goes, worked
        #: out once from the request's top Via (not re-parsed per response).
        self.reply_to: Address | None = None
        #: Server transactions over UDP: the request datagram as received,
        #: the key under which a byte-identical retransmission is recognised.
        self.wire: bytes | None = None
        #: Client transactions: (transport, remote, TLS name); None for servers.
        self.destination: tuple[str, Address, str | None] | None = None
        self.callback: ResponseCallback | None = None
        self.handle: ServerHandle | None = None
        #: Server transactions on a stream: the request's top Via, where a
        #: response goes if the connection closes (RFC 3261 18.2.2; the
        #: handle is let go at the final response, the 2xx resends follow).
        self.via: Via | None = None

    def __call__(self, now: float) -> None:
        self.endpoint._fire(self, now)

    def transport_failed(self) -> None:
        """A message of this transaction could not be sent (a client's
        datagram, a server's response with no connection to go over)."""
        endpoint = self.endpoint
        if endpoint._entries.get(id(self.tx)) is self:  # still live
            self.tx.handle_transport_error(endpoint.now())
            endpoint._pump(self)


class _Redelivery:
    """A server transaction's response, waiting for a new connection to its
    request's source because the request's own one closed (see net.redial)."""

    __slots__ = ("data", "entry")

    def __init__(self, entry: _Entry, data: bytes) -> None:
        self.entry = entry
        self.data = data

    def __call__(self, conn: StreamConnection | None) -> None:
        entry = self.entry
        endpoint = entry.endpoint
        live = endpoint._entries.get(id(entry.tx)) is entry
        if conn is None or conn.flow is None:
            entry.transport_failed()  # RFC 3261 17.2.4
            return
        if live:  # what follows goes (and what the limits spare is) here now
            entry.flow = conn.flow
            endpoint._carried(entry, conn)
        # Sent even if the transaction has ended meanwhile: over a reliable
        # transport a final response ends it at once (Timer J is 0).
        endpoint._send_on_flow(self.data, conn.flow, None)


class _FinalResponse:
    """The callback of :meth:`SipEndpoint.request`: the transaction's final
    response (or why none came) becomes the result of one future.

    A class, not a closure: compiled, a nested function and the environment
    it shares with its parent reference each other, and that cycle (with the
    request, the response and the future in it) would wait for the cyclic
    collector after every request; this object is freed by reference counts.
    """

    __slots__ = ("done", "last")

    def __init__(self, done: asyncio.Future[tuple[Response | None, str]]) -> None:
        self.done = done
        self.last: Response | None = None

    def __call__(self, response: Response | None, why: str) -> None:
        done = self.done
        if response is not None:
            if response.status_code >= 200:
                self.last = response
                if not done.done():
                    done.set_result((response, "final"))
        elif not done.done():
            done.set_result((self.last, why))

    def timed_out(self, now: float) -> None:
        """The caller's own timeout (see :meth:`SipEndpoint.request`)."""
        self(None, "timeout")


class SipEndpoint:
    """One SIP endpoint (a pusher, a phone line, a fleet of them)."""

    def __init__(
        self,
        *,
        handler: RequestHandler | None = None,
        policy: UasPolicy | None = None,
        timers: Timers = DEFAULT_TIMERS,
        client_ssl: ssl.SSLContext | None = None,
        server_ssl: ssl.SSLContext | None = None,
        advertised_host: str | None = None,
        max_server_transactions: int = DEFAULT_MAX_SERVER_TRANSACTIONS,
        stream_limits: StreamLimits = DEFAULT_STREAM_LIMITS,
    ) -> None:
        """``max_server_transactions`` bounds the memory a peer can make the
        endpoint hold: past it, a new request is answered 503 with
        Retry-After, statelessly (see DEFAULT_MAX_SERVER_TRANSACTIONS).
        ``stream_limits`` bound what TCP and TLS peers can hold (connections,
        idle ones, half-sent messages, unread responses)."""
        self._loop = asyncio.get_running_loop()
        self._wheel = TimerWheel(self._loop)
        self._table = TransactionTable()
        self._entries: dict[int, _Entry] = {}
        #: Live UDP server transactions by their request datagram: a peer's
        #: retransmission is byte-identical, so it is matched with one dict
        #: probe instead of a parse (what keeps an overloaded phone from
        #: spending its CPU re-parsing the copies its slowness provoked).
        self._by_wire: dict[bytes, _Entry] = {}
        #: Retired UDP server transactions (see _retire).
        self._retired = RetiredTransactions(self._table, self._wheel)
        #: Stream connections carrying live transactions, with them: what
        #: the stream limits may not close, and what a lost connection ends.
        self._on_stream: dict[StreamConnection, set[_Entry]] = {}
        #: Recent stateless answers, for their requests' retransmissions.
        self._answers = StatelessAnswers()
        #: Responses whose request's connection closed (RFC 3261 18.2.2).
        self._redials = Redials(self._stream)
        self._handler = handler
        self._policy = policy
        self._timers = timers
        self._client_ssl = client_ssl
        self._server_ssl = server_ssl
        self._stream_limits = stream_limits
        self._advertised = advertised_host
        #: The first UDP socket: client transactions are sent from it.
        self.udp: UdpTransport | None = None
        #: Every UDP socket by local address (a fleet binds one per phone line).
        self._udp: dict[Address, UdpTransport] = {}
        self._streams: dict[str, StreamTransport] = {}
        self._received = 0
        self._sent = 0
        self._parse_errors = 0
        self._absorbed = 0
        self._max_server = max_server_transactions
        self._server_live = 0
        self._overloaded = 0
        #: TU handler failures (each answered 500), and the last one's text.
        self.handler_errors = 0
        self.last_handler_error = ""
        #: Optional hook seeing every message sent or received (for --trace).
        self.tracer: Callable[[str, bytes, Flow | tuple[str, Address]], None] | None = None
        #: Optional hook told of every message the endpoint refuses or drops
        #: without the TU: (flow, status code sent or 0 if none, why).
        self.on_refused: Callable[[Flow, int, str], None] | None = None
        #: Local address -> the only source host read there (see restrict_source).
        self._sources: dict[Address, str] = {}
        self._dropped_sources = 0
        #: Client transactions over UDP by the address they send to: what an
        #: ICMP unreachable for that address ends (see _unreachable).
        self._udp_clients: dict[Address, set[_Entry]] = {}
        self._icmp_unreachable = 0
        self._icmp_ended = 0

    # ------------------------------------------------------------ lifecycle
    def restrict_source(self, local: Address, host: str) -> None:
        """Read what arrives at ``local`` (UDP or stream) only if it comes
        from ``host`` (an IP address spelt as the kernel reports a source,
        as ``socket.inet_ntop`` writes it): the SPA's Restrict_Source_IP,
        which lets only the proxy reach a line.  Anything else is dropped
        unparsed and unanswered, so a scan learns nothing, and reported to
        :attr:`on_refused`."""
        self._sources[local] = host

    async def listen_udp(self, host: str, port: int = 0) -> Address:
        """Bind a UDP socket (call again for more: each answers on its own)."""
        sock = await UdpTransport.bind(host, port, self._on_data, unreachable=self._unreachable)
        self._udp[sock.local] = sock
        if self.udp is None:
            self.udp = sock
        return sock.local

    def close_udp(self, local: Address) -> None:
        """Close one UDP socket (a phone of a fleet going down)."""
        sock = self._udp.pop(local, None)
        if sock is not None:
            sock.close()
            if self.udp is sock:
                self.udp = next(iter(self._udp.values()), None)

    def flush(self) -> None:
        """Send now every datagram held for the end of the loop's turn (see
        :meth:`UdpTransport.send_soon`): for callers that feed the endpoint
        by hand, as tests and benchmarks do, and wait for the answers."""
        for sock in self._udp.values():
            sock.flush()

    async def listen_stream(self, transport: str, host: str, port: int = 0) -> Address:
        """Accept TCP or TLS connections."""
        return await self._stream(transport).listen(host, port)

    def keep_open(self, transport: str, remote: Address) -> None:
        """Keep the ``transport`` connection to ``remote`` open while idle,
        until :meth:`release` (see ``StreamTransport.keep_open``)."""
        self._stream(transport).keep_open(remote)

    def release(self, transport: str, remote: Address) -> None:
        """Undo one :meth:`keep_open`."""
        self._stream(transport).release(remote)

    def _stream(self, name: str) -> StreamTransport:
        st = self._streams.get(name)
        if st is None:
            st = StreamTransport(
                name,
                self._on_data,
                client_ssl=self._client_ssl,
                server_ssl=self._server_ssl,
                on_lost=self._connection_lost,
                limits=self._stream_limits,
                in_use=self._stream_in_use,
                carries_ours=self._stream_carries_ours,
            )
            self._streams[name] = st
        return st

    async def close(self) -> None:
        """Stop everything (pending client transactions end with "transport")."""
        for entry in list(self._entries.values()):
            if entry.timer is not None:  # its callback refers back to the entry
                entry.timer.cancel()
                entry.timer = None
            if entry.callback is not None:
                entry.callback(None, "closed")
        self._entries.clear()
        self._udp_clients.clear()
        self._on_stream.clear()
        self._server_live = 0
        self._by_wire.clear()
        self._retired.clear()
        self._answers.clear()
        await self._redials.close()
        self._wheel.close()
        for sock in self._udp.values():
            sock.close()
        self._udp.clear()
        self.udp = None
        for st in self._streams.values():
            await st.close()

    @property
    def stats(self) -> Stats:
        """Counters so far."""
        return Stats(
            self._received,
            self._sent,
            self._parse_errors,
            len(self._entries) + len(self._retired),
            len(self._wheel),
            self._absorbed,
            self._overloaded,
            self._dropped_sources,
            self._redials.opened,
            self._redials.failed,
            self._icmp_unreachable,
            self._icmp_ended,
        )

    def now(self) -> float:
        """The clock every core call receives."""
        return self._loop.time()

    def call_at(self, deadline: float, callback: Callable[[float], None]) -> Timer:
        """Run ``callback(now)`` at ``deadline`` (see :meth:`now`) on the
        endpoint's timer wheel: for a TU's own timers (2xx retransmission),
        which then cost no asyncio timer handle each."""
        return self._wheel.schedule(deadline, callback)

    # ------------------------------------------------------------ addresses
    def sent_by(self, transport: str) -> str:
        """``host:port`` for our Via / Contact on ``transport``."""
        host, port = self._sent_by_parts(transport)
        return f"{host}:{port}"

    def _sent_by_parts(self, transport: str, local: Address | None = None) -> tuple[str, int]:
        """Host (bracketed if IPv6) and port a Via or Contact names for
        ``transport``: those of ``local`` if given (the socket a request
        leaves from), else of the transport's first socket or listener."""
        if local is not None:
            host, port = local
        elif transport == "udp" and self.udp is not None:
            host, port = self.udp.local
        else:
            st = self._streams.get(transport)
            if st is not None and st.local is not None:
                host, port = st.local
            elif self.udp is not None:
                host, port = self.udp.local
            else:
                host, port = "127.0.0.1", 5060
        host = self._advertised or host
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1" if host == "0.0.0.0" else "::1"
        return (f"[{host}]" if ":" in host else host), port

    def top_via(
        self, transport: str, branch: str | None = None, *, local: Address | None = None
    ) -> Via:
        """The top Via of a new request (with ``rport``, RFC 3581); give its
        text to the request and the value to :meth:`Request.prime_top_via`.
        ``local``: the UDP socket the request will leave from (see
        :meth:`request`), when it is not the first one."""
        host, port = self._sent_by_parts(transport, local)
        params = (("branch", branch or new_branch()), ("rport", None))
        return Via(transport.upper(), host, port, params)

    def via(
        self, transport: str, branch: str | None = None, *, local: Address | None = None
    ) -> str:
        """A top Via value for a new request (with ``rport``, RFC 3581)."""
        return str(self.top_via(transport, branch, local=local))

    # ---------------------------------------------------------------- client
    async def send_request(
        self,
        request: Request,
        transport: str,
        remote: Address,
        callback: ResponseCallback,
        *,
        server_hostname: str | None = None,
        connect_timeout: float = 5.0,
        local: Address | None = None,
    ) -> None:
        """Start a client transaction; ``callback`` sees its responses.

        Raises ``OSError`` (or ``ssl.SSLError``, ``TimeoutError``) when a
        stream connection cannot be opened, or ``local`` names no UDP socket
        of this endpoint: nothing was sent then.  ``local``: see :meth:`request`.
        """
        flow: Flow | None = self._udp_flow(remote, local) if transport == "udp" else None
        if transport != "udp":
            conn = await self._stream(transport).connect(
                remote, server_hostname=server_hostname, timeout=connect_timeout
            )
            flow = conn.flow
        self._start_client(request, transport, remote, callback, flow, server_hostname)

    def _start_client(
        self,
        request: Request,
        transport: str,
        remote: Address,
        callback: ResponseCallback,
        flow: Flow | None,
        server_hostname: str | None,
    ) -> None:
        """The client transaction itself, once a stream (if any) is open:
        over UDP nothing waits, so :meth:`request` calls this directly
        rather than through the coroutine (one fewer per request)."""
        if transport == "udp" and self.udp is None:
            raise OSError("the endpoint has no UDP transport")
        tx = new_client_transaction(
            request, self.now(), reliable=transport != "udp", timers=self._timers
        )
        entry = _Entry(self, tx)
        entry.flow = flow
        entry.destination = (transport, remote, server_hostname)
        entry.callback = callback
        if flow is not None and flow.connection is not None:
            self._carried(entry, flow.connection)
        elif transport == "udp":
            waiting = self._udp_clients.get(remote)
            if waiting is None:
                waiting = self._udp_clients[remote] = set()
            waiting.add(entry)
        self._table.add(tx)
        self._entries[id(tx)] = entry
        self._pump(entry)

    async def request(
        self,
        request: Request,
        transport: str,
        remote: Address,
        *,
        server_hostname: str | None = None,
        timeout: float | None = None,
        local: Address | None = None,
    ) -> tuple[Response | None, str]:
        """Send ``request``; wait for the final response (or why none came).

        ``local`` (UDP): send from the socket bound there rather than the
        first one, as a phone line registers from its own port (give the
        Via the same address: :meth:`via`'s ``local``).

        ``timeout`` gives up waiting sooner than the transaction's own Timer
        F/B; the transaction lives on and absorbs a late response.  The
        deadline goes on the endpoint's timer wheel: no asyncio task or timer
        handle is made per request (``asyncio.wait_for`` would make both).
        """
        done: asyncio.Future[tuple[Response | None, str]] = self._loop.create_future()
        waiter = _FinalResponse(done)
        give_up = None
        if timeout is not None:
            give_up = self._wheel.schedule(self.now() + timeout, waiter.timed_out)
        try:
            if transport == "udp":
                flow = self._udp_flow(remote, local)
                self._start_client(request, transport, remote, waiter, flow, server_hostname)
            else:
                await self.send_request(
                    request,
                    transport,
                    remote,
                    waiter,
                    server_hostname=server_hostname,
                    connect_timeout=5.0 if timeout is None else timeout,
                )
            return await done
        finally:
            if give_up is not None:
                give_up.cancel()

    def _udp_flow(self, remote: Address, local: Address | None) -> Flow | None:
        """A client UDP transaction's flow: which socket it leaves from (None:
        the first)."""
        if local is None:
            return None
        if local not in self._udp:
            # The address a connection was made to, for a line bound to the
            # wildcard address: that socket is the line's.
            port = local[1]
            wildcard = ("0.0.0.0", port) if ("0.0.0.0", port) in self._udp else ("::", port)
            if wildcard not in self._udp:
                raise OSError(f"no UDP socket of this endpoint is bound to {local}")
            local = wildcard
        return Flow("udp", remote, local)

    # ---------------------------------------------------------------- server
    def _respond(self, handle: ServerHandle, response: Response) -> None:
        if handle.tx is None:
            if handle.stateless:
                return  # already answered, statelessly
            opened = self._open(handle)
            if opened is None:
                self._respond_statelessly(handle, response)
                return
            entry = opened
        else:
            found = self._entries.get(id(handle.tx))
            if found is None:
                retired_tx = handle.tx
                deadline = retired_tx.next_deadline()
                if deadline is not None and deadline > self.now():
                    # Retired (see _retire) but not over: the machine still
                    # judges, and refuses, any further response, as before.
                    retired_tx.send_response(response, self.now())
                return  # the transaction already ended (e.g. Timer H)
            entry = found
        tx = handle.tx
        assert tx is not None
        tx.send_response(response, self.now())
        self._pump(entry)

    def _respond_statelessly(self, handle: ServerHandle, response: Response) -> None:
        if handle.tx is not None or handle.stateless:
            return  # answered already
        handle.stateless = True
        flow = handle.flow
        data = bytes(response)
        remote = self._send_stateless_bytes(data, response, flow)
        if flow.connection is None and handle._wire:
            self._answers.keep(handle._wire, flow, remote, data)

    def _open(self, handle: ServerHandle) -> _Entry | None:
        """The server transaction of a request the TU answers (or will):
        kept for the retransmissions (and, for INVITE, the ACK).  None if
        the core refuses to make one (a duplicate key)."""
        request, flow = handle.request, handle.flow
        try:
            tx = new_server_transaction(request, reliable=flow.reliable, timers=self._timers)
            self._table.add(tx)
        except SipError:
            return None
        self._server_live += 1
        entry = _Entry(self, tx)
        entry.flow = flow
        if flow.connection is None:
            entry.reply_to = reply_address(request.top_via, flow)
            data = handle._wire
            if data:
                entry.wire = data
                self._by_wire[data] = entry
        else:
            self._carried(entry, flow.connection)
            entry.via = request.top_via
        entry.handle = handle
        handle.tx = tx
        self._entries[id(tx)] = entry
        return entry

    # --------------------------------------------------------------- receive
    def _on_data(self, data: bytes, flow: Flow) -> None:
        self._received += 1
        if self.tracer is not None:
            self.tracer("recv", data, flow)
        if self._sources:
            allowed = self._sources.get(flow.local)
            if allowed is not None and _unmapped(flow.remote[0]) != allowed:
                self._dropped_sources += 1
                self._refused(flow, 0, "restricted-source")
                return
        known = self._by_wire.get(data)
        if (
            known is not None
            and known.flow is not None
            and known.flow.remote == flow.remote
            and known.flow.local == flow.local
        ):
            self._absorbed += 1
            copied = known.tx
            assert isinstance(copied, ServerTransaction)  # only they are known by bytes
            copied.handle_retransmission(self.now())
            self._pump(known)
            return
        if known is None and self._retired:
            retired = self._retired.by_wire(data, flow)
            if retired is not None:
                now = self.now()
                if retired.record.answer(now) is not None:
                    self._absorbed += 1
                    self._sent += 1
                    self._send_on_flow(retired.record.response, retired.flow, retired.reply_to)
                    return
                self._retired.sweep_now(now)  # Timer J is over: the copy is a new request
        if known is None and self._answers:
            answered = self._answers.find(data, flow)
            if answered is not None:
                # A copy of a request answered statelessly: the same answer.
                self._absorbed += 1
                self._sent += 1
                self._send_on_flow(answered[1], flow, answered[0])
                return
        try:
            msg = parse_message(data)
        except ParseError as exc:
            self._parse_errors += 1
            salvaged = salvage_error_response(data)
            if salvaged is not None:
                self._send_stateless(salvaged, flow)
            self._refused(flow, 0 if salvaged is None else salvaged.status_code, str(exc))
            return
        now = self.now()
        if isinstance(msg, Response):
            tx = self._table.match_response(msg)
            if tx is None:
                return  # stray response: drop (RFC 6026)
            entry = self._entries.get(id(tx))
            if entry is not None:
                tx.handle_response(msg, now)
                self._pump(entry)
            return
        self._on_request(msg, flow, now, data)

    def _on_request(self, request: Request, flow: Flow, now: float, data: bytes = b"") -> None:
        try:
            request = stamp_via(request, flow)
        except HeaderError as exc:
            self._parse_errors += 1
            salvaged = salvage_error_response(bytes(request))
            if salvaged is not None:
                self._send_stateless(salvaged, flow)
            self._refused(flow, 0 if salvaged is None else salvaged.status_code, str(exc))
            return
        existing = self._table.match_request(request)
        if existing is not None:
            entry = self._entries.get(id(existing))
            if entry is not None:
                existing.handle_request(request, now)
                self._pump(entry, flow)
            return
        if self._retired:
            done = self._table.match_completed(request)
            if done is not None:
                # A retransmission in other bytes (or fed without them): the
                # answer goes where the transaction's went, as the machine's
                # would, not where this copy's Via asks (a copy from a forged
                # source must not turn the phone into a reflector).
                retired = self._retired.by_record(done)
                answer = done.answer(now)
                if retired is not None and answer is not None:
                    self._sent += 1
                    self._send_on_flow(answer, retired.flow, retired.reply_to)
                    return
                self._retired.sweep_now(now)  # Timer J is over: the copy is a new request
        if request.method == "ACK":
            if self._handler is not None:
                self._call_handler(request, None, flow)
            return
        try:
            validate(request, self._policy)
        except SipError as exc:
            # Refused before any transaction exists: a CSeq that contradicts
            # the method cannot even key one.  Retransmissions are refused again.
            tag = self._answers.tag(request)
            refusal = error_response(request, exc, to_tag=tag)
            self._send_stateless(refusal, flow)
            self._refused(flow, refusal.status_code, str(exc))
            return
        if self._server_live + len(self._retired) >= self._max_server:
            # RFC 3261 21.5.4: overloaded.  Stateless, so that a flood of
            # new requests costs no memory; a retransmission is refused again.
            self._overloaded += 1
            tag = self._answers.tag(request)
            self._send_stateless(error_response(request, _OVERLOADED, to_tag=tag), flow)
            self._refused(flow, 503, "overloaded")
            return
        if self._handler is None:
            # No TU (a pusher's endpoint): nobody would ever answer, and the
            # transaction that waited for it would never end (a non-INVITE
            # one in Trying has no timer), holding memory and, on a stream,
            # its connection for good.  Say so at once, statelessly.
            tag = self._answers.tag(request)
            self._send_stateless(make_response(request, 501, to_tag=tag), flow)
            self._refused(flow, 501, "no-handler")
            return
        handle = ServerHandle(self, None, request, flow, data)
        self._call_handler(request, handle, flow)
        if handle.tx is None and not handle.stateless:
            # Not answered yet: the transaction holds the request meanwhile
            # (and absorbs its retransmissions).
            entry = self._open(handle)
            if entry is not None:
                self._pump(entry)

    # ------------------------------------------------------------------ pump
    def _pump(self, entry: _Entry, arrived: Flow | None = None) -> None:
        """Send what ``entry``'s machine queued and hand its events up;
        ``arrived`` is the flow of the request just fed to it, if one was."""
        tx = entry.tx
        for data in tx.datagrams_to_send():
            self._transmit(entry, data)
        while (event := tx.next_event()) is not None:
            if isinstance(event, RequestReceived):
                # The creating request: the TU had it before its transaction
                # opened.  An ACK is the one request a machine passes up
                # later: the ACK of a 2xx matching the INVITE's own
                # transaction (its branch, or RFC 2543 rules), which the
                # Accepted state gives the TU (RFC 6026 7.1, 8.7): without
                # it the 2xx would be resent, then the call hung up.
                ack = event.request.method == "ACK"
                if ack and arrived is not None and self._handler is not None:
                    self._call_handler(event.request, None, arrived)
                continue
            if isinstance(event, ResponseReceived):
                if entry.callback is not None:
                    entry.callback(event.response, "response")
                    if event.response.status_code >= 200 and isinstance(
                        tx, NonInviteClientTransaction
                    ):
                        # Nothing more will come up (Completed absorbs
                        # retransmissions for Timer K): let the TU go now
                        # rather than hold its state for those seconds.
                        cb, entry.callback = entry.callback, None
                        cb(None, "final")
            elif isinstance(event, TimedOut | TransportFailed):
                if entry.callback is not None:
                    cb, entry.callback = entry.callback, None
                    cb(None, "timeout" if isinstance(event, TimedOut) else "transport")
            elif isinstance(event, Terminated):
                self._forget(entry)
                return
        if entry.handle is not None and tx.request is None:
            # The final response is out and the core let go of the request:
            # so does the entry, for the rest of Timer J/H/L (the TU may
            # keep its handle, e.g. to resend a 2xx, and it still works).
            entry.handle = None
            if (
                isinstance(tx, NonInviteServerTransaction)
                and entry.flow is not None
                and entry.flow.connection is None
            ):
                record = self._table.retire(tx)
                if record is not None:
                    self._retire(entry, record)
                    return
        deadline = tx.next_deadline()
        timer = entry.timer
        if deadline is None:
            if timer is not None:
                timer.cancel()
                entry.timer = None
        elif timer is None or timer.cancelled or timer.deadline != deadline:
            if timer is not None:
                timer.cancel()
            entry.timer = self._wheel.schedule(deadline, entry)

    def _call_handler(self, request: Request, handle: ServerHandle | None, flow: Flow) -> None:
        """Run the TU; if it raises, answer 500 so the peer is not left waiting
        and the endpoint keeps serving (nothing a peer sends may stop it)."""
        try:
            self._handler(request, handle if request.method != "ACK" else None, flow)  # type: ignore[misc]
        except Exception as exc:
            self.handler_errors += 1
            self.last_handler_error = f"{type(exc).__name__}: {exc}"
            if handle is not None and request.method != "ACK":
                failure = ValidationError(
                    "internal error", status_code=500, reason="Server Internal Error"
                )
                with contextlib.suppress(SipError):
                    handle.respond(error_response(request, failure, to_tag=new_tag()))

    def _retire(self, entry: _Entry, record: CompletedServer) -> None:
        """Keep ``record`` for the rest of Timer J instead of ``entry``'s
        machine, timer and request datagram (it still counts against
        ``max_server_transactions``: it holds memory).  The TU's handle
        answers nothing more, as for a transaction that has ended."""
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        del self._entries[id(entry.tx)]
        self._server_live -= 1  # a machine no more: counted in _retired now
        wire = entry.wire
        if wire is not None and self._by_wire.get(wire) is entry:
            del self._by_wire[wire]
        assert entry.flow is not None
        self._retired.keep(record, entry.flow, entry.reply_to, wire)

    def _fire(self, entry: _Entry, now: float) -> None:
        entry.timer = None
        entry.tx.handle_timer(now)
        self._pump(entry)

    def _forget(self, entry: _Entry) -> None:
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        self._table.remove(entry.tx)
        if self._entries.pop(id(entry.tx), None) is not None:
            destination = entry.destination
            if destination is None:
                self._server_live -= 1
            elif destination[0] == "udp":
                waiting = self._udp_clients.get(destination[1])
                if waiting is not None:
                    waiting.discard(entry)
                    if not waiting:
                        del self._udp_clients[destination[1]]
            if entry.flow is not None and entry.flow.connection is not None:
                conn = entry.flow.connection
                carried = self._on_stream.get(conn)
                if carried is not None:
                    carried.discard(entry)
                    if not carried:
                        del self._on_stream[conn]
                        stream = self._streams.get(conn.transport_name)
                        if stream is not None:  # a dial waiting for a place may take it
                            stream.freed(conn)
        if entry.wire is not None and self._by_wire.get(entry.wire) is entry:
            del self._by_wire[entry.wire]
        if entry.callback is not None:
            cb, entry.callback = entry.callback, None
            cb(None, "final")

    # ------------------------------------------------------------------ send
    def _transmit(self, entry: _Entry, data: bytes) -> None:
        self._sent += 1
        if entry.destination is None:  # a server transaction
            flow = entry.flow
            assert flow is not None
            conn = flow.connection
            if conn is not None and not conn.is_open and entry.via is not None:
                # RFC 3261 18.2.2: over a new connection to the source.
                self._redials.connect(flow, entry.via, _Redelivery(entry, data))
                return
            self._send_on_flow(data, flow, entry.reply_to)
            return
        assert entry.destination is not None
        transport, remote, _ = entry.destination
        if self.tracer is not None:
            self.tracer("send", data, (transport, remote))
        if transport == "udp":
            # A client entry's flow, over UDP, names the socket it leaves from.
            sock = self.udp if entry.flow is None else self._udp.get(entry.flow.local)
            if sock is None:  # that socket was closed meanwhile
                entry.tx.handle_transport_error(self.now())
                return
            sock.send_soon(data, remote, entry.transport_failed)
        elif entry.flow is not None and entry.flow.connection is not None:
            conn = entry.flow.connection
            if conn.is_open:
                conn.send(data)
            else:
                entry.tx.handle_transport_error(self.now())

    def _carried(self, entry: _Entry, conn: StreamConnection) -> None:
        carried = self._on_stream.get(conn)
        if carried is None:
            carried = self._on_stream[conn] = set()
        carried.add(entry)

    def _stream_in_use(self, conn: StreamConnection) -> bool:
        """Whether ``conn`` carries a live transaction (the stream limits
        close no such connection for idleness or to make room)."""
        return conn in self._on_stream

    def _stream_carries_ours(self, conn: StreamConnection) -> bool:
        """Whether a request of ours (a client transaction) rides ``conn``:
        such a connection is never displaced for a peer's new one."""
        return any(entry.destination is not None for entry in self._on_stream.get(conn, ()))

    def _connection_lost(self, conn: StreamConnection) -> None:
        """A stream connection closed: its client transactions will get no
        response on it (RFC 3261 17.1.4: a transport error), rather than
        waiting out Timer B/F.  Its server transactions run on: their
        responses go over a new connection to the request's source (RFC
        3261 18.2.2, see net.redial); if none can be opened, that is the
        transaction's transport error (a non-INVITE one ends; an INVITE
        one, as RFC 6026 keeps it, waits for a retransmission or Timer H/L)."""
        if conn.framing_error is not None and conn.flow is not None:
            # Refused unread like a malformed datagram, and as visible.
            self._refused(conn.flow, 0, f"framing: {conn.framing_error}")
        carried = self._on_stream.pop(conn, None)
        if carried is None:
            return
        now = self.now()
        for entry in [e for e in carried if e.destination is not None]:
            if self._entries.get(id(entry.tx)) is entry:
                entry.tx.handle_transport_error(now)
                self._pump(entry)

    def _unreachable(self, local: Address, remote: Address) -> None:
        """An ICMP unreachable says nobody listens at ``remote`` for what
        the socket at ``local`` sent there: the client transactions waiting
        on an answer from it over that socket hear of a transport error
        (RFC 3261 18.4; 8.1.3.1: the TU may try the next target), instead
        of retransmitting until Timer F or B.  Server transactions run on:
        their peer's retransmission is what matters to them."""
        self._icmp_unreachable += 1
        waiting = self._udp_clients.get(remote)
        if not waiting:
            return
        now = self.now()
        first = self.udp
        for entry in list(waiting):
            flow = entry.flow
            sent_from = flow.local if flow is not None else (first.local if first else None)
            if sent_from != local or self._entries.get(id(entry.tx)) is not entry:
                continue
            self._icmp_ended += 1
            entry.tx.handle_transport_error(now)
            self._pump(entry)

    def _refused(self, flow: Flow, status_code: int, why: str) -> None:
        if self.on_refused is not None:
            self.on_refused(flow, status_code, why)

    def _send_stateless(self, response: Response, flow: Flow) -> None:
        self._send_stateless_bytes(bytes(response), response, flow)

    def _send_stateless_bytes(self, data: bytes, response: Response, flow: Flow) -> Address | None:
        """Send ``data`` (``response`` serialised) without a transaction;
        returns the UDP address it went to (None on a connection)."""
        self._sent += 1
        remote = None
        if flow.connection is None:
            try:
                remote = reply_address(response.top_via, flow)
            except SipError:
                remote = flow.remote
        self._send_on_flow(data, flow, remote)
        return remote

    def _send_on_flow(self, data: bytes, flow: Flow, remote: Address | None) -> None:
        if flow.connection is not None:
            if self.tracer is not None:
                self.tracer("send", data, flow)
            flow.connection.send(data)
            return
        if remote is None:
            remote = flow.remote
        if self.tracer is not None:
            self.tracer("send", data, ("udp", remote))
        sock = self._udp.get(flow.local) or self.udp
        if sock is not None:
            sock.send_soon(data, remote)
