"""The calls of every phone on a host, driven through the endpoint.

:class:`~phonecast.phone.calls.CallAgent` decides what a line says and is
sans-IO; what needs the network and the clock lives here:

- the ring timer: the 180 goes at once, the 200 at the deadline the agent
  gave the INVITE, on the endpoint's timer wheel (no task per call);
- CANCEL, matched against the INVITE server transactions (RFC 3261 9.2):
  one still unanswered gets 200 to the CANCEL and 487 to itself; one already
  answered finally gets 200 to the CANCEL and nothing else; a CANCEL that
  matches no live transaction gets 481.  An INVITE is remembered with its
  server handle until that transaction can no longer exist (64*T1 after its
  final response, plus T4 for the ACK of a failure), so "matches" means what
  the transaction layer means by it;
- the 2xx retransmission until the ACK (RFC 3261 13.3.1.4: the transaction
  does not, a 2xx ends it), and the end of a call whose 2xx is never
  acknowledged.

Whichever way a call ends (BYE, CANCEL, no ACK), the host is told
(``on_call_over``), so that a phone left idle runs what priority 1 kept for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from phonecast.net.endpoint import ServerHandle, SipEndpoint
from phonecast.net.timers import Timer
from phonecast.phone.calls import CallAgent, Ringing
from phonecast.phone.events import EventLog
from phonecast.sip import (
    DEFAULT_TIMERS,
    Request,
    Response,
    SipError,
    Timers,
    make_response,
    new_tag,
)
from phonecast.sip.dialog import DialogId
from phonecast.sip.transaction import (
    InviteServerTransaction,
    ServerKey,
    cancel_target_key,
    server_key,
)

if TYPE_CHECKING:
    from phonecast.phone.emulator import LineState, PhoneState

#: How the host sends a response through a handle (and logs it).
Respond = Callable[["LineState", ServerHandle, Response], None]


@dataclass(slots=True)
class _Invite:
    """An INVITE server transaction, for the CANCEL that may name it."""

    line: LineState
    handle: ServerHandle
    #: While the phone rings for it (no final response yet).
    ringing: Ringing | None = None
    #: The ring timer while it rings; then the timer that forgets it.
    timer: Timer | None = None


class CallDriver:
    """INVITE, CANCEL, BYE and ACK for all the phones of one host."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        respond: Respond,
        events: EventLog,
        timers: Timers = DEFAULT_TIMERS,
        on_call_over: Callable[[PhoneState], None] | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._on_call_over = on_call_over
        self._respond = respond
        self._events = events
        self._timers = timers
        self._invites: dict[ServerKey, _Invite] = {}
        #: 2xx to INVITEs still being retransmitted, by dialog id, until ACK.
        self._unacked: dict[DialogId, Timer] = {}

    def close(self) -> None:
        """Cancel every timer (the host is stopping)."""
        for invite in self._invites.values():
            if invite.timer is not None:
                invite.timer.cancel()
        self._invites.clear()
        for timer in self._unacked.values():
            timer.cancel()
        self._unacked.clear()

    # ---------------------------------------------------------------- INVITE
    def on_invite(self, line: LineState, request: Request, handle: ServerHandle) -> None:
        """Answer an INVITE (a retransmission never comes here: its
        transaction absorbs it and resends the last response)."""
        reply = line.phone.calls.on_invite(request, self._endpoint.now())
        for response in reply.responses:
            self._respond(line, handle, response)
        invite = _Invite(line, handle, reply.ringing)
        try:
            key = server_key(request)
        except SipError:
            return  # unreachable for a validated request; then no CANCEL can match
        self._invites[key] = invite
        if reply.ringing is not None:
            self._call_event(line, request, "ringing")
            invite.timer = self._endpoint.call_at(
                reply.ringing.answer_at, lambda now: self._answer(key, invite, now)
            )
            return
        final = reply.responses[-1]
        if final.is_success:
            self._retransmit_2xx(line, handle, final)
        self._forget_later(key, invite)

    def _answer(self, key: ServerKey, invite: _Invite, now: float) -> None:
        """The ring time is over: send the 200 (unless it was cancelled)."""
        ring, invite.ringing, invite.timer = invite.ringing, None, None
        if ring is None:
            return
        ok = invite.line.phone.calls.answer(ring, now)
        if ok is not None:
            self._respond(invite.line, invite.handle, ok)
            self._call_event(invite.line, ring.invite, "answered")
            self._retransmit_2xx(invite.line, invite.handle, ok)
        self._forget_later(key, invite)

    def _stop_ringing(self, key: ServerKey, invite: _Invite, why: str) -> None:
        """End the ringing of ``invite``: 487 to it (RFC 3261 9.2, 15.1.2)."""
        ring, invite.ringing = invite.ringing, None
        if invite.timer is not None:
            invite.timer.cancel()
            invite.timer = None
        if ring is not None:
            terminated = invite.line.phone.calls.cancel(ring)
            if terminated is not None:
                self._respond(invite.line, invite.handle, terminated)
                self._call_event(invite.line, ring.invite, "cancelled", reason=why)
        self._forget_later(key, invite)

    def _forget_later(self, key: ServerKey, invite: _Invite) -> None:
        """Forget ``invite`` once its transaction cannot be alive (Timer H or
        L, 64*T1 after the final response, then T4 of Timer I at most)."""
        timers = self._timers

        def forget(_now: float) -> None:
            if self._invites.get(key) is invite:
                del self._invites[key]

        deadline = self._endpoint.now() + timers.timeout + timers.t4
        invite.timer = self._endpoint.call_at(deadline, forget)

    # ---------------------------------------------------------------- CANCEL
    def on_cancel(self, line: LineState, request: Request, handle: ServerHandle) -> None:
        """RFC 3261 9.2: see the module docstring."""
        try:
            invite = self._invites.get(cancel_target_key(request))
        except SipError:
            invite = None
        tx = None if invite is None else invite.handle.tx
        if invite is None or not isinstance(tx, InviteServerTransaction) or tx.terminated:
            self._respond(
                line, handle, make_response(request, 481, to_tag=_tag_unless_tagged(request))
            )
            return
        ring = invite.ringing
        # The CANCEL's To tag is the one the INVITE's responses carry (9.2).
        tag = ring.dialog_id[1] if ring is not None else tx.response_to_tag
        self._respond(line, handle, make_response(request, 200, to_tag=tag))
        if ring is not None:
            self._stop_ringing(cancel_target_key(request), invite, "CANCEL")

    # ------------------------------------------------------------ BYE, ACK
    def on_bye(self, line: LineState, request: Request, handle: ServerHandle) -> None:
        """200 to a BYE (481 outside a dialog); in an early dialog the
        INVITE still ringing gets its 487 too (RFC 3261 15.1.2)."""
        calls = line.phone.calls
        ring = calls.ringing_for(request)
        response = calls.on_bye(request)
        self._respond(line, handle, response)
        if ring is None:
            if response.is_success:
                self._call_event(line, request, "ended", reason="BYE")
            return
        key = server_key(ring.invite)
        invite = self._invites.get(key)
        if invite is not None:
            self._stop_ringing(key, invite, "BYE")
        else:
            calls.cancel(ring)

    def on_ack(self, calls: CallAgent, request: Request) -> None:
        """The ACK of a 2xx: the call is up; the 2xx need not be sent again."""
        calls.on_ack(request)
        try:
            key = (request.call_id, request.to.tag or "", request.from_.tag or "")
        except SipError:
            return
        resending = self._unacked.pop(key, None)
        if resending is not None:
            resending.cancel()

    def _retransmit_2xx(self, line: LineState, handle: ServerHandle, ok: Response) -> None:
        """RFC 3261 13.3.1.4: the UAS core resends its 2xx at T1, doubling to
        T2, until the ACK arrives or 64*T1 passes; then the call is over.
        The resends ride on the endpoint's timer wheel."""
        endpoint = self._endpoint
        key = (ok.call_id, ok.to.tag or "", ok.from_.tag or "")
        timers = self._timers
        interval = timers.t1
        give_up_at = endpoint.now() + timers.timeout

        def resend(now: float) -> None:
            nonlocal interval
            if key not in self._unacked:
                return
            if now >= give_up_at:
                del self._unacked[key]
                line.phone.calls.end_unacknowledged(key)
                self._call_event(line, handle.request, "ended", reason="no ACK")
                return
            handle.respond(ok)
            self._events.emit(
                "retransmit", phone=line.phone.config.name, line=line.config.user, code=200
            )
            interval = min(interval * 2, timers.t2)
            self._unacked[key] = endpoint.call_at(min(now + interval, give_up_at), resend)

        self._unacked[key] = endpoint.call_at(endpoint.now() + interval, resend)

    def _call_event(self, line: LineState, request: Request, state: str, **why: str) -> None:
        """A ``call`` event: the call of ``request`` entered ``state``; the
        host is told when that state ends the call."""
        self._events.emit(
            "call",
            phone=line.phone.config.name,
            line=line.config.user,
            call_id=request.call_id,
            state=state,
            **why,
        )
        if state in _OVER and self._on_call_over is not None:
            self._on_call_over(line.phone)


#: The call states that end a call.
_OVER: Final = frozenset({"ended", "cancelled"})


def _tag_unless_tagged(request: Request) -> str | None:
    """A To tag for a final response outside any dialog (RFC 3261 8.2.6.2),
    unless the request carries one already."""
    return None if request.to.tag else new_tag()
