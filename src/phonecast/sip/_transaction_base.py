"""The vocabulary, the matching keys and the engine of the transaction layer.

:mod:`phonecast.sip.transaction` holds the four RFC 3261 section 17 state
machines as tables and explains how they are driven; this module holds what
they share: the matching keys of RFC 3261 17.1.3 and 17.2.3 (and the branch
that makes them unique), the timer values (:class:`Timers`), the events a
transaction hands to its transaction user, the states, inputs and actions the
tables are written in, and :class:`Machine`, the small interpreter that runs
a table.  Everything here is re-exported by :mod:`phonecast.sip.transaction`.

Two rules decide what lives here: nothing here knows which of the four
machines it is running (no INVITE or non-INVITE transition), and nothing here
reads a clock (every time is a ``now`` argument or a deadline derived from
one).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Final, NamedTuple

from phonecast.sip._random import token_hex
from phonecast.sip.errors import TransactionError
from phonecast.sip.headers import Via
from phonecast.sip.message import Message, Request, Response
from phonecast.sip.uri import Uri

# -------------------------------------------------------------- matching keys

#: RFC 3261 8.1.1.7: a branch starting with this was built to be unique.
MAGIC_COOKIE: Final = "z9hG4bK"


def new_branch() -> str:
    """A fresh Via branch: the magic cookie and 96 random bits.

    From the OS CSPRNG (:mod:`phonecast.sip._random`), never ``random``: a
    guessable branch lets an off-path attacker forge responses that match
    our transactions.
    """
    return MAGIC_COOKIE + token_hex(12)


def is_rfc3261_branch(branch: str | None) -> bool:
    """True if ``branch`` can identify a transaction on its own.

    A bare magic cookie (RFC 4475 3.2.1, ``badbranch``) claims RFC 3261 but
    identifies nothing, so it gets RFC 2543 matching too.
    """
    return (
        branch is not None and branch.startswith(MAGIC_COOKIE) and len(branch) > len(MAGIC_COOKIE)
    )


class ClientKey(NamedTuple):
    """What a response shares with the request of its client transaction (17.1.3).

    Tuples, not dataclasses: keys are hashed on every message, and a tuple
    hashes in C (a frozen dataclass calls generated Python code)."""

    branch: str
    method: str


class BranchKey(NamedTuple):
    """RFC 3261 server matching (17.2.3): branch, sent-by and method, with
    ACK counted as INVITE."""

    branch: str
    host: str
    port: int | None
    method: str


@dataclass(frozen=True, slots=True)
class LegacyKey:
    """RFC 2543 server matching, for requests without a usable branch.

    ``cseq`` is the number only and ``method`` counts ACK as INVITE, so the
    ACK of a failure finds its INVITE; RFC 3261 17.2.3 also wants the ACK's
    To tag to be that of our response, which :class:`TransactionTable` checks.
    """

    request_uri: Uri
    to_tag: str | None
    from_tag: str | None
    call_id: str
    cseq: int
    method: str
    via: Via


ServerKey = BranchKey | LegacyKey

#: Makes a key tuple without the Python ``__new__`` that NamedTuple generates
#: (an interpreted call on every message, even in the compiled build).
_new_tuple: Any = tuple.__new__


def client_key(message: Message) -> ClientKey | None:
    """Key of a request we send, or of a response to match against it.

    ``None`` when the top Via has no branch (no client transaction of ours
    sends such a request).  Raises :class:`HeaderError` when Via or CSeq is
    missing or broken.  Computed once per message (a response is keyed to be
    matched, then checked by the transaction it matched).
    """
    return message.derived(_CLIENT_KEY, _client_key)


_CLIENT_KEY: Final = "via:client-key"  # "via...": it depends on the top Via


def _client_key(message: Message) -> ClientKey | None:
    branch = message.top_via.branch
    if branch is None:
        return None
    method = message.method if isinstance(message, Request) else message.cseq.method
    key: ClientKey = _new_tuple(ClientKey, (branch, method))
    return key


def server_key(request: Request) -> ServerKey:
    """Key of a request received, shared by its retransmissions and, for an
    INVITE, by the ACK of a failure response (but never by a CANCEL, which is
    a transaction of its own).  Raises :class:`HeaderError` on a broken Via,
    and for RFC 2543 requests on broken From/To/Call-ID/CSeq.

    Computed once per message (matching and the new transaction both ask)."""
    return request.derived(_SERVER_KEY, _server_key)


#: Cache name of the key: it starts with "via" because the key depends on the
#: top Via, and a copy with another top Via drops "via..." entries.
_SERVER_KEY: Final = "via:server-key"


def _server_key(request: Request) -> ServerKey:
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    if via.branch is not None and is_rfc3261_branch(via.branch):
        key: BranchKey = _new_tuple(BranchKey, (via.branch, via.host.lower(), via.port, method))
        return key
    normal_via = replace(
        via, host=via.host.lower(), params=tuple((k.lower(), v) for k, v in via.params)
    )
    return LegacyKey(
        request.uri,
        request.to.tag,
        request.from_.tag,
        request.call_id,
        request.cseq.seq,
        method,
        normal_via,
    )


def cancel_target_key(cancel: Request) -> ServerKey:
    """Key of the INVITE server transaction a CANCEL is for (RFC 3261 9.2)."""
    key = server_key(cancel)
    if isinstance(key, BranchKey):
        return key._replace(method="INVITE")
    return replace(key, method="INVITE")


# ---------------------------------------------------------------- timer values


@dataclass(frozen=True, slots=True)
class Timers:
    """RFC 3261 timer values (Table 4 of appendix A), in seconds.

    Only T1, T2, T4 and the floor of Timer D are configurable: every other
    timer is derived from them as the RFC prescribes, so a deployment that
    raises T1 for a slow network (RFC 3261 17.1.1.1 allows it) gets
    consistently longer timeouts instead of a mix of old and new values.
    The ``timer_*`` methods that take ``reliable`` return 0 on TCP/TLS: those
    timers only exist to absorb retransmissions, and a reliable transport has
    none.
    """

    #: RTT estimate; the first retransmission interval.
    t1: float = 0.5
    #: Cap on the retransmission interval of non-INVITE requests and of
    #: INVITE final responses.
    t2: float = 4.0
    #: How long a message may stay in the network.
    t4: float = 5.0
    #: RFC 3261 17.1.1.2: Timer D is "at least 32 s" on unreliable transports.
    d_min: float = 32.0

    def __post_init__(self) -> None:
        if not (self.t1 > 0 and self.t2 >= self.t1 and self.t4 >= 0 and self.d_min >= 0):
            raise ValueError(f"inconsistent SIP timer values: {self}")

    @property
    def timeout(self) -> float:
        """64*T1: Timers B, F, H, L, M and (unreliable) J."""
        return 64 * self.t1

    def timer_d(self, reliable: bool) -> float:
        """Wait for response retransmissions in the INVITE client's Completed state.

        Never shorter than the server's Timer H (64*T1), which bounds how long
        the final response can be retransmitted at us.
        """
        return 0.0 if reliable else max(self.d_min, self.timeout)

    def timer_i(self, reliable: bool) -> float:
        """Wait for ACK retransmissions in the INVITE server's Confirmed state."""
        return 0.0 if reliable else self.t4

    def timer_j(self, reliable: bool) -> float:
        """Wait for request retransmissions in the non-INVITE server's Completed state."""
        return 0.0 if reliable else self.timeout

    def timer_k(self, reliable: bool) -> float:
        """Wait for response retransmissions in the non-INVITE client's Completed state."""
        return 0.0 if reliable else self.t4


