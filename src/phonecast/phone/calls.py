"""Calls on an emulated phone line: INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE.

A new INVITE rings first: the 180 carries the phone's To tag and so makes
an early dialog (RFC 3261 12.1.1, 13.3.1.1); the 200 follows when the ring
time has passed (:meth:`CallAgent.answer`, at the deadline the INVITE was
given) unless a CANCEL or a BYE ended the ringing first (487 to the INVITE,
:meth:`CallAgent.cancel`).  The offer/answer state of that early dialog is
what RFC 3311 makes the answer to an UPDATE depend on: an INVITE with an
offer leaves the phone owing its answer (the 180 is not reliable: the
answer rides on the 200), so an UPDATE with an offer while it rings is
refused 500 with a Retry-After of 0-10 s; an INVITE without one leaves no
offer outstanding, so such an UPDATE gets 200 with an SDP answer.  An
INVITE without an offer is answered with the phone's own offer in the 200,
and until the ACK brings the answer an UPDATE with an offer is glare (491).
Outside any dialog it is 481.  The rules themselves live in the core
(:meth:`phonecast.sip.Dialog.check_update`); this module keeps the line's
dialogs and decides what the phone says.  INFO (RFC 6086) is a mid-dialog
request too: 200 inside a dialog, 481 outside one.  REFER (call transfer)
is decided by :mod:`phonecast.phone.transfer`; the requests the phone sends
in its dialogs (the NOTIFYs of a transfer, the BYE of a call whose 2xx was
never acknowledged or that another call replaced) are built by
:meth:`CallAgent.request_in`.

The phone lists ``replaces`` in Supported, as the SPA does, so it honours
RFC 3891: an INVITE whose Replaces names one of its confirmed calls is
answered at once and the old call ended (see :meth:`CallAgent._replacing`
for the other cases).  A second copy of an INVITE the phone already has a
dialog for, arriving by another path, is 482 (RFC 3261 8.2.2.2).  A
re-INVITE, UPDATE or REFER moves the remote target only when it is
accepted (RFC 6141 4), not when it is refused.

It is sans-IO like the core: every method takes the request (and the time,
where a deadline follows from it) and returns the responses to send; the
caller sends them through the server transactions and keeps the timers
(:mod:`phonecast.phone.call_driver`).  Tags are cryptographically random
(RFC 3261 19.3); other randomness (SDP session ids, Retry-After) comes from
an injected ``random.Random``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Final, NamedTuple

from phonecast.phone.sdp import Origin, SdpError, SessionBody, make_answer, make_offer
from phonecast.phone.transfer import (
    Transfer,
    counting_refer,
    event_for,
    refer_target,
    refers_received,
    shown_target,
)
from phonecast.sip import (
    Dialog,
    DialogState,
    DialogTable,
    OfferState,
    Request,
    Response,
    ValidationError,
    error_response,
    make_response,
    new_tag,
)
from phonecast.sip.dialog import DialogId
from phonecast.sip.replaces import Replaces, replaces_of

#: What SPA303/SPA525G firmware 7.4/7.6 advertise (field guide), sent as the
#: real phones send it in answers to OPTIONS, INVITE and UPDATE.
ALLOW = "ACK, BYE, CANCEL, INFO, INVITE, NOTIFY, OPTIONS, REFER, UPDATE"
SUPPORTED = "replaces"
ACCEPT = "application/sdp"
#: What an OPTIONS answer says the phone reads besides (RFC 3261 11.2
#: SHOULD): no content coding, and the SPA's own language.
ACCEPT_ENCODING = "identity"
ACCEPT_LANGUAGE = "en"
#: The methods the emulator answers as the method asks (NOTIFY in the
#: emulator, REFER in :mod:`phonecast.phone.transfer`, the rest here): every
#: method the SPA advertises.
HANDLED_METHODS: Final = frozenset(
    {"ACK", "BYE", "CANCEL", "INFO", "INVITE", "NOTIFY", "OPTIONS", "REFER", "UPDATE"}
)
#: The Allow of a 405 (RFC 3261 21.4.6: the methods valid at this address):
#: only what is handled, or a peer would be told to try a method and get 405 again.
ALLOW_HANDLED: Final = ", ".join(m for m in ALLOW.split(", ") if m in HANDLED_METHODS)


@dataclass
class CallSettings:
    """How the line answers calls."""

    #: ``answer`` (180 then 200), ``busy`` (486) or ``decline`` (603).
    mode: str = "answer"
    #: Address and first port put in SDP answers.
    media_address: str = "127.0.0.1"
    media_port: int = 16384
    #: How long the phone rings (in its early dialog) before the 200, seconds.
    ring_seconds: float = 0.5


@dataclass(frozen=True, slots=True)
class Ringing:
    """An INVITE the phone is ringing for: answer it at ``answer_at``."""

    invite: Request
    #: The early dialog its 180 made.
    dialog_id: DialogId
    #: The deadline, on the clock of the ``now`` given to :meth:`CallAgent.on_invite`.
    answer_at: float
    #: The answer to the INVITE's offer the 200 will carry, made (and so
    #: checked) when the INVITE came; ``None`` when the INVITE had none, and
    #: the 200 carries the phone's own offer.
    answer: SessionBody | None


class InviteReply(NamedTuple):
    """What a new INVITE gets now, and whether an answer follows later."""

    #: To send at once, in order (a 180, or a final response).
    responses: list[Response]
    #: Set when the phone rings: call :meth:`CallAgent.answer` at its deadline.
    ringing: Ringing | None = None
    #: Set when the INVITE's 200 replaces a call (RFC 3891): the phone ends
    #: that dialog with a BYE, then :meth:`CallAgent.end_replaced`.
    replaced: DialogId | None = None


@dataclass
class CallAgent:
    """The call side of one phone line."""

    contact: str
    settings: CallSettings = field(default_factory=CallSettings)
    rng: random.Random = field(default_factory=random.Random)
    dialogs: DialogTable = field(default_factory=DialogTable)
    #: Set while a call rings or is up (or a Dial action placed one): makes the phone busy.
    busy_reasons: set[str] = field(default_factory=set)
    #: INVITEs not answered yet, by their early dialog.
    ringing: dict[DialogId, Ringing] = field(default_factory=dict)
    #: Transfers still being reported (NOTIFYs under way), by dialog: one
    #: per dialog at most (see :mod:`phonecast.phone.transfer`).
    transfers: dict[DialogId, Transfer] = field(default_factory=dict)
    #: The o= line of each call's SDP (RFC 3264 8: one session id, and a
    #: version that grows with each changed SDP), by dialog.
    origins: dict[DialogId, Origin] = field(default_factory=dict)
    #: The last dialogs that ended, oldest first (at most :data:`ENDED_KEPT`):
    #: a Replaces naming one is declined 603, not 481 (RFC 3891 3).
    ended: dict[DialogId, None] = field(default_factory=dict)

    @property
    def busy(self) -> bool:
        """True while in a call: priority 1/2 XML pushes wait or are dropped."""
        return bool(self.busy_reasons)

    def _tag(self) -> str:
        return new_tag()  # cryptographically random (RFC 3261 19.3), not from rng

    def _headers(self) -> list[tuple[str, str]]:
        return [("Contact", self.contact), ("Allow", ALLOW), ("Supported", SUPPORTED)]

    def _retry_after(self, error: str) -> ValidationError:
        """500 with a Retry-After of 0-10 s (RFC 3311 5.2, RFC 3261 14.2)."""
        return ValidationError(
            error,
            status_code=500,
            reason="Server Internal Error",
            headers=(("Retry-After", str(self.rng.randint(0, 10))),),
        )

    # -------------------------------------------------------------- requests
    def on_options(self, request: Request) -> Response:
        """The capabilities a real SPA advertises, with the code an INVITE
        would get now (RFC 3261 11.2: 486 while busy, 603 declining, else
        200), so that a peer probing the phone learns whether it can call.
        Inside a dialog (To tag) the INVITE would be a re-INVITE: 200 in
        one of the phone's dialogs, its CSeq checked and counted as any
        in-dialog request's (12.2.2: 500 for one that went back), and 481
        for a tag naming none, as a re-INVITE there gets."""
        code = 200
        if request.to.tag:
            refused = self._counted_in_dialog(request)
            if refused is not None:
                return refused
        else:
            code = self._refusal_code() or 200
        headers = [
            *self._headers(),
            ("Accept", ACCEPT),
            ("Accept-Encoding", ACCEPT_ENCODING),
            ("Accept-Language", ACCEPT_LANGUAGE),
        ]
        return make_response(request, code, to_tag=self._tag(), headers=headers)

    def _counted_in_dialog(self, request: Request) -> Response | None:
        """None once ``request`` is counted in the dialog it names (its CSeq
        checked, RFC 3261 12.2.2), else its refusal: 481 for no dialog, 500
        for a CSeq that went back."""
        dialog = self.dialogs.for_request(request)
        if dialog is None:
            return make_response(request, 481, to_tag=self._tag())
        try:
            self.dialogs.put(dialog.receive_request(request))
        except ValidationError as exc:
            return error_response(request, exc)
        return None

    def _refusal_code(self) -> int | None:
        """How a new INVITE is refused now, if it is: busy (486) or declining (603)."""
        if self.busy or self.settings.mode == "busy":
            return 486
        if self.settings.mode == "decline":
            return 603
        return None

    def on_invite(self, request: Request, now: float, line: str = "") -> InviteReply:
        """Answer an INVITE: a re-INVITE at once; a new one with a 180 (its
        early dialog made) and a deadline for the 200, or a refusal.
        ``line`` names the line it came to (the phone's lines are separate
        UAs to the network: a fork to two of them is no merged request)."""
        if request.to.tag:
            return InviteReply([self._reinvite(request)])
        tag = self._tag()
        if self._merged(request, line):
            # RFC 3261 8.2.2.2: a second copy of an INVITE the phone already
            # has (forked, then merged on the way): 482, not a second call.
            return InviteReply([make_response(request, 482, to_tag=tag)])
        try:
            replaces = replaces_of(request)
        except ValidationError as exc:
            return InviteReply([error_response(request, exc, to_tag=tag)])
        if replaces is not None:
            return self._replacing(request, replaces, tag, line)
        refusal = self._refusal_code()
        if refusal is not None:
            return InviteReply([make_response(request, refusal, to_tag=tag)])
        try:
            answer = self._answer(request) if request.body else None
        except SdpError as exc:
            return InviteReply([make_response(request, 488, str(exc)[:60], to_tag=tag)])
        ringing = make_response(request, 180, to_tag=tag, headers=self._headers())
        try:
            # Early; the INVITE's offer (if any) is owed its answer until the 200.
            dialog = _on_line(Dialog.from_uas(request, ringing), line)
            self.dialogs.put(dialog)
        except ValidationError as exc:
            return InviteReply([error_response(request, exc, to_tag=tag)])
        self.busy_reasons.add(_call_key(dialog.id))
        ring = Ringing(request, dialog.id, now + self.settings.ring_seconds, answer)
        self.ringing[dialog.id] = ring
        return InviteReply([ringing], ring)

    def _merged(self, request: Request, line: str) -> bool:
        """Whether a new INVITE is a merged copy of one that ``line`` holds
        a dialog for: the same From tag, Call-ID and CSeq as the INVITE
        that made it, which no later request of that dialog has passed.
        (A copy with the transaction's own branch never comes here: the
        transaction absorbs it.)"""
        from_tag = request.from_.tag
        if not from_tag:
            return False  # RFC 2543: nothing identifies the copy
        call_id, seq = request.call_id, request.cseq.seq
        return any(
            d.call_id == call_id
            and d.remote_tag == from_tag
            and d.remote_seq == seq
            and _line_of(d) == line
            for d in self.dialogs
        )

    def _replacing(self, request: Request, replaces: Replaces, tag: str, line: str) -> InviteReply:
        """An INVITE with Replaces (RFC 3891 3).  Only a confirmed call of
        the phone's can be replaced: the new INVITE is answered 200 at once
        (no ringing, and whether the phone is busy does not matter: the
        call it is busy with is the one going), and the caller ends the old
        call (:attr:`InviteReply.replaced`).  A dialog that ended is
        declined 603; an early one, which the phone did not initiate (it
        only answers INVITEs), or none at all, is 481; ``early-only``
        against a confirmed call is 486.  Knowing both tags of the call is
        what authorises the replacement here (RFC 3891 5: they travel only
        between the call's two ends; the emulator asks for nothing more,
        where a deployment would also want TLS or an authenticated
        Referred-By, RFC 3891 7).  A from-tag of ``0`` names the null tag
        of an RFC 2543 caller's call too (RFC 3891 6.1)."""
        target = self.dialogs.get(replaces.dialog_id)
        if target is None and replaces.from_tag == "0":
            target = self.dialogs.get((replaces.call_id, replaces.to_tag, ""))
        if target is None:
            if replaces.dialog_id in self.ended:
                return InviteReply([make_response(request, 603, to_tag=tag)])
            return InviteReply([make_response(request, 481, to_tag=tag)])
        if target.state is not DialogState.CONFIRMED or target.id in self.ringing:
            return InviteReply([make_response(request, 481, to_tag=tag)])
        if replaces.early_only:
            return InviteReply([make_response(request, 486, to_tag=tag)])
        dialog_id = (request.call_id, tag, request.from_.tag or "")
        try:
            sdp, offer = self._answer_or_offer(request, dialog_id)
        except SdpError as exc:
            return InviteReply([make_response(request, 488, str(exc)[:60], to_tag=tag)])
        ok = make_response(
            request,
            200,
            to_tag=tag,
            headers=self._headers(),
            body=sdp,
            content_type="application/sdp",
        )
        try:
            dialog = _on_line(Dialog.from_uas(request, ok), line)  # confirmed: made by a 2xx
            self.dialogs.put(_with_offer(dialog, offer, request.cseq.seq))
        except ValidationError as exc:
            self.origins.pop(dialog_id, None)
            return InviteReply([error_response(request, exc, to_tag=tag)])
        self.busy_reasons.add(_call_key(dialog.id))
        return InviteReply([ok], replaced=target.id)

    def end_replaced(self, dialog_id: DialogId) -> None:
        """The call an INVITE with Replaces took the place of is over (its
        BYE was built first, with :meth:`request_in`)."""
        self._end(dialog_id)

    def _end(self, dialog_id: DialogId) -> None:
        """A call is over: forget its dialog, free the phone, and remember
        that it ended (for a Replaces naming it)."""
        self.dialogs.remove(dialog_id)
        self.origins.pop(dialog_id, None)
        self.busy_reasons.discard(_call_key(dialog_id))
        self.ended.pop(dialog_id, None)
        self.ended[dialog_id] = None
        while len(self.ended) > ENDED_KEPT:
            del self.ended[next(iter(self.ended))]

    def answer(self, ring: Ringing, now: float) -> Response | None:
        """The 200 for a ringing INVITE once its deadline has come (the
        dialog confirmed); ``None`` before it, or when it rings no more."""
        if now < ring.answer_at or self.ringing.get(ring.dialog_id) is not ring:
            return None
        del self.ringing[ring.dialog_id]
        dialog = self.dialogs.get(ring.dialog_id)
        if dialog is None:
            return None
        invite = ring.invite
        # The 200 carries the answer to the INVITE's offer, or, to an INVITE
        # without one, the phone's offer, outstanding until the ACK.
        offer = OfferState.IDLE if ring.answer is not None else OfferState.LOCAL_OFFER
        body = ring.answer if ring.answer is not None else self._offer(dialog.id)
        self.dialogs.put(_with_offer(dialog.confirmed(), offer, invite.cseq.seq))
        return make_response(
            invite,
            200,
            to_tag=dialog.local_tag,
            headers=self._headers(),
            body=self._render(dialog.id, body),
            content_type="application/sdp",
        )

    def cancel(self, ring: Ringing) -> Response | None:
        """Stop ringing (a CANCEL, or a BYE in the early dialog): the 487 the
        INVITE gets (RFC 3261 9.2, 15.1.2), or ``None`` if it rings no more."""
        if self.ringing.pop(ring.dialog_id, None) is not ring:
            return None
        self._end(ring.dialog_id)
        return make_response(ring.invite, 487, to_tag=ring.dialog_id[1])

    def ringing_for(self, request: Request) -> Ringing | None:
        """The ringing INVITE whose early dialog ``request`` is sent in."""
        dialog = self.dialogs.for_request(request)
        return None if dialog is None else self.ringing.get(dialog.id)

    def _answer(self, request: Request) -> SessionBody:
        """The answer to ``request``'s offer (raises :class:`SdpError`: 488)."""
        s = self.settings
        return make_answer(request.body, address=s.media_address, port=s.media_port)

    def _offer(self, dialog_id: DialogId) -> SessionBody:
        """The phone's offer in ``dialog_id``: its streams where the last SDP
        the phone sent in it had them (RFC 3264 8)."""
        s = self.settings
        origin = self.origins.get(dialog_id)
        last = None if origin is None or origin.last is None else SessionBody(origin.last)
        return make_offer(address=s.media_address, port=s.media_port, previous=last)

    def _render(self, dialog_id: DialogId, body: SessionBody) -> bytes:
        """``body`` as the SDP the phone sends in ``dialog_id``: under the
        call's one o= line, its version one up when the body changed since
        the last SDP the phone sent in it (RFC 3264 8)."""
        origin = self.origins.get(dialog_id)
        if origin is None:
            sid = self.rng.getrandbits(31)
            origin = Origin(sid, sid)
        self.origins[dialog_id], data = origin.render(body, address=self.settings.media_address)
        return data

    def _answer_or_offer(self, request: Request, dialog_id: DialogId) -> tuple[bytes, OfferState]:
        """The SDP a request of the call gets in its 2xx: the answer to its
        offer, or, to a request without one, the phone's own offer."""
        if request.body:
            return self._render(dialog_id, self._answer(request)), OfferState.IDLE
        return self._render(dialog_id, self._offer(dialog_id)), OfferState.LOCAL_OFFER

    def _reinvite(self, request: Request) -> Response:
        dialog = self.dialogs.for_request(request)
        if dialog is None:
            return make_response(request, 481)
        try:
            dialog = dialog.receive_request(request)
            self.dialogs.put(dialog)
            refusal = self._reinvite_refusal(dialog)
            if refusal is not None:
                return error_response(request, refusal)
            body, offer_state = self._answer_or_offer(request, dialog.id)
        except ValidationError as exc:
            return error_response(request, exc)
        except SdpError as exc:
            return make_response(request, 488, str(exc)[:60])
        accepted = dialog.refreshed_by(request)  # the 2xx makes the refresh
        self.dialogs.put(_with_offer(accepted, offer_state, request.cseq.seq))
        return make_response(
            request, 200, headers=self._headers(), body=body, content_type="application/sdp"
        )

    def _reinvite_refusal(self, dialog: Dialog) -> ValidationError | None:
        """Why a re-INVITE cannot be taken now, if it cannot."""
        if dialog.id in self.ringing:
            # RFC 3261 14.2: the first INVITE has no final response yet.
            return self._retry_after("re-INVITE while the INVITE is unanswered")
        if dialog.offer is OfferState.LOCAL_OFFER:
            # Our offer (in the 200 of an INVITE without one) awaits its ACK:
            # a new exchange now crosses it, glare (RFC 3261 14.1, 14.2).
            return ValidationError(
                "re-INVITE while our offer is unanswered",
                status_code=491,
                reason="Request Pending",
            )
        return None

    def on_ack(self, request: Request) -> None:
        """ACK of our 2xx: the dialog is confirmed and the INVITE's offer/answer
        exchange is over (the answer to our offer, if we made one, is in it;
        an ACK without it ends the exchange too, unanswered, rather than
        leave every later offer refused as glare).  Only the ACK of the
        INVITE whose 2xx carried our offer does so (RFC 3261 13.3.1.4,
        17.1.1.3: an ACK has its INVITE's CSeq): a late copy of an earlier
        INVITE's ACK leaves the offer outstanding."""
        dialog = self.dialogs.for_request(request)
        if dialog is None or dialog.id in self.ringing:
            return  # nothing of ours to acknowledge (an early dialog has no 2xx yet)
        if dialog.offer is OfferState.LOCAL_OFFER and _offer_cseq(dialog) in (
            None,
            request.cseq.seq,
        ):
            dialog = dialog.with_offer(OfferState.IDLE)
        self.dialogs.put(dialog.receive_request(request).confirmed())

    def end_unacknowledged(self, dialog_id: DialogId) -> None:
        """Our 2xx was never acknowledged (64*T1 passed, RFC 3261 13.3.1.4):
        the call is over, and the phone is no longer busy with it.  The BYE
        that tells the caller so is built first, with :meth:`request_in`."""
        self._end(dialog_id)

    def on_bye(self, request: Request) -> Response:
        """200 and the end of the call, or 481 outside a dialog.  A BYE in an
        early dialog also ends the ringing: see :meth:`cancel`.  Its CSeq is
        checked like any in-dialog request's: one lower than the last is
        refused 500 and the call stays up (RFC 3261 12.2.2), as an old copy
        of a BYE must not end a call that went on after it."""
        dialog = self.dialogs.for_request(request)
        if dialog is None:
            # A To tag of ours unless it has one (RFC 3261 8.2.6.2).
            return make_response(request, 481, to_tag=self._tag())
        try:
            dialog = dialog.receive_request(request)
        except ValidationError as exc:
            return error_response(request, exc)
        self._end(dialog.id)
        return make_response(request, 200)

    def on_info(self, request: Request) -> Response:
        """INFO: 200 in a dialog (early or confirmed), whatever its body
        (an SPA takes DTMF as application/dtmf-relay or application/dtmf:
        RFC 6086's legacy INFO usage), 481 outside any dialog (RFC 6086
        4.2.2, RFC 3261 12.2.2: a mid-dialog method naming no dialog).  One
        naming an Info Package is 469 with an empty Recv-Info: the phone
        offered to receive none (RFC 6086 4.2.2)."""
        refused = self._counted_in_dialog(request)
        if refused is not None:
            return refused
        if request.get("Info-Package") is not None:
            return make_response(request, 469, "Bad Info Package", headers=[("Recv-Info", "")])
        return make_response(request, 200)

    def on_refer(self, request: Request) -> tuple[Response, Transfer | None]:
        """A REFER: 202 and the transfer to report (its subscription), or
        the refusal and ``None``; see :mod:`phonecast.phone.transfer` for
        which refusal when."""
        dialog = self.dialogs.for_request(request)
        if dialog is None:
            return make_response(request, 481, to_tag=self._tag()), None
        try:
            dialog = counting_refer(dialog.receive_request(request))
        except ValidationError as exc:
            return error_response(request, exc), None
        self.dialogs.put(dialog)
        target = refer_target(request)
        if isinstance(target, Response):
            return target, None
        if dialog.state is not DialogState.CONFIRMED or dialog.id in self.ringing:
            return make_response(request, 403, "No Call To Transfer"), None
        if dialog.id in self.transfers:
            return make_response(request, 491), None
        dialog = dialog.refreshed_by(request)  # accepted: REFER refreshes the target
        self.dialogs.put(dialog)
        event = event_for(refers_received(dialog), request.cseq.seq)
        transfer = Transfer(dialog.id, shown_target(target), event, dialog)
        self.transfers[dialog.id] = transfer
        return make_response(request, 202, headers=self._headers()), transfer

    def transfer_over(self, transfer: Transfer) -> None:
        """The subscription of ``transfer`` has ended (its last NOTIFY was
        answered, or one failed): the dialog may take another REFER."""
        if self.transfers.get(transfer.dialog_id) is transfer:
            del self.transfers[transfer.dialog_id]

    def dialog_for_requests(self, dialog_id: DialogId) -> Dialog | None:
        """The dialog the phone may still send requests in: the live one, or
        the copy a transfer keeps after the call ended (RFC 5057: a dialog
        lasts as long as its last usage)."""
        live = self.dialogs.get(dialog_id)
        if live is not None:
            return live
        transfer = self.transfers.get(dialog_id)
        return None if transfer is None else transfer.dialog

    def request_in(
        self, dialog_id: DialogId, method: str, headers: list[tuple[str, str]]
    ) -> Request | None:
        """A request of the phone in dialog ``dialog_id`` (RFC 3261 12.2.1.1:
        the next local CSeq, the route set, the remote target as
        Request-URI, From and To as the UAS side of the dialog has them);
        ``headers`` adds Via, Max-Forwards and the rest.  ``None`` if the
        dialog is gone.  The new CSeq is kept wherever the dialog is kept,
        so that no two requests of the phone share one."""
        base = self.dialog_for_requests(dialog_id)
        if base is None:
            return None
        updated, request = base.new_request(method, headers)
        if self.dialogs.get(dialog_id) is not None:
            self.dialogs.put(updated)
        transfer = self.transfers.get(dialog_id)
        if transfer is not None:
            transfer.dialog = updated
        return request

    def on_update(self, request: Request) -> Response:
        """RFC 3311: see the module docstring."""
        dialog = self.dialogs.for_request(request)
        if dialog is None or dialog.state is DialogState.TERMINATED:
            return make_response(request, 481, to_tag=self._tag())  # 8.2.6.2, as on_bye
        try:
            dialog = dialog.receive_request(request)
        except ValidationError as exc:
            return error_response(request, exc)
        refusal = dialog.check_update(request, self.rng.randint(0, 10))
        if refusal is not None:
            self.dialogs.put(dialog)
            return error_response(request, refusal)
        if not request.body:
            self.dialogs.put(dialog.refreshed_by(request))
            return make_response(request, 200, headers=self._headers())
        try:
            body, _ = self._answer_or_offer(request, dialog.id)
        except SdpError as exc:
            # Refused, but received: its CSeq is the dialog's now (RFC 3261
            # 12.2.2), or a lower one after it would be taken.
            self.dialogs.put(dialog)
            return make_response(request, 488, str(exc)[:60])
        self.dialogs.put(dialog.refreshed_by(request).with_offer(OfferState.IDLE))
        return make_response(
            request, 200, headers=self._headers(), body=body, content_type="application/sdp"
        )


