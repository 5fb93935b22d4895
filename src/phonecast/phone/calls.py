"""Calls on an emulated phone line: INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE.

The SPA phones in the seed support RFC 3311 UPDATE; this module answers it
as they must: 200 with an SDP answer to an offer in an early or confirmed
dialog, 491 when the phone's own offer is pending (glare), 500 with a
Retry-After of 0-10 s when it holds an offer it has not answered yet, 481
outside any dialog.  The rules themselves live in the core
(:meth:`phonecast.sip.Dialog.check_update`); this module keeps the line's
dialogs and decides what the phone says.

It is sans-IO like the core: every method takes the request and returns the
responses to send (the caller sends them through the server transaction).
Tags are cryptographically random (RFC 3261 19.3); other randomness (SDP
session ids, Retry-After) comes from an injected ``random.Random``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Final

from phonecast.phone.sdp import SdpError, make_answer, make_offer
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

#: What SPA303/SPA525G firmware 7.4/7.6 advertise (field guide), sent as the
#: real phones send it in answers to OPTIONS, INVITE and UPDATE.
ALLOW = "ACK, BYE, CANCEL, INFO, INVITE, NOTIFY, OPTIONS, REFER, UPDATE"
SUPPORTED = "replaces"
ACCEPT = "application/sdp"
#: The methods the emulator answers as the method asks (NOTIFY in the
#: emulator, the rest here).  REFER, which the SPA advertises, is not one:
#: call transfer (202, then NOTIFYs of the transfer's progress) is not
#: emulated, and a REFER is answered 405.
HANDLED_METHODS: Final = frozenset(
    {"ACK", "BYE", "CANCEL", "INFO", "INVITE", "NOTIFY", "OPTIONS", "UPDATE"}
)
#: The Allow of a 405 (RFC 3261 21.4.6: the methods valid at this address):
#: only what is handled, or a peer would be told to try REFER and get 405 again.
ALLOW_HANDLED: Final = ", ".join(m for m in ALLOW.split(", ") if m in HANDLED_METHODS)


@dataclass
class CallSettings:
    """How the line answers calls."""

    #: ``answer`` (180 then 200), ``busy`` (486) or ``decline`` (603).
    mode: str = "answer"
    #: Address and first port put in SDP answers.
    media_address: str = "127.0.0.1"
    media_port: int = 16384


@dataclass
class CallAgent:
    """The call side of one phone line."""

    contact: str
    settings: CallSettings = field(default_factory=CallSettings)
    rng: random.Random = field(default_factory=random.Random)
    dialogs: DialogTable = field(default_factory=DialogTable)
    #: Set while a call is up (or a Dial action placed one): makes the phone busy.
    busy_reasons: set[str] = field(default_factory=set)

    @property
    def busy(self) -> bool:
        """True while in a call: priority 1/2 XML pushes wait or are dropped."""
        return bool(self.busy_reasons)

    def _tag(self) -> str:
        return new_tag()  # cryptographically random (RFC 3261 19.3), not from rng

    def _headers(self) -> list[tuple[str, str]]:
        return [("Contact", self.contact), ("Allow", ALLOW), ("Supported", SUPPORTED)]

    # -------------------------------------------------------------- requests
    def on_options(self, request: Request) -> Response:
        """200 with the capabilities a real SPA advertises."""
        return make_response(
            request, 200, to_tag=self._tag(), headers=[*self._headers(), ("Accept", ACCEPT)]
        )

    def on_invite(self, request: Request) -> list[Response]:
        """Answer a new INVITE (the caller sends each response in order)."""
        if request.to.tag:
            return [self._reinvite(request)]
        tag = self._tag()
        if self.busy or self.settings.mode == "busy":
            return [make_response(request, 486, to_tag=tag)]
        if self.settings.mode == "decline":
            return [make_response(request, 603, to_tag=tag)]
        try:
            body, offer_state = self._answer_or_offer(request)
        except SdpError as exc:
            return [make_response(request, 488, str(exc)[:60], to_tag=tag)]
        ringing = make_response(request, 180, to_tag=tag, headers=self._headers())
        ok = make_response(
            request,
            200,
            to_tag=tag,
            headers=self._headers(),
            body=body,
            content_type="application/sdp",
        )
        dialog = Dialog.from_uas(request, ok).with_offer(offer_state)
        self.dialogs.put(dialog)
        self.busy_reasons.add(_call_key(dialog))
        return [ringing, ok]

    def _answer_or_offer(self, request: Request) -> tuple[bytes, OfferState]:
        sid = self.rng.getrandbits(31)
        s = self.settings
        if request.body:
            answer = make_answer(
                request.body, address=s.media_address, port=s.media_port, session_id=sid
            )
            return answer, OfferState.IDLE
        offer = make_offer(address=s.media_address, port=s.media_port, session_id=sid)
        return offer, OfferState.LOCAL_OFFER

    def _reinvite(self, request: Request) -> Response:
        dialog = self.dialogs.for_request(request)
        if dialog is None:
            return make_response(request, 481)
        try:
            dialog = dialog.receive_request(request)
            body, offer_state = self._answer_or_offer(request)
        except ValidationError as exc:
            return error_response(request, exc)
        except SdpError as exc:
            return make_response(request, 488, str(exc)[:60])
        self.dialogs.put(dialog.with_offer(offer_state))
        return make_response(
            request, 200, headers=self._headers(), body=body, content_type="application/sdp"
        )

    def on_ack(self, request: Request) -> None:
        """ACK of our 2xx: the dialog is confirmed; an answer in it settles our offer."""
        dialog = self.dialogs.for_request(request)
        if dialog is None:
            return
        if dialog.offer is OfferState.LOCAL_OFFER and request.body:
            dialog = dialog.with_offer(OfferState.IDLE)
        self.dialogs.put(dialog.receive_request(request).confirmed())

    def on_bye(self, request: Request) -> Response:
        """200 and the end of the call, or 481 outside a dialog."""
        dialog = self.dialogs.for_request(request)
        if dialog is None:
            return make_response(request, 481)
        self.dialogs.put(dialog.terminated())
        self.busy_reasons.discard(_call_key(dialog))
        return make_response(request, 200)

    def on_update(self, request: Request) -> Response:
        """RFC 3311: see the module docstring."""
        dialog = self.dialogs.for_request(request)
        if dialog is None or dialog.state is DialogState.TERMINATED:
            return make_response(request, 481)
        try:
            dialog = dialog.receive_request(request)
        except ValidationError as exc:
            return error_response(request, exc)
        refusal = dialog.check_update(request, self.rng.randint(0, 10))
        if refusal is not None:
            self.dialogs.put(dialog)
            return error_response(request, refusal)
        if not request.body:
            self.dialogs.put(dialog)
            return make_response(request, 200, headers=self._headers())
        try:
            body, _ = self._answer_or_offer(request)
        except SdpError as exc:
            return make_response(request, 488, str(exc)[:60])
        self.dialogs.put(dialog.with_offer(OfferState.IDLE))
        return make_response(
            request, 200, headers=self._headers(), body=body, content_type="application/sdp"
        )

    def offer_update(self, dialog: Dialog) -> Dialog:
        """Record that the phone sent an UPDATE offer of its own (for glare)."""
        updated = dialog.with_offer(OfferState.LOCAL_OFFER)
        self.dialogs.put(updated)
        return updated

    def hold_offer(self, dialog: Dialog) -> Dialog:
        """Record an offer received (e.g. in a reliable 18x) not yet answered."""
        updated = dialog.with_offer(OfferState.REMOTE_OFFER)
        self.dialogs.put(updated)
        return updated


def _call_key(dialog: Dialog) -> str:
    return "call:" + "|".join(dialog.id)
