"""Dialogs (RFC 3261 section 12) and the offer/answer rules of UPDATE (RFC 3311).

Theory of operation
-------------------
A :class:`Dialog` is the state two UAs share after an INVITE: Call-ID, both
tags, both CSeq counters, the remote target and the route set.  It is created
from a request and the response that established it (UAS side: the INVITE
and our 1xx/2xx with a To tag; UAC side: our INVITE and the response).  It
moves ``early`` -> ``confirmed`` on a 2xx and to ``terminated`` on BYE or a
failure response.

The dialog also tracks the offer/answer exchange, because RFC 3311 makes the
answer to an UPDATE depend on it: an UPDATE with an offer while our own offer
is unanswered is glare (491); while we hold an offer we have not answered, it
is 500 with Retry-After 0-10 s.  :meth:`Dialog.check_update` returns which of
those applies (or ``None``) and never reads a clock or a random source: the
caller passes the Retry-After value it drew.

Requests inside the dialog are checked by :meth:`Dialog.receive_request`
(CSeq must grow: lower -> 500, RFC 3261 12.2.2) and built by
:meth:`Dialog.new_request` (Request-URI = remote target, Route from the route
set, CSeq + 1).  :class:`DialogTable` keys dialogs by (Call-ID, local tag,
remote tag) so a request outside any dialog can be answered 481.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Final

from phonecast.sip.errors import ValidationError
from phonecast.sip.headers import NameAddr
from phonecast.sip.message import Request, Response
from phonecast.sip.uri import Uri


class DialogState(enum.Enum):
    """Where a dialog is in its life."""

    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class OfferState(enum.Enum):
    """The SDP offer/answer exchange of a dialog (RFC 3264, RFC 6337)."""

    IDLE = "idle"  # no offer outstanding
    LOCAL_OFFER = "local-offer"  # we sent an offer, no answer yet
    REMOTE_OFFER = "remote-offer"  # we received an offer and owe an answer


#: Methods that refresh the remote target (RFC 3261 12.2, RFC 3311 5.2).
TARGET_REFRESH: Final = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})

DialogId = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Dialog:
    """One dialog, as an immutable value; transitions return a new one."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: NameAddr
    remote_uri: NameAddr
    remote_target: Uri
    route_set: tuple[NameAddr, ...] = ()
    local_seq: int = 0
    remote_seq: int | None = None
    state: DialogState = DialogState.EARLY
    offer: OfferState = OfferState.IDLE
    secure: bool = False
    #: Extra data a feature keeps with the dialog (e.g. the SDP it answered).
    extra: tuple[tuple[str, str], ...] = field(default=())

    @property
    def id(self) -> DialogId:
        """(Call-ID, local tag, remote tag): the dialog's identity."""
        return (self.call_id, self.local_tag, self.remote_tag)

    # ---------------------------------------------------------------- creation
    @classmethod
    def from_uas(cls, request: Request, response: Response) -> Dialog:
        """The dialog a UAS creates when it answers ``request`` with a 1xx
        (with To tag) or 2xx (RFC 3261 12.1.1).

        The response must carry our To tag.  A request without a From tag is
        an RFC 2543 peer's (RFC 4475 3.4.1 inv2543): 12.1.1 says a UAS MUST
        be prepared for it and take the remote tag as null, so the dialog's
        remote tag is then ``""`` (and :meth:`DialogTable.for_request`
        finds it from requests without a From tag too)."""
        to_tag = response.to.tag
        if not to_tag:
            raise ValidationError(
                "a dialog needs the response's To tag", status_code=400, reason="Bad Request"
            )
        from_tag = request.from_.tag or ""
        contact = request.contact
        # RFC 2543 did not require Contact (RFC 4475 3.4.1 inv2543): the
        # From URI is then the only target there is.
        target = contact[0].uri if contact else request.from_.uri
        offer = OfferState.REMOTE_OFFER if request.body else OfferState.IDLE
        return cls(
            call_id=request.call_id,
            local_tag=to_tag,
            remote_tag=from_tag,
            local_uri=response.to,
            remote_uri=request.from_,
            remote_target=target,
            route_set=request.record_route,
            remote_seq=request.cseq.seq,
            state=DialogState.CONFIRMED if response.is_success else DialogState.EARLY,
            offer=offer,
            secure=request.uri.scheme == "sips",
        )

    @classmethod
    def from_uac(cls, request: Request, response: Response) -> Dialog:
        """The dialog a UAC creates from a 1xx/2xx to its request (12.1.2)."""
        to_tag = response.to.tag
        from_tag = request.from_.tag
        if not to_tag or not from_tag or not response.contact:
            raise ValidationError(
                "response cannot create a dialog (tag or Contact missing)",
                status_code=400,
                reason="Bad Request",
            )
        return cls(
            call_id=request.call_id,
            local_tag=from_tag,
            remote_tag=to_tag,
            local_uri=request.from_,
            remote_uri=response.to,
            remote_target=response.contact[0].uri,
            route_set=tuple(reversed(response.record_route)),
            local_seq=request.cseq.seq,
            state=DialogState.CONFIRMED if response.is_success else DialogState.EARLY,
            offer=OfferState.LOCAL_OFFER if request.body else OfferState.IDLE,
            secure=request.uri.scheme == "sips",
        )

    # ------------------------------------------------------------ transitions
    def confirmed(self) -> Dialog:
        """The dialog after a 2xx."""
        return replace(self, state=DialogState.CONFIRMED)

    def terminated(self) -> Dialog:
        """The dialog after BYE or a final failure."""
        return replace(self, state=DialogState.TERMINATED)

    def with_offer(self, offer: OfferState) -> Dialog:
        """The dialog with a new offer/answer state."""
        return replace(self, offer=offer)

    def receive_request(self, request: Request) -> Dialog:
        """Check an in-dialog request's CSeq and take it as the last one.

        Raises :class:`ValidationError` 500 for a CSeq lower than the last
        (RFC 3261 12.2.2); ACK and CANCEL reuse the INVITE's number.  The
        remote target is left as it was: a target refresh takes effect
        only with the 2xx that accepts it (:meth:`refreshed_by`), so a
        re-INVITE or UPDATE refused 491 or 500 does not move the dialog
        (RFC 6141 4).
        """
        seq = request.cseq.seq
        method = request.method
        in_order = method in ("ACK", "CANCEL") or self.remote_seq is None or seq > self.remote_seq
        if not in_order:
            raise ValidationError(
                f"CSeq {seq} is not above {self.remote_seq}",
                status_code=500,
                reason="Server Internal Error",
            )
        if method in ("ACK", "CANCEL"):
            return self
        return replace(self, remote_seq=seq)

    def refreshed_by(self, request: Request) -> Dialog:
        """The dialog once a target refresh request (re-INVITE, UPDATE,
        REFER...) has been accepted: its Contact is the new remote target
        (RFC 3261 12.2.2, RFC 3311 5.2).  Other requests change nothing."""
        if request.method in TARGET_REFRESH and request.contact:
            return replace(self, remote_target=request.contact[0].uri)
        return self

    def check_update(self, request: Request, retry_after: int) -> ValidationError | None:
        """RFC 3311 5.2: may an UPDATE carrying an offer be accepted now?

        Returns the error to answer with (491 glare, or 500 with
        ``Retry-After: retry_after``) or ``None`` when it may be answered.
        An UPDATE without a body carries no offer and is always acceptable.
        """
        if not request.body:
            return None
        if self.offer is OfferState.LOCAL_OFFER:
            return ValidationError(
                "UPDATE offer while our offer is unanswered (glare)",
                status_code=491,
                reason="Request Pending",
            )
        if self.offer is OfferState.REMOTE_OFFER:
            return ValidationError(
                "UPDATE offer while an earlier offer awaits our answer",
                status_code=500,
                reason="Server Internal Error",
                headers=(("Retry-After", str(retry_after)),),
            )
        return None

    def new_request(self, method: str, headers: list[tuple[str, str]]) -> tuple[Dialog, Request]:
        """Build a request inside the dialog (RFC 3261 12.2.1.1).

        ``headers`` supplies the rest (Via, Max-Forwards, Contact...); this
        sets Request-URI, Route, From, To, Call-ID and CSeq.
        """
        seq = self.local_seq if method == "ACK" else self.local_seq + 1
        route = self.route_set
        target = self.remote_target
        if route and not _is_loose(route[0]):
            # Strict router: it becomes the Request-URI, the target goes last.
            target, route = route[0].uri, (*route[1:], NameAddr(self.remote_target))
        fields: list[tuple[str, str]] = [
            *headers,
            *(("Route", str(r)) for r in route),
            ("From", str(self.local_uri)),
            ("To", str(self.remote_uri)),
            ("Call-ID", self.call_id),
            ("CSeq", f"{seq} {method}"),
        ]
        updated = self if method == "ACK" else replace(self, local_seq=seq)
        return updated, Request(method, target, fields)