#: How many ended dialogs a line remembers, for Replaces (603 against 481).
ENDED_KEPT: Final = 32

#: ``Dialog.extra`` key: the CSeq of the INVITE whose 2xx carries the
#: phone's outstanding offer, which only that INVITE's ACK answers.
_OFFER_CSEQ: Final = "offer-cseq"


def _with_offer(dialog: Dialog, offer: OfferState, invite_cseq: int) -> Dialog:
    """``dialog`` in ``offer``; for our own offer (in the 2xx to the INVITE
    numbered ``invite_cseq``), the INVITE whose ACK will answer it."""
    kept = tuple(item for item in dialog.extra if item[0] != _OFFER_CSEQ)
    if offer is OfferState.LOCAL_OFFER:
        kept = (*kept, (_OFFER_CSEQ, str(invite_cseq)))
    return replace(dialog.with_offer(offer), extra=kept)


#: ``Dialog.extra`` key: the line of the phone the dialog's INVITE came to.
_LINE: Final = "line"


def _on_line(dialog: Dialog, line: str) -> Dialog:
    return replace(dialog, extra=(*dialog.extra, (_LINE, line)))


def _line_of(dialog: Dialog) -> str:
    for name, value in dialog.extra:
        if name == _LINE:
            return value
    return ""


def _offer_cseq(dialog: Dialog) -> int | None:
    """The CSeq of the INVITE whose ACK answers our offer, if recorded."""
    for name, value in dialog.extra:
        if name == _OFFER_CSEQ:
            return int(value)
    return None


def _call_key(dialog_id: DialogId) -> str:
    return "call:" + "|".join(dialog_id)
