"""SIP transactions (RFC 3261 section 17, corrected by RFC 6026), sans-IO.

Theory of operation
-------------------
A transaction is one request and its responses (plus, for an INVITE answered
with a failure, the ACK of that failure).  It exists to make an unreliable
transport look reliable to the transaction user (TU): it retransmits, absorbs
the peer's retransmissions, and gives up on a silent peer.  There are four
machines, one per figure of RFC 3261 (5 to 8, with RFC 6026's Accepted
state): :class:`InviteClientTransaction`, :class:`NonInviteClientTransaction`,
:class:`InviteServerTransaction`, :class:`NonInviteServerTransaction`.

Each machine is a table from ``(state, input)`` to a :class:`Transition`:
the new state, the actions to take (pass the message up, send, retransmit,
ACK, report a timeout or a transport failure) and the timers to start.  A
timer is alive only in the states that have a row for it; entering another
state cancels it, so no row ever says "stop timer E".  A missing row means
*absorb*: a retransmission or a stray message is dropped without effect.  A
missing row for a TU input (``send_response``) is a bug in the TU and raises
:class:`TransactionError`.  Each table names the figure it transcribes:
read the two side by side.

Inputs arrive through five methods, each given the current time ``now`` (a
float on whatever clock the driver uses, seconds; this module never reads a
clock):

- ``handle_response(response, now)``: a client's response from the network;
- ``handle_request(request, now)``: a server's retransmitted request or ACK;
- ``send_response(response, now)``: a server's response from the TU;
- ``handle_timer(now)``: the driver's timer, at or after ``next_deadline()``;
- ``handle_transport_error(now)``: the endpoint could not send.

Timers leave as absolute deadlines.  ``next_deadline()`` is the earliest one
(or ``None``); ``handle_timer(now)`` fires every timer due by ``now`` in
deadline order, each *as of its own deadline*, so retransmissions fall at
exactly T1, 3*T1, 7*T1... from the first send whatever the driver's jitter.
Calling ``handle_timer`` early is a no-op, and every input first fires the
timers already due, so a driver that services its timer heap late still sees
the right order of events.  Timers of zero length (Timer K on TCP...) fire
within the call that started them.

Effects are queued, aioquic style.  After any call the driver takes
``datagrams_to_send()`` (wire bytes for the transport; where they go is the
endpoint's choice, as the transaction knows no addresses), drains
``next_event()`` (:class:`RequestReceived`, :class:`ResponseReceived`,
:class:`TimedOut`, :class:`TransportFailed`, :class:`Terminated`) for the TU,
and re-schedules the transaction at ``next_deadline()``.  One timer per
endpoint is enough: a heap of ``(deadline, transaction)`` across thousands
of transactions, with stale entries harmless because early calls do nothing.

A sketch of a driver::

    tx = new_client_transaction(request, now, reliable=flow.reliable)
    table.add(tx)
    pump(tx)                       # send datagrams, drain events, schedule

    # a datagram arrived
    msg = parse_message(data)
    if isinstance(msg, Response):
        tx = table.match_response(msg)      # None: a stray, drop it (RFC 6026)
        tx.handle_response(msg, now)
    elif (tx := table.match_request(msg)) is not None:
        tx.handle_request(msg, now)         # a retransmission, or an ACK
    elif (done := table.match_completed(msg)) is not None:
        send(done.answer(now))              # a retransmission, after retire()
    elif msg.method == "ACK":
        ...                                 # the ACK of a 2xx: the TU's
    else:
        tx = new_server_transaction(msg, reliable=flow.reliable)
        table.add(tx)                       # first event: RequestReceived
    pump(tx)

    # the driver's timer fired for tx
    tx.handle_timer(now); pump(tx)

    # pump() saw Terminated
    table.remove(tx)

    # pump() sent a non-INVITE server's final response over UDP: optional
    done = table.retire(tx)             # the machine can go; 32 s in ~1/3 the memory
    # ... and at done.expires (Timer J)
    table.remove_completed(done)

Matching (RFC 3261 17.1.3, 17.2.3) is by value: :func:`client_key` of a
request equals the key of its responses; :func:`server_key` of a request
equals the key of its retransmissions and of the ACK of a failure, and falls
back to RFC 2543 rules when the branch lacks the magic cookie.
:class:`TransactionTable` is a registry keyed that way.

The 100 Trying an INVITE server owes within 200 ms is left to the TU, which
knows whether it will answer sooner: :func:`make_trying` builds it.  The
2xx to an INVITE is retransmitted by the TU (RFC 3261 13.3.1.4), and its ACK
is sent by the TU: both belong to the dialog, not the transaction.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar, Final

from phonecast.sip._transaction_base import (
    DEFAULT_TIMERS,
    MAGIC_COOKIE,
    Action,
    BranchKey,
    ClientKey,
    Input,
    LegacyKey,
    Machine,
    RequestReceived,
    ResponseReceived,
    ServerKey,
    State,
    Table,
    Terminated,
    TimedOut,
    Timers,
    TransactionEvent,
    Transition,
    TransportFailed,
    cancel_target_key,
    client_key,
    is_rfc3261_branch,
    new_branch,
    response_input,
    rows,
    server_key,
)
from phonecast.sip._transaction_messages import make_ack, make_cancel, make_trying
from phonecast.sip.errors import SipError, TransactionError
from phonecast.sip.message import Message, Request, Response

__all__ = [
    "DEFAULT_TIMERS",
    "MAGIC_COOKIE",
    "BranchKey",
    "ClientKey",
    "ClientTransaction",
    "CompletedServer",
    "InviteClientTransaction",
    "InviteServerTransaction",
    "LegacyKey",
    "NonInviteClientTransaction",
    "NonInviteServerTransaction",
    "RequestReceived",
    "ResponseReceived",
    "ServerKey",
    "ServerTransaction",
    "State",
    "Terminated",
    "TimedOut",
    "Timers",
    "Transaction",
    "TransactionEvent",
    "TransactionTable",
    "TransportFailed",
    "cancel_target_key",
    "client_key",
    "is_rfc3261_branch",
    "make_ack",
    "make_cancel",
    "make_trying",
    "new_branch",
    "new_client_transaction",
    "new_server_transaction",
    "server_key",
]

St, In, Do = State, Input, Action
_FINAL: Final = (In.SUCCESS, In.FAILURE)
#: Client states in which the request may still be (re)transmitted.
_SENDING: Final = frozenset({St.CALLING, St.TRYING, St.PROCEEDING})

# ---------------------------------------------------------- the four machines


class ClientTransaction(Machine):
    """Common part of the client machines: created by sending the request.

    Once a final response has arrived the transaction sends nothing of its
    own again (an INVITE's ACK for a failure is built once, as bytes, at the
    first failure), so it lets go of its request and of the request's bytes
    kept for retransmission (``request`` becomes ``None``): it waits out
    Timer K (5 s) or D/M only to absorb response retransmissions, and a
    sender at 9,000 pushes a second keeps ~90,000 such transactions.
    """

    _INITIAL: ClassVar[State]
    _START: ClassVar[tuple[Input, ...]]

    __slots__ = ("key", "request")

    def __init__(
        self, request: Request, now: float, *, reliable: bool, timers: Timers = DEFAULT_TIMERS
    ) -> None:
        """Queue ``request`` for sending at ``now`` and start the machine."""
        key = client_key(request)
        if key is None or not is_rfc3261_branch(key.branch):
            raise TransactionError("a client transaction needs a branch from new_branch()")
        super().__init__(self._INITIAL, reliable=reliable, timers=timers)
        #: The request this transaction sends, until a final response
        #: arrives (then ``None``, see the class docstring).
        self.request: Request | None = request
        #: What its responses match on.
        self.key = key
        self._send(bytes(request))
        for timer in self._START:
            self._arm(timer, now, now)

    def handle_response(self, response: Response, now: float) -> None:
        """A response matched to this transaction arrived at ``now``."""
        if client_key(response) != self.key:
            raise TransactionError("the response does not belong to this transaction")
        self._input(response_input(response.status_code), now, response)
        if self.state not in _SENDING:
            self.request = None
            self._last = None


class ServerTransaction(Machine):
    """Common part of the server machines: created by receiving the request.

    The creating request is the first event: :class:`RequestReceived`.

    Once the TU has sent a final response the transaction lets go of its
    request (``request`` becomes ``None``; ``method`` stays): from then on it
    only absorbs retransmissions and repeats its last response, which needs
    the key and that response's bytes.  Over UDP it lives on for Timer J
    (32 s) or H/I/L, and a parsed request with everything read from it is
    most of what it would otherwise hold that long, for every request a peer
    sends.
    """

    _INITIAL: ClassVar[State]

    __slots__ = ("key", "method", "request")

    def __init__(
        self, request: Request, *, reliable: bool, timers: Timers = DEFAULT_TIMERS
    ) -> None:
        super().__init__(self._INITIAL, reliable=reliable, timers=timers)
        #: The request that created this transaction, until a final
        #: response is sent (then ``None``, see the class docstring).
        self.request: Request | None = request
        #: Its method: what responses and retransmissions are checked against.
        self.method = request.method
        #: What its retransmissions match on.
        self.key = server_key(request)
        self._events.append(RequestReceived(request))

    def handle_request(self, request: Request, now: float) -> None:
        """A request matched to this transaction (a retransmission, or an ACK)."""
        self._input(self._request_input(request), now, request)

    def handle_retransmission(self, now: float) -> None:
        """A byte-for-byte copy of the creating request arrived at ``now``
        (a driver that recognises copies by their bytes need not parse them)."""
        self._input(In.REQUEST, now)

    def send_response(self, response: Response, now: float) -> None:
        """Send the TU's response at ``now``.

        Raises :class:`TransactionError` for a response the state does not
        allow (a second final response, a provisional after a final...) or
        one for another request.
        """
        if response.cseq.method != self.method:
            raise TransactionError(
                f"a response to {response.cseq.method} sent on a {self.method} transaction"
            )
        self._input(response_input(response.status_code), now, response, tu=True)
        if response.status_code >= 200:
            self.request = None

    def _request_input(self, request: Request) -> Input:
        if request.method != self.method:
            raise TransactionError(f"{request.method} does not belong to this transaction")
        return In.REQUEST


# RFC 3261 figure 6.
NON_INVITE_CLIENT: Final[Table] = {
    (St.TRYING, In.TIMER_E): Transition(St.TRYING, (Do.RETRANSMIT,), (In.TIMER_E,)),
    (St.TRYING, In.PROVISIONAL): Transition(St.PROCEEDING, (Do.PASS_UP,)),
    (St.PROCEEDING, In.TIMER_E): Transition(St.PROCEEDING, (Do.RETRANSMIT,), (In.TIMER_E,)),
    (St.PROCEEDING, In.PROVISIONAL): Transition(St.PROCEEDING, (Do.PASS_UP,)),
    **rows(
        (St.TRYING, St.PROCEEDING),
        _FINAL,
        Transition(St.COMPLETED, (Do.PASS_UP,), (In.TIMER_K,)),
    ),
    **rows((St.TRYING, St.PROCEEDING), (In.TIMER_F,), Transition(St.TERMINATED, (Do.TIME_OUT,))),
    **rows(
        (St.TRYING, St.PROCEEDING),
        (In.TRANSPORT_ERROR,),
        Transition(St.TERMINATED, (Do.FAIL_TRANSPORT,)),
    ),
    # Completed only waits out response retransmissions (absorbed: no row).
    (St.COMPLETED, In.TIMER_K): Transition(St.TERMINATED),
}


class NonInviteClientTransaction(ClientTransaction):
    """Sends a non-INVITE request (NOTIFY, OPTIONS, CANCEL...): Timers E, F, K."""

    TABLE = NON_INVITE_CLIENT
    _INITIAL = St.TRYING
    _START = (In.TIMER_E, In.TIMER_F)

    __slots__ = ()

    def __init__(
        self, request: Request, now: float, *, reliable: bool, timers: Timers = DEFAULT_TIMERS
    ) -> None:
        if request.method in ("INVITE", "ACK"):
            raise TransactionError(f"{request.method} cannot use a non-INVITE transaction")
        super().__init__(request, now, reliable=reliable, timers=timers)

    def _duration(self, timer: Input) -> float | None:
        if timer is In.TIMER_E:
            if self.state is St.PROCEEDING and not self.reliable:
                # 17.1.2.2: once the server is known alive, retransmit every T2.
                self._interval = self.timers.t2
                return self._interval
            return self._backoff(self.timers.t2)
        if timer is In.TIMER_F:
            return self.timers.timeout
        return self.timers.timer_k(self.reliable)


# RFC 3261 figure 8.
NON_INVITE_SERVER: Final[Table] = {
    (St.TRYING, In.PROVISIONAL): Transition(St.PROCEEDING, (Do.SEND,)),
    (St.PROCEEDING, In.PROVISIONAL): Transition(St.PROCEEDING, (Do.SEND,)),
    **rows((St.TRYING, St.PROCEEDING), _FINAL, Transition(St.COMPLETED, (Do.SEND,), (In.TIMER_J,))),
    # Trying absorbs retransmissions (no row); later states answer them
    # with the last response sent.
    (St.PROCEEDING, In.REQUEST): Transition(St.PROCEEDING, (Do.RETRANSMIT,)),
    (St.COMPLETED, In.REQUEST): Transition(St.COMPLETED, (Do.RETRANSMIT,)),
    **rows(
        (St.PROCEEDING, St.COMPLETED),
        (In.TRANSPORT_ERROR,),
        Transition(St.TERMINATED, (Do.FAIL_TRANSPORT,)),
    ),
    (St.COMPLETED, In.TIMER_J): Transition(St.TERMINATED),
}


class NonInviteServerTransaction(ServerTransaction):
    """Answers a non-INVITE request: Timer J absorbs retransmissions."""

    TABLE = NON_INVITE_SERVER
    _INITIAL = St.TRYING

    __slots__ = ()

    def _duration(self, timer: Input) -> float | None:
        return self.timers.timer_j(self.reliable)

    def completed(self) -> CompletedServer | None:
        """All this transaction still has to do, as a small value, once that
        is only RFC 3261 17.2.2's Completed state over an unreliable
        transport: answer each retransmission of the request with the final
        response, until Timer J.  ``None`` in any other state (and on
        TCP/TLS, where Timer J is zero and the machine is already over).

        Most requests a phone receives end here, and Timer J keeps them 32 s:
        a driver that registers this value in place of the machine
        (:meth:`TransactionTable.retire`) holds a fraction of the memory for
        those seconds, and behaves the same (the machine would take no input
        but that retransmission and its timer).
        """
        if self.state is not St.COMPLETED or self.reliable or self._last is None:
            return None
        deadline = self.next_deadline()
        if deadline is None:
            return None
        return CompletedServer(self.key, self._last, deadline)


class CompletedServer:
    """A non-INVITE server transaction in Completed over UDP, reduced to its
    key, the bytes of its final response and the deadline of Timer J (see
    :meth:`NonInviteServerTransaction.completed`).

    A value: nothing changes it.  The driver answers a retransmission with
    :attr:`response` and forgets it at :attr:`expires`
    (:meth:`TransactionTable.remove_completed`); as every such value of an
    endpoint lasts the same Timer J, they expire in the order they were made.
    """

    __slots__ = ("expires", "key", "response")

    def __init__(self, key: ServerKey, response: bytes, expires: float) -> None:
        #: What the request's retransmissions match on.
        self.key = key
        #: The final response, byte for byte as first sent.
        self.response = response
        #: When Timer J ends it (the driver's clock, as ``now`` everywhere).
        self.expires = expires

    def answer(self, now: float) -> bytes | None:
        """What a retransmission of the request arriving at ``now`` is sent:
        the final response, or ``None`` once Timer J has run out (the
        transaction is over and the request would be a new one)."""
        return self.response if now < self.expires else None


# RFC 3261 figure 5 with RFC 6026's Accepted state.
INVITE_CLIENT: Final[Table] = {
    (St.CALLING, In.TIMER_A): Transition(St.CALLING, (Do.RETRANSMIT,), (In.TIMER_A,)),
    (St.CALLING, In.TIMER_B): Transition(St.TERMINATED, (Do.TIME_OUT,)),
    **rows(
        (St.CALLING, St.PROCEEDING),
        (In.PROVISIONAL,),
        Transition(St.PROCEEDING, (Do.PASS_UP,)),
    ),
    **rows(
        (St.CALLING, St.PROCEEDING),
        (In.SUCCESS,),
        Transition(St.ACCEPTED, (Do.PASS_UP,), (In.TIMER_M,)),
    ),
    **rows(
        (St.CALLING, St.PROCEEDING),
        (In.FAILURE,),
        Transition(St.COMPLETED, (Do.SEND_ACK, Do.PASS_UP), (In.TIMER_D,)),
    ),
    **rows(
        (St.CALLING, St.COMPLETED),
        (In.TRANSPORT_ERROR,),
        Transition(St.TERMINATED, (Do.FAIL_TRANSPORT,)),
    ),
    # A retransmitted failure: the ACK was lost, send it again; the TU knows.
    (St.COMPLETED, In.FAILURE): Transition(St.COMPLETED, (Do.SEND_ACK,)),
    (St.COMPLETED, In.TIMER_D): Transition(St.TERMINATED),
    # Every 2xx reaches the TU (retransmissions and forks): the dialog ACKs it.
    (St.ACCEPTED, In.SUCCESS): Transition(St.ACCEPTED, (Do.PASS_UP,)),
    (St.ACCEPTED, In.TIMER_M): Transition(St.TERMINATED),
}


class InviteClientTransaction(ClientTransaction):
    """Sends an INVITE: Timers A, B, D, M; ACKs failure responses itself."""

    TABLE = INVITE_CLIENT
    _INITIAL = St.CALLING
    _START = (In.TIMER_A, In.TIMER_B)

    __slots__ = ("_ack",)

    def __init__(
        self, request: Request, now: float, *, reliable: bool, timers: Timers = DEFAULT_TIMERS
    ) -> None:
        if request.method != "INVITE":
            raise TransactionError(f"{request.method} cannot use an INVITE transaction")
        self._ack: bytes | None = None
        super().__init__(request, now, reliable=reliable, timers=timers)

    def _duration(self, timer: Input) -> float | None:
        if timer is In.TIMER_A:
            return self._backoff(None)  # 17.1.1.2: A doubles without a cap
        if timer is In.TIMER_D:
            return self.timers.timer_d(self.reliable)
        return self.timers.timeout  # B, M

    def _act(self, action: Action, inp: Input, msg: Message | None) -> None:
        if action is not Do.SEND_ACK:
            super()._act(action, inp, msg)
            return
        assert isinstance(msg, Response)
        if self._ack is None:
            # Built once: every retransmission of the failure gets the same
            # ACK (and the request is let go right after this first one).
            assert self.request is not None
            self._ack = bytes(make_ack(self.request, msg))
        self._outbox.append(self._ack)


# RFC 6026 figure 7.
INVITE_SERVER: Final[Table] = {
    (St.PROCEEDING, In.PROVISIONAL): Transition(St.PROCEEDING, (Do.SEND,)),
    (St.PROCEEDING, In.SUCCESS): Transition(St.ACCEPTED, (Do.SEND,), (In.TIMER_L,)),
    (St.PROCEEDING, In.FAILURE): Transition(St.COMPLETED, (Do.SEND,), (In.TIMER_G, In.TIMER_H)),
    # The last provisional, if any, answers a retransmitted INVITE.
    (St.PROCEEDING, In.REQUEST): Transition(St.PROCEEDING, (Do.RETRANSMIT,)),
    (St.COMPLETED, In.REQUEST): Transition(St.COMPLETED, (Do.RETRANSMIT,)),
    (St.COMPLETED, In.TIMER_G): Transition(St.COMPLETED, (Do.RETRANSMIT,), (In.TIMER_G,)),
    (St.COMPLETED, In.TIMER_H): Transition(St.TERMINATED, (Do.TIME_OUT,)),
    (St.COMPLETED, In.ACK): Transition(St.CONFIRMED, (), (In.TIMER_I,)),
    # Confirmed absorbs ACK and INVITE retransmissions (no row) until I.
    (St.CONFIRMED, In.TIMER_I): Transition(St.TERMINATED),
    # Accepted absorbs INVITE retransmissions (no row): the TU resends the
    # 2xx itself, through send_response, until its ACK comes or L fires.
    (St.ACCEPTED, In.SUCCESS): Transition(St.ACCEPTED, (Do.SEND,)),
    (St.ACCEPTED, In.ACK): Transition(St.ACCEPTED, (Do.PASS_UP,)),
    (St.ACCEPTED, In.TIMER_L): Transition(St.TERMINATED),
    # RFC 6026 informs the TU of transport errors but keeps the transaction:
    # a retransmitted INVITE may yet arrive over a working path.
    **{
        (s, In.TRANSPORT_ERROR): Transition(s, (Do.FAIL_TRANSPORT,))
        for s in (St.PROCEEDING, St.COMPLETED, St.ACCEPTED)
    },
}


class InviteServerTransaction(ServerTransaction):
    """Answers an INVITE: Timers G, H, I for failures, L after a 2xx."""

    TABLE = INVITE_SERVER
    _INITIAL = St.PROCEEDING

    __slots__ = ("response_to_tag",)

    def __init__(
        self, request: Request, *, reliable: bool, timers: Timers = DEFAULT_TIMERS
    ) -> None:
        if request.method != "INVITE":
            raise TransactionError(f"{request.method} cannot use an INVITE transaction")
        super().__init__(request, reliable=reliable, timers=timers)
        #: To tag of the final response sent: an RFC 2543 ACK must carry it.
        self.response_to_tag: str | None = None

    def send_response(self, response: Response, now: float) -> None:
        tag = response.to.tag if response.status_code >= 200 else None
        super().send_response(response, now)
        if response.status_code >= 200:
            self.response_to_tag = tag

    def _request_input(self, request: Request) -> Input:
        if request.method == "ACK":
            return In.ACK
        return super()._request_input(request)

    def _duration(self, timer: Input) -> float | None:
        if timer is In.TIMER_G:
            return self._backoff(self.timers.t2)
        if timer is In.TIMER_I:
            return self.timers.timer_i(self.reliable)
        return self.timers.timeout  # H, L


Transaction = ClientTransaction | ServerTransaction


def new_client_transaction(
    request: Request, now: float, *, reliable: bool, timers: Timers = DEFAULT_TIMERS
) -> ClientTransaction:
    """The client transaction ``request`` needs, its request already queued."""
    cls = InviteClientTransaction if request.method == "INVITE" else NonInviteClientTransaction
    return cls(request, now, reliable=reliable, timers=timers)


def new_server_transaction(
    request: Request, *, reliable: bool, timers: Timers = DEFAULT_TIMERS
) -> ServerTransaction:
    """The server transaction for a request no existing one matched.

    An unmatched ACK (the ACK of a 2xx) has none: hand it to the TU directly;
    this raises :class:`TransactionError` for it.
    """
    if request.method == "ACK":
        raise TransactionError("an ACK that matches no transaction belongs to the TU")
    if request.method == "INVITE":
        return InviteServerTransaction(request, reliable=reliable, timers=timers)
    return NonInviteServerTransaction(request, reliable=reliable, timers=timers)


# ------------------------------------------------------------------ registry


class TransactionTable:
    """The live transactions of an endpoint, found by matching key.

    Lookups never raise: a message whose Via or CSeq cannot be read matches
    nothing (a server validates requests and answers 400 elsewhere).
    Retired server transactions (:meth:`retire`) are kept apart, as
    :class:`CompletedServer` values, and found with :meth:`match_completed`.
    """

    __slots__ = ("_clients", "_completed", "_servers")

    def __init__(self) -> None:
        self._clients: dict[ClientKey, ClientTransaction] = {}
        self._servers: dict[ServerKey, ServerTransaction] = {}
        self._completed: dict[ServerKey, CompletedServer] = {}

    def __len__(self) -> int:
        return len(self._clients) + len(self._servers) + len(self._completed)

    def add(self, tx: Transaction) -> None:
        """Register ``tx``; a live transaction with the same key is an error
        (a reused branch), a terminated one is replaced."""
        if isinstance(tx, ClientTransaction):
            old_client = self._clients.get(tx.key)
            if old_client is not None and not old_client.terminated:
                raise TransactionError(f"a client transaction with branch {tx.key.branch} exists")
            self._clients[tx.key] = tx
        else:
            old_server = self._servers.get(tx.key)
            if (old_server is not None and not old_server.terminated) or tx.key in self._completed:
                raise TransactionError("a server transaction for this request exists")
            self._servers[tx.key] = tx

    def remove(self, tx: Transaction) -> None:
        """Forget ``tx`` (no-op if it is not the one registered under its key)."""
        if isinstance(tx, ClientTransaction):
            if self._clients.get(tx.key) is tx:
                del self._clients[tx.key]
        elif self._servers.get(tx.key) is tx:
            del self._servers[tx.key]

    def retire(self, tx: NonInviteServerTransaction) -> CompletedServer | None:
        """Replace ``tx`` by :meth:`~NonInviteServerTransaction.completed`'s
        value, if it has one and ``tx`` is the transaction registered under
        its key; returns the value (``None``: nothing changed).  The driver
        drops the machine and sends the value's response to retransmissions."""
        if self._servers.get(tx.key) is not tx:
            return None
        record = tx.completed()
        if record is not None:
            del self._servers[tx.key]
            self._completed[record.key] = record
        return record

    def remove_completed(self, record: CompletedServer) -> None:
        """Forget a retired transaction (at :attr:`CompletedServer.expires`)."""
        if self._completed.get(record.key) is record:
            del self._completed[record.key]

    def remove_terminated(self) -> int:
        """Forget every terminated transaction; returns how many went.

        For drivers that sweep periodically instead of reacting to
        :class:`Terminated`.
        """
        before = len(self)
        self._clients = {k: t for k, t in self._clients.items() if not t.terminated}
        self._servers = {k: t for k, t in self._servers.items() if not t.terminated}
        return before - len(self)

    def match_response(self, response: Response) -> ClientTransaction | None:
        """The client transaction ``response`` answers (17.1.3), if any."""
        try:
            key = client_key(response)
        except SipError:
            return None
        return None if key is None else self._clients.get(key)

    def match_request(self, request: Request) -> ServerTransaction | None:
        """The server transaction ``request`` belongs to (17.2.3), if any.

        ``None`` for a new request, and for an ACK that is not for a failure
        response of ours (the ACK of a 2xx, which goes to the TU).
        """
        try:
            key = server_key(request)
            to_tag = request.to.tag if request.method == "ACK" else None
        except SipError:
            return None
        tx = self._servers.get(key)
        if request.method != "ACK":
            return tx
        if tx is None and isinstance(key, LegacyKey):
            # The INVITE of an RFC 2543 ACK had no To tag; our response added one.
            tx = self._servers.get(replace(key, to_tag=None))
        if not isinstance(tx, InviteServerTransaction):
            return None
        if isinstance(key, LegacyKey) and tx.response_to_tag != to_tag:
            return None
        return tx

    def match_completed(self, request: Request) -> CompletedServer | None:
        """The retired transaction ``request`` is a retransmission for, if
        any (17.2.3, as :meth:`match_request`; never for an ACK, which only
        an INVITE's transaction takes)."""
        if not self._completed or request.method == "ACK":
            return None
        try:
            key = server_key(request)  # computed once per message: no second parse
        except SipError:
            return None
        return self._completed.get(key)

    def find_cancel_target(self, cancel: Request) -> InviteServerTransaction | None:
        """The INVITE server transaction ``cancel`` asks to cancel (RFC 3261 9.2)."""
        try:
            tx = self._servers.get(cancel_target_key(cancel))
        except SipError:
            return None
        return tx if isinstance(tx, InviteServerTransaction) else None
