"""Call transfer on an emulated phone: REFER (RFC 3515) and its NOTIFYs.

What an SPA does with a transfer request, as far as an emulator can do it
honestly.  A REFER inside a confirmed dialog with exactly one Refer-To is
accepted (202) and creates the implicit subscription of RFC 3515 2.4.4; the
phone then "places the call" to the Refer-To target the way a ``Dial:``
action does (recorded as an ``action`` event ``transfer``, the phone busy
for ``dial_seconds``, no INVITE on the wire) and reports it in the dialog
with two NOTIFYs (``Event: refer``, ``message/sipfrag``): ``SIP/2.0 100
Trying`` while the subscription is active, then ``SIP/2.0 200 OK`` with
``Subscription-State: terminated;reason=noresource``.

Why 200 OK as the final status: a real phone would report the final
response to the INVITE it sent to the target.  The emulator sends none;
what it does for any call it places (Dial:) it has done, and RFC 3515 2.4.5
names 200 OK as the body of "the reference was successful".  Reporting a
failure (503) instead would tell every transferor under test that the
transfer failed when the emulator did all it ever does for a call, and
would leave it to recover a call no real phone would have given back.

What is refused, and why:

- outside any dialog (a To tag of no dialog, or none): 481.  The SPA
  transfers the call it is in (blind or attended transfer of the current
  call); a REFER naming no call of the phone refers to a call that does not
  exist (RFC 3261 12.2.2 for the tagged case).  Not 405: the phone's Allow
  lists REFER, and a 405 must list what is allowed (RFC 3261 21.4.6), so it
  would contradict itself;
- in a dialog that is still early (the phone rings): 403.  There is no call
  up to transfer yet; the dialog exists, so it is not 481;
- zero or several Refer-To values, or one that does not parse: 400
  (RFC 3515 2.4.2);
- a Refer-To the phone cannot call (neither ``sip``/``sips`` nor ``tel``, or
  a ``method`` other than INVITE): 403, as RFC 3515 2.4.2 wants a UA not to
  accept a reference it cannot follow;
- while the phone still reports an earlier transfer of the same dialog:
  491 Request Pending (RFC 3261 21.4.27: a request of its own is pending in
  that dialog).  This also bounds what a peer can make the phone hold.

RFC 3515 2.4.6: the NOTIFYs of the first REFER a dialog receives carry
``Event: refer``; those of the second and later ones ``Event: refer;id=N``
with N the REFER's CSeq number, since the dialog alone no longer tells the
subscriptions apart.  The count lives in the dialog (``Dialog.extra``) and
so ends with it.

Sans-IO like :mod:`phonecast.phone.calls`: this module decides and builds;
:mod:`phonecast.phone.call_driver` sends.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Final

from phonecast.sip import (
    Dialog,
    NameAddr,
    Request,
    Response,
    SipError,
    SipUri,
    TelUri,
    make_response,
)
from phonecast.sip.dialog import DialogId
from phonecast.sip.headers import parse_name_addr_list

#: The duration the phone gives the implicit subscription in its first NOTIFY
#: (the ``expires`` of an active Subscription-State, which the subscriber
#: takes as the subscription's duration, RFC 6665 4.2.2).  The phone reports
#: the outcome at once, so the subscription never lasts that long.
SUBSCRIPTION_SECONDS: Final = 60
#: The sipfrag bodies of the two NOTIFYs (RFC 3515 2.4.5: a status line).
TRYING: Final = (100, "Trying")
SUCCEEDED: Final = (200, "OK")
SIPFRAG: Final = "message/sipfrag;version=2.0"
#: Where the REFERs a dialog received are counted (see the module docstring).
_REFERS: Final = "refers"


@dataclass(slots=True)
class Transfer:
    """The implicit subscription of one accepted REFER."""

    dialog_id: DialogId
    #: The Refer-To URI, as the phone records it (a password in it masked).
    target: str
    #: The Event header value its NOTIFYs carry.
    event: str
    #: The dialog as the NOTIFYs must see it (its CSeq counter): kept here
    #: too, since the call may end by BYE while the subscription lives on
    #: (RFC 5057: the dialog ends with its last usage).
    dialog: Dialog


def refer_target(request: Request) -> SipUri | TelUri | Response:
    """The one callable target of a REFER's Refer-To, or the response
    refusing it (400 or 403, see the module docstring)."""
    values: list[NameAddr] = []
    try:
        for field in request.get_all("Refer-To"):
            values.extend(parse_name_addr_list(field, "Refer-To"))
    except SipError:
        return make_response(request, 400, "Bad Refer-To")
    if len(values) != 1:
        reason = "Missing Refer-To" if not values else "More Than One Refer-To"
        return make_response(request, 400, reason)
    uri = values[0].uri
    if isinstance(uri, TelUri):
        return uri
    if not isinstance(uri, SipUri):
        return make_response(request, 403, "Refer-To Scheme Not Callable")
    method = uri.param("method")
    if method is not None and method.upper() != "INVITE":
        return make_response(request, 403, "Refer-To Method Not Supported")
    return uri


def shown_target(uri: SipUri | TelUri) -> str:
    """The target as events and actions record it: a password in the URI
    (deprecated, RFC 3261 19.1.1, but a peer may send one) never logged."""
    if isinstance(uri, SipUri) and uri.password is not None:
        uri = dataclasses.replace(uri, password="***")
    return str(uri)


def refers_received(dialog: Dialog) -> int:
    """How many REFERs ``dialog`` has received so far."""
    for name, value in dialog.extra:
        if name == _REFERS:
            return int(value)
    return 0


def counting_refer(dialog: Dialog) -> Dialog:
    """``dialog`` having received one more REFER."""
    count = refers_received(dialog) + 1
    kept = tuple(item for item in dialog.extra if item[0] != _REFERS)
    return dataclasses.replace(dialog, extra=(*kept, (_REFERS, str(count))))


def event_for(refers: int, cseq: int) -> str:
    """The Event value of the NOTIFYs for the ``refers``-th REFER of a
    dialog, whose CSeq number is ``cseq`` (RFC 3515 2.4.6)."""
    return "refer" if refers <= 1 else f"refer;id={cseq}"


def notify_fields(
    transfer: Transfer, status: tuple[int, str]
) -> tuple[list[tuple[str, str]], bytes]:
    """The NOTIFY's own header fields and its sipfrag body reporting
    ``status``: active while it is provisional, terminated once final."""
    code, reason = status
    state = (
        f"active;expires={SUBSCRIPTION_SECONDS}" if code < 200 else "terminated;reason=noresource"
    )
    fields = [("Event", transfer.event), ("Subscription-State", state)]
    return fields, f"SIP/2.0 {code} {reason}\r\n".encode()