DEFAULT_TIMERS: Final = Timers()

# ------------------------------------------------------------- events to the TU


@dataclass(frozen=True, slots=True, init=False)
class RequestReceived:
    """A request the TU must handle: the one that created a server transaction,
    or an ACK that RFC 6026 says reaches the TU (Accepted state)."""

    #: The request as received.
    request: Request

    def __init__(self, request: Request) -> None:
        object.__setattr__(self, "request", request)  # see headers.Via.__init__


@dataclass(frozen=True, slots=True, init=False)
class ResponseReceived:
    """A response the TU must see (retransmissions are absorbed before this)."""

    #: The response as received.
    response: Response

    def __init__(self, response: Response) -> None:
        object.__setattr__(self, "response", response)  # see headers.Via.__init__


@dataclass(frozen=True, slots=True)
class TimedOut:
    """The peer never answered (Timer B or F) or never acknowledged (Timer H)."""

    #: Which timer fired: ``"B"``, ``"F"`` or ``"H"``.
    timer: str


@dataclass(frozen=True, slots=True)
class TransportFailed:
    """The endpoint reported that a message of this transaction could not be sent
    (RFC 3261 17.1.4, 17.2.4).  An event, not an exception: nothing is raised."""


@dataclass(frozen=True, slots=True)
class Terminated:
    """The transaction reached Terminated: the endpoint should forget it."""


TransactionEvent = RequestReceived | ResponseReceived | TimedOut | TransportFailed | Terminated

# Events without fields are all equal: one of each serves every transaction
# (their generated __init__ stays interpreted in the compiled build).
_TERMINATED: Final = Terminated()
_TRANSPORT_FAILED: Final = TransportFailed()

# ----------------------------------------------------- what the tables talk about