def _is_loose(route: NameAddr) -> bool:
    return bool(getattr(route.uri, "lr", False))


class DialogTable:
    """Dialogs by id; a request whose tags match none gets 481."""

    def __init__(self, limit: int = 100_000) -> None:
        self._dialogs: dict[DialogId, Dialog] = {}
        self._limit = limit

    def __len__(self) -> int:
        return len(self._dialogs)

    def __iter__(self) -> Iterator[Dialog]:
        return iter(list(self._dialogs.values()))

    def put(self, dialog: Dialog) -> None:
        """Store (or replace) a dialog; terminated dialogs are dropped."""
        if dialog.state is DialogState.TERMINATED:
            self._dialogs.pop(dialog.id, None)
            return
        if dialog.id not in self._dialogs and len(self._dialogs) >= self._limit:
            raise ValidationError("too many dialogs", status_code=503, reason="Service Unavailable")
        self._dialogs[dialog.id] = dialog

    def get(self, dialog_id: DialogId) -> Dialog | None:
        """The live dialog with this id, if any (e.g. the early dialog of an
        INVITE that is still ringing, when its time to answer comes)."""
        return self._dialogs.get(dialog_id)

    def for_request(self, request: Request) -> Dialog | None:
        """The dialog an incoming in-dialog request belongs to, if any (a
        missing From tag is the null remote tag of an RFC 2543 peer's
        dialog, RFC 3261 12.2.2)."""
        to_tag = request.to.tag
        if not to_tag:
            return None
        return self._dialogs.get((request.call_id, to_tag, request.from_.tag or ""))

    def remove(self, dialog_id: DialogId) -> None:
        """Forget a dialog."""
        self._dialogs.pop(dialog_id, None)
