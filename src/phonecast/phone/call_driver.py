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
  acknowledged: the phone sends a BYE in its dialog, as 13.3.1.4 says the
  session SHOULD be ended;
- REFER (:mod:`phonecast.phone.transfer`): the 202, the call placed as a
  ``Dial:`` action places one (the host's ``on_call_placed``), then the
  NOTIFYs reporting it, the final one once the first is answered 2xx.

The phone sends its requests in a dialog (BYE, NOTIFY) as a client of the
endpoint, over the connection the dialog's request came on while it is
open, else to the first route or the remote target (see :func:`_next_hop`);
each one's outcome is a ``sent_request`` event (method, final code or none,
and why).

Whichever way a call ends (BYE, CANCEL, no ACK), the host is told
(``on_call_over``), so that a phone left idle runs what priority 1 kept for it.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from phonecast.net.endpoint import ServerHandle, SipEndpoint
from phonecast.net.timers import Timer
from phonecast.net.transport import Address, Flow
from phonecast.phone.calls import CallAgent, Ringing
from phonecast.phone.events import EventLog
from phonecast.phone.transfer import SIPFRAG, SUCCEEDED, TRYING, Transfer, notify_fields
from phonecast.sip import (
    DEFAULT_TIMERS,
    Dialog,
    Request,
    Response,
    SipError,
    SipUri,
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
    from phonecast.phone.state import LineState, PhoneState

#: How the host sends a response through a handle (and logs it).
Respond = Callable[["LineState", ServerHandle, Response], None]
#: What learns how a request the phone sent ended: its final response, or
#: ``None`` and why none came ("timeout", "transport", "closed").
Outcome = Callable[[Response | None, str], None]


@dataclass(slots=True)
class _Invite:
    """An INVITE server transaction, for the CANCEL that may name it."""

    line: LineState
    handle: ServerHandle
    #: While the phone rings for it (no final response yet).
    ringing: Ringing | None = None
    #: The ring timer while it rings; then the timer that forgets it.
    timer: Timer | None = None
    #: While it rings: when the 180 is sent again (RFC 3261 13.3.1.1).
    refresh: Timer | None = None


class CallDriver:
    """INVITE, CANCEL, BYE, ACK and REFER for all the phones of one host."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        respond: Respond,
        events: EventLog,
        timers: Timers = DEFAULT_TIMERS,
        on_call_over: Callable[[PhoneState], None] | None = None,
        on_call_placed: Callable[[PhoneState], None] | None = None,
    ) -> None:
        """``on_call_placed`` is told when a transfer makes the phone place a
        call (what the host does for a ``Dial:`` action)."""
        self._endpoint = endpoint
        self._on_call_over = on_call_over
        self._on_call_placed = on_call_placed
        self._respond = respond
        self._events = events
        self._timers = timers
        #: Seconds between the 180s of a long ring (RFC 3261 13.3.1.1:
        #: "every minute"; tests shorten it).
        self.ring_refresh = RING_REFRESH
        self._invites: dict[ServerKey, _Invite] = {}
        #: 2xx to INVITEs still being retransmitted, by dialog id, until ACK.
        self._unacked: dict[DialogId, Timer] = {}
        #: The CSeq of the INVITE each of those 2xx answers: only its ACK
        #: stops them (a late ACK of an earlier INVITE does not).
        self._unacked_cseq: dict[DialogId, int] = {}
        #: The line and flow of each answered call's INVITE, by dialog id:
        #: where the BYE of a call replaced by another (RFC 3891) goes from and to.
        self._calls_flow: dict[DialogId, tuple[LineState, Flow]] = {}
        #: Calls answered for an INVITE with Replaces, until their ACK: the
        #: call each replaces.
        self._replacing: dict[DialogId, DialogId] = {}
        #: Replaced calls whose own 2xx awaits its ACK before their BYE.
        self._bye_when_acked: set[DialogId] = set()
        #: Requests of the phones being handed to the endpoint.
        self._sending: set[asyncio.Task[None]] = set()
        self._closed = False

    def close(self) -> None:
        """Cancel every timer (the host is stopping); send nothing more."""
        self._closed = True
        for task in self._sending:
            task.cancel()
        self._sending.clear()
        for invite in self._invites.values():
            if invite.timer is not None:
                invite.timer.cancel()
            self._stop_refresh(invite)
        self._invites.clear()
        for timer in self._unacked.values():
            timer.cancel()
        self._unacked.clear()
        self._unacked_cseq.clear()
        self._calls_flow.clear()
        self._replacing.clear()
        self._bye_when_acked.clear()

    # ---------------------------------------------------------------- INVITE
    def on_invite(self, line: LineState, request: Request, handle: ServerHandle) -> None:
        """Answer an INVITE (a retransmission never comes here: its
        transaction absorbs it and resends the last response)."""
        reply = line.phone.calls.on_invite(request, self._endpoint.now(), line.config.user)
        for response in reply.responses:
            self._respond(line, handle, response)
        invite = _Invite(line, handle, reply.ringing)
        try:
            key = server_key(request)
        except SipError:
            return  # unreachable for a validated request; then no CANCEL can match
        self._invites[key] = invite
        if reply.ringing is not None:
            self._call_event(line, request.call_id, "ringing")
            invite.timer = self._endpoint.call_at(
                reply.ringing.answer_at, lambda now: self._answer(key, invite, now)
            )
            provisional = [r for r in reply.responses if 100 < r.status_code < 200]
            if provisional:
                self._keep_ringing(invite, provisional[-1])
            return
        final = reply.responses[-1]
        if final.is_success:
            call = _dialog_key(final)
            self._calls_flow[call] = (line, handle.flow)
            self._retransmit_2xx(line, handle, final)
            if reply.replaced is not None:
                old = reply.replaced
                self._call_event(
                    line, request.call_id, "answered", reason="Replaces", replaces=old[0]
                )
                # The old call goes once this one's 2xx is acknowledged: a
                # replacement whose ACK never comes leaves it up.
                self._replacing[call] = old
        self._forget_later(key, invite)

    def _end_replaced(self, dialog_id: DialogId) -> None:
        """RFC 3891 3: the call an INVITE with Replaces was accepted for is
        shut down with a BYE in its own dialog, from its own line to where
        its INVITE came from.  Not before the ACK of its own 2xx, if that
        is still being resent (RFC 3261 15: no BYE before it, or before the
        2xx gives up, which sends a BYE of its own)."""
        found = self._calls_flow.get(dialog_id)
        if found is None:
            return  # over already, however it ended
        if dialog_id in self._unacked:
            self._bye_when_acked.add(dialog_id)
            return
        del self._calls_flow[dialog_id]
        self._bye_when_acked.discard(dialog_id)
        line, flow = found
        calls = line.phone.calls
        dialog = calls.dialogs.get(dialog_id)
        if dialog is None:
            return
        self._send_in_dialog(line, flow, dialog_id, "BYE", [], _ignore)
        calls.end_replaced(dialog_id)
        self._call_event(line, dialog.call_id, "ended", reason="replaced")

    def _keep_ringing(self, invite: _Invite, ringing: Response) -> None:
        """RFC 3261 13.3.1.1: a UAS taking long to answer sends a non-100
        provisional response every minute, or a proxy may cancel the call
        after three silent ones; the 180 goes again every
        :attr:`ring_refresh` seconds while the phone rings."""
        endpoint = self._endpoint

        def again(now: float) -> None:
            invite.refresh = None
            if invite.ringing is None:
                return
            self._respond(invite.line, invite.handle, ringing)
            invite.refresh = endpoint.call_at(now + self.ring_refresh, again)

        invite.refresh = endpoint.call_at(endpoint.now() + self.ring_refresh, again)

    @staticmethod
    def _stop_refresh(invite: _Invite) -> None:
        if invite.refresh is not None:
            invite.refresh.cancel()
            invite.refresh = None

    def _answer(self, key: ServerKey, invite: _Invite, now: float) -> None:
        """The ring time is over: send the 200 (unless it was cancelled)."""
        self._stop_refresh(invite)
        ring, invite.ringing, invite.timer = invite.ringing, None, None
        if ring is None:
            return
        ok = invite.line.phone.calls.answer(ring, now)
        if ok is not None:
            self._calls_flow[_dialog_key(ok)] = (invite.line, invite.handle.flow)
            self._respond(invite.line, invite.handle, ok)
            self._call_event(invite.line, ring.invite.call_id, "answered")
            self._retransmit_2xx(invite.line, invite.handle, ok)
        self._forget_later(key, invite)

    def _stop_ringing(self, key: ServerKey, invite: _Invite, why: str) -> None:
        """End the ringing of ``invite``: 487 to it (RFC 3261 9.2, 15.1.2)."""
        self._stop_refresh(invite)
        ring, invite.ringing = invite.ringing, None
        if invite.timer is not None:
            invite.timer.cancel()
            invite.timer = None
        if ring is not None:
            terminated = invite.line.phone.calls.cancel(ring)
            if terminated is not None:
                self._respond(invite.line, invite.handle, terminated)
                self._call_event(invite.line, ring.invite.call_id, "cancelled", reason=why)
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
        if not response.is_success:
            return  # refused (481, or 500 for an old CSeq): nothing ends
        # A BYE before the ACK ends the call too: the 2xx is not resent.
        key = (request.call_id, request.to.tag or "", request.from_.tag or "")
        self._stop_resending(key)
        self._forget_call(key)
        if ring is None:
            self._call_event(line, request.call_id, "ended", reason="BYE")
            return
        invite_key = server_key(ring.invite)
        invite = self._invites.get(invite_key)
        if invite is not None:
            self._stop_ringing(invite_key, invite, "BYE")
        else:
            calls.cancel(ring)

    def on_ack(self, calls: CallAgent, request: Request) -> None:
        """The ACK of a 2xx: the call is up; the 2xx need not be sent again."""
        calls.on_ack(request)
        try:
            key = (request.call_id, request.to.tag or "", request.from_.tag or "")
            seq = request.cseq.seq
        except SipError:
            return
        if self._unacked_cseq.get(key) == seq:  # RFC 3261 13.3.1.4: this 2xx's ACK
            self._stop_resending(key)
            replaced = self._replacing.pop(key, None)
            if replaced is not None:
                self._end_replaced(replaced)
            if key in self._bye_when_acked:
                self._end_replaced(key)

    def _forget_call(self, key: DialogId) -> None:
        """A call is over: nothing of it is kept for a replacement."""
        self._calls_flow.pop(key, None)
        self._replacing.pop(key, None)
        self._bye_when_acked.discard(key)

    def _stop_resending(self, key: DialogId) -> None:
        self._unacked_cseq.pop(key, None)
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
                self._unacked_cseq.pop(key, None)
                self._forget_call(key)
                calls = line.phone.calls
                if calls.dialogs.get(key) is None:
                    return  # ended meanwhile (and said so then)
                # RFC 3261 13.3.1.4: the session SHOULD be ended with a BYE.
                self._send_in_dialog(line, handle.flow, key, "BYE", [], _ignore)
                calls.end_unacknowledged(key)
                self._call_event(line, handle.request.call_id, "ended", reason="no ACK")
                return
            handle.respond(ok)
            self._events.emit(
                "retransmit", phone=line.phone.config.name, line=line.config.user, code=200
            )
            interval = min(interval * 2, timers.t2)
            self._unacked[key] = endpoint.call_at(min(now + interval, give_up_at), resend)

        self._stop_resending(key)  # a re-INVITE's 2xx replaces the last one's resends
        self._unacked_cseq[key] = ok.cseq.seq
        self._unacked[key] = endpoint.call_at(endpoint.now() + interval, resend)

    # ----------------------------------------------------------------- REFER
    def on_refer(self, line: LineState, request: Request, handle: ServerHandle) -> None:
        """RFC 3515 (see :mod:`phonecast.phone.transfer`): 202, the call to
        the Refer-To target placed as a ``Dial:`` action places one (an
        ``action`` event ``transfer``, the phone busy), then the NOTIFYs."""
        phone = line.phone
        response, transfer = phone.calls.on_refer(request)
        self._respond(line, handle, response)
        if transfer is None:
            return
        phone.actions.append("transfer:" + transfer.target)
        self._events.emit(
            "action",
            phone=phone.config.name,
            line=line.config.user,
            action="transfer",
            target=transfer.target,
            call_id=request.call_id,
        )
        if self._on_call_placed is not None:
            self._on_call_placed(phone)
        self._notify(line, handle.flow, transfer, TRYING)

    def _notify(
        self, line: LineState, flow: Flow, transfer: Transfer, status: tuple[int, str]
    ) -> None:
        """Send the NOTIFY reporting ``status``; after a 2xx to the first,
        the final one.  A NOTIFY refused or unanswered ends the subscription
        (RFC 6665 4.2.2), as does the 2xx to the final one."""
        calls = line.phone.calls

        def answered(response: Response | None, _why: str) -> None:
            if status == TRYING and response is not None and response.is_success:
                self._notify(line, flow, transfer, SUCCEEDED)
            else:
                calls.transfer_over(transfer)

        fields, body = notify_fields(transfer, status)
        fields.append(("Contact", calls.contact))  # mandatory in a NOTIFY (RFC 6665)
        sent = self._send_in_dialog(
            line, flow, transfer.dialog_id, "NOTIFY", fields, answered, body, SIPFRAG
        )
        if not sent:
            calls.transfer_over(transfer)

    # ------------------------------------------------ requests of the phone
    def _send_in_dialog(
        self,
        line: LineState,
        flow: Flow,
        dialog_id: DialogId,
        method: str,
        fields: list[tuple[str, str]],
        done: Outcome,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> bool:
        """Send a request of the phone in dialog ``dialog_id``, whose
        requests came on ``flow``; ``done`` learns how it ended.  False when
        nothing was sent (the dialog is gone, or the host is stopping)."""
        calls = line.phone.calls
        dialog = calls.dialog_for_requests(dialog_id)
        if dialog is None or self._closed:
            return False
        transport, remote = _next_hop(dialog, flow)
        # From the line's own address (its UDP socket and TCP listener share
        # it), not the host's first socket: that is another phone's.
        via = self._endpoint.via(transport, local=flow.local)
        headers = [("Via", via), ("Max-Forwards", "70"), *fields]
        request = calls.request_in(dialog_id, method, headers)
        if request is None:
            return False
        request = request.with_body(body, content_type)
        outcome = _Sent(self._events, line, request, done)
        task = asyncio.ensure_future(self._send(request, transport, remote, outcome, flow.local))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
        return True

    async def _send(
        self, request: Request, transport: str, remote: Address, sent: _Sent, local: Address
    ) -> None:
        try:
            await self._endpoint.send_request(
                request, transport, remote, sent, local=local if transport == "udp" else None
            )
        except OSError:  # no route, no connection, no TLS (ssl errors are OSErrors)
            sent(None, "transport")

    def _call_event(self, line: LineState, call_id: str, state: str, **why: str) -> None:
        """A ``call`` event: the call ``call_id`` entered ``state``; the
        host is told when that state ends the call."""
        self._events.emit(
            "call",
            phone=line.phone.config.name,
            line=line.config.user,
            call_id=call_id,
            state=state,
            **why,
        )
        if state in _OVER and self._on_call_over is not None:
            self._on_call_over(line.phone)


#: RFC 3261 13.3.1.1: a ringing UAS sends a provisional response every minute.
RING_REFRESH: Final = 60.0

#: The call states that end a call.
_OVER: Final = frozenset({"ended", "cancelled"})


class _Sent:
    """The endpoint's callback for a request the phone sent: hands its
    final response (or ``None`` and why none came) to ``done`` once, and
    logs a ``sent_request`` event."""

    __slots__ = ("done", "events", "line", "request")

    def __init__(self, events: EventLog, line: LineState, request: Request, done: Outcome) -> None:
        self.events, self.line, self.request = events, line, request
        self.done: Outcome | None = done

    def __call__(self, response: Response | None, why: str) -> None:
        done = self.done
        if done is None or (response is not None and response.status_code < 200):
            return
        self.done = None
        request, line = self.request, self.line
        self.events.emit(
            "sent_request",
            phone=line.phone.config.name,
            line=line.config.user,
            method=request.method,
            call_id=request.call_id,
            code=None if response is None else response.status_code,
            outcome="answered" if response is not None else why,
        )
        done(response, why)


def _ignore(_response: Response | None, _why: str) -> None:
    """The outcome of a request nothing follows (the BYE of a call that is
    over): the ``sent_request`` event is all there is to say."""


def _next_hop(dialog: Dialog, flow: Flow) -> tuple[str, Address]:
    """Where a request of the phone in ``dialog`` goes, and over what.

    Over the connection the dialog's request came on, while it is open (a
    caller over TCP need not listen for connections of its own); else to
    the first route, or without one to the remote target
    (RFC 3261 12.2.1.1), by its ``transport`` parameter (``sips``: TLS),
    when it names an IP address.  A host name would need RFC 3263 lookups,
    which the emulator does not make for these: the request then goes back
    the way the dialog's request came."""
    connection = flow.connection
    if connection is not None and connection.is_open:
        return flow.transport, flow.remote
    hop = dialog.route_set[0].uri if dialog.route_set else dialog.remote_target
    if isinstance(hop, SipUri):
        host = hop.hostname
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return flow.transport, flow.remote
        transport = hop.transport or ("tls" if hop.secure else "udp")
        if transport in ("udp", "tcp", "tls"):
            return transport, (host, hop.port or (5061 if transport == "tls" else 5060))
    return flow.transport, flow.remote


def _dialog_key(response: Response) -> DialogId:
    """The UAS dialog id of the call a 2xx of the phone answers."""
    return (response.call_id, response.to.tag or "", response.from_.tag or "")


def _tag_unless_tagged(request: Request) -> str | None:
    """A To tag for a final response outside any dialog (RFC 3261 8.2.6.2),
    unless the request carries one already."""
    return None if request.to.tag else new_tag()