class State(enum.Enum):
    """The states of RFC 3261 figures 5-8 and RFC 6026's Accepted."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"

    # Members are singletons: identity hashing is correct, and it runs in C
    # (Enum's own __hash__ is Python code, paid on every table lookup).
    __hash__ = object.__hash__


class Input(enum.Enum):
    """Everything that can happen to a transaction.

    Responses are split by class because the machines react by class; for a
    client they come from the network, for a server from the TU.
    """

    PROVISIONAL = "1xx"
    SUCCESS = "2xx"
    FAILURE = "3xx-6xx"
    REQUEST = "request retransmission"
    ACK = "ACK"
    TRANSPORT_ERROR = "transport error"
    TIMER_A = "A"
    TIMER_B = "B"
    TIMER_D = "D"
    TIMER_E = "E"
    TIMER_F = "F"
    TIMER_G = "G"
    TIMER_H = "H"
    TIMER_I = "I"
    TIMER_J = "J"
    TIMER_K = "K"
    TIMER_L = "L"
    TIMER_M = "M"

    __hash__ = object.__hash__  # see State


#: Timers that end a transaction with a failure fire before a retransmission
#: timer due at the same instant: there is no point retransmitting into a
#: transaction that is timing out.
_TIMEOUTS: Final = frozenset({Input.TIMER_B, Input.TIMER_F, Input.TIMER_H})


class Action(enum.Enum):
    """What a transition does besides changing state and starting timers."""

    #: Hand the message in hand to the TU (RequestReceived / ResponseReceived).
    PASS_UP = "pass up"
    #: Transmit the response the TU gave, and remember it for RETRANSMIT.
    SEND = "send"
    #: Transmit again the last message this transaction sent.
    RETRANSMIT = "retransmit"
    #: Transmit the ACK for the non-2xx final response in hand (INVITE client).
    SEND_ACK = "send ACK"
    #: Tell the TU the transaction timed out.
    TIME_OUT = "time out"
    #: Tell the TU the transport failed.
    FAIL_TRANSPORT = "fail transport"


@dataclass(frozen=True, slots=True)
class Transition:
    """One row of a state table: where to go, what to do, which timers to start.

    Timers the new state has no row for are cancelled on entry, so a table
    never lists what to stop: a timer is alive exactly in the states that
    react to it.
    """

    state: State
    actions: tuple[Action, ...] = ()
    start: tuple[Input, ...] = ()


Table = Mapping[tuple[State, Input], Transition]


def rows(
    states: tuple[State, ...], inputs: tuple[Input, ...], transition: Transition
) -> dict[tuple[State, Input], Transition]:
    """The same transition for several (state, input) pairs, to keep tables short."""
    return {(s, i): transition for s in states for i in inputs}


def response_input(status_code: int) -> Input:
    """The input a response of this class is to a state machine."""
    if status_code < 200:
        return Input.PROVISIONAL
    if status_code < 300:
        return Input.SUCCESS
    return Input.FAILURE


# ------------------------------------------------------------------- the engine


class Machine:
    """Runs one transaction's table; subclasses supply the table and the details.

    A subclass provides ``TABLE``, :meth:`_duration` (how long each of its
    timers runs, including retransmission back-off) and, for actions that
    need to know the machine, an override of :meth:`_act`.
    """

    TABLE: ClassVar[Table]

    __slots__ = (
        "_deadlines",
        "_events",
        "_interval",
        "_last",
        "_outbox",
        "reliable",
        "state",
        "timers",
    )

    def __init__(self, state: State, *, reliable: bool, timers: Timers) -> None:
        #: Current state (read it; only the machine changes it).
        self.state = state
        #: True on TCP/TLS: no retransmissions, zero-length absorb timers.
        self.reliable = reliable
        #: The timer values in force.
        self.timers = timers
        self._deadlines: dict[Input, float] = {}
        self._outbox: list[bytes] = []
        #: Events for the TU, oldest first: at most a few, taken at once by
        #: the driver.  A list, not a deque: an empty deque is ~600 bytes,
        #: and a UDP server transaction lives 32 s (Timer J) after its work.
        self._events: list[TransactionEvent] = []
        #: The last message sent: what RETRANSMIT repeats, byte for byte.
        self._last: bytes | None = None
        #: The retransmission interval last armed (0: not yet armed).
        self._interval = 0.0

    # -- what the driver calls
    @property
    def terminated(self) -> bool:
        """True once in Terminated: the transaction will never act again."""
        return self.state is State.TERMINATED

    def next_deadline(self) -> float | None:
        """The earliest armed timer, absolute on the caller's clock, or ``None``.

        Call :meth:`handle_timer` at (or after) that time.  Calling it early
        is harmless, so a driver with lazily cancelled timers needs no care.
        """
        deadlines = self._deadlines
        if not deadlines:
            return None
        # The driver asks after every step, and one timer is the usual case:
        # min() with a default costs more than the transaction's own step.
        if len(deadlines) == 1:
            for deadline in deadlines.values():
                return deadline
        return min(deadlines.values())

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``, in deadline order."""
        self._fire_due(now)

    def handle_transport_error(self, now: float) -> None:
        """The endpoint could not send this transaction's last message."""
        self._input(Input.TRANSPORT_ERROR, now)

    def datagrams_to_send(self) -> list[bytes]:
        """Take the messages to transmit, oldest first, as wire bytes.

        Bytes rather than messages: a retransmission must repeat the first
        transmission exactly, and serialising once is cheaper than per send.
        Where to send them is the endpoint's business (the flow it chose for
        a client transaction, the flow the request came on for a server one).
        """
        out, self._outbox = self._outbox, []
        return out

    def next_event(self) -> TransactionEvent | None:
        """Take the next event for the TU, or ``None`` when there is none."""
        return self._events.pop(0) if self._events else None

    # -- the interpreter
    def _input(
        self, inp: Input, now: float, msg: Message | None = None, *, tu: bool = False
    ) -> None:
        """Feed one input at ``now``.

        Timers already due fire first, so that an input reported late (the
        driver had not yet serviced its timer heap) meets the state the
        transaction is really in by then; zero-length timers started by the
        input fire straight after it (reliable transports terminate at once).
        """
        self._fire_due(now)
        self._step(inp, now, now, msg, tu)
        self._fire_due(now)

    def _fire_due(self, now: float) -> None:
        deadlines = self._deadlines
        while deadlines:
            # Nearly always nothing is due (this runs before and after every
            # input): a plain look over the one or two values says so more
            # cheaply than min(), and needs no key function.
            for deadline in deadlines.values():
                if deadline <= now:
                    break
            else:
                return
            timer = min(deadlines, key=lambda t: (deadlines[t], t not in _TIMEOUTS))
            due = deadlines.pop(timer)
            # A timer fires "at" its deadline: back-off counts from there, so
            # the schedule does not drift with the driver's lateness.
            self._step(timer, due, now, None, False)

    def _step(self, inp: Input, at: float, now: float, msg: Message | None, tu: bool) -> None:
        old = self.state
        transition = self.TABLE.get((old, inp))
        if transition is None:
            if tu:
                raise TransactionError(
                    f"{type(self).__name__} in state {old.value} cannot take a {inp.value} response"
                )
            return  # absorbed: a stray or late message, a stale timer
        new = transition.state
        if new is not old:
            self.state = new
            for timer in [t for t in self._deadlines if (new, t) not in self.TABLE]:
                del self._deadlines[timer]
        for action in transition.actions:
            self._act(action, inp, msg)
        for timer in transition.start:
            self._arm(timer, at, now)
        if new is State.TERMINATED and old is not State.TERMINATED:
            self._deadlines.clear()
            self._events.append(_TERMINATED)

    def _arm(self, timer: Input, at: float, now: float) -> None:
        duration = self._duration(timer)
        if duration is None:
            return
        deadline = at + duration
        if duration > 0 and deadline <= now:
            # The driver was so late that the next period is already over:
            # send one retransmission now rather than a burst of catch-ups.
            deadline = now + duration
        self._deadlines[timer] = deadline

    def _backoff(self, cap: float | None) -> float | None:
        """Next retransmission interval: T1, then doubling, capped at ``cap``.

        ``None`` on reliable transports, which never retransmit.
        """
        if self.reliable:
            return None
        t1 = self.timers.t1
        nxt = t1 if self._interval == 0 else 2 * self._interval
        self._interval = nxt if cap is None else min(nxt, cap)
        return self._interval

    def _duration(self, timer: Input) -> float | None:
        """How long ``timer`` runs when started now (None: do not start it)."""
        raise NotImplementedError

    def _send(self, data: bytes) -> None:
        self._outbox.append(data)
        self._last = data

    def _act(self, action: Action, inp: Input, msg: Message | None) -> None:
        if action is Action.RETRANSMIT:
            if self._last is not None:
                self._outbox.append(self._last)
        elif action is Action.PASS_UP:
            if isinstance(msg, Request):
                self._events.append(RequestReceived(msg))
            elif isinstance(msg, Response):
                self._events.append(ResponseReceived(msg))
        elif action is Action.SEND:
            assert msg is not None
            self._send(bytes(msg))
        elif action is Action.TIME_OUT:
            self._events.append(TimedOut(inp.value))
        elif action is Action.FAIL_TRANSPORT:
            self._events.append(_TRANSPORT_FAILED)
        else:
            raise AssertionError(f"{type(self).__name__} has no {action}")
