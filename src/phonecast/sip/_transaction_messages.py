"""The requests and responses the transaction layer builds for itself.

RFC 3261 makes a client transaction send the ACK of a failure (17.1.1.3),
and a UAC cancels a pending INVITE with a CANCEL that travels the INVITE's
path (9.1); a UAS owes a 100 Trying (8.2.6.1).  These are the only messages
the layer writes; they live apart from the state machines that send them.
Re-exported by :mod:`phonecast.sip.transaction`.
"""

from __future__ import annotations

from phonecast.sip.errors import TransactionError
from phonecast.sip.message import Header, Message, Request, Response, canonical_name
from phonecast.sip.response import make_response

__all__ = ["make_ack", "make_cancel", "make_trying"]


def _raw(message: Message, name: str) -> str:
    value = message.get(name)
    if value is None:
        raise TransactionError(f"the {type(message).__name__.lower()} has no {name} header")
    return value


def _sibling_request(request: Request, method: str, to: str) -> Request:
    """A request that travels the path of ``request``: same Request-URI, one
    Via equal to its top Via, its Route set, From, Call-ID and CSeq number
    (RFC 3261 9.1 for CANCEL, 17.1.1.3 for ACK)."""
    headers: list[Header] = [
        ("Via", request.values("via")[0]),
        ("Max-Forwards", request.get("max-forwards") or "70"),
    ]
    headers += [("Route", v) for n, v in request.headers if canonical_name(n) == "route"]
    headers += [
        ("From", _raw(request, "from")),
        ("To", to),
        ("Call-ID", _raw(request, "call-id")),
        ("CSeq", f"{request.cseq.seq} {method}"),
        ("Content-Length", "0"),
    ]
    return Request(method, request.uri, headers)


def make_ack(invite: Request, response: Response) -> Request:
    """The ACK for a 3xx-6xx response to ``invite`` (RFC 3261 17.1.1.3).

    Its To is the response's (with the UAS's tag): the ACK confirms that
    particular answer.  The ACK for a 2xx is a different request, built by
    the dialog.
    """
    return _sibling_request(invite, "ACK", _raw(response, "to"))


def make_cancel(invite: Request) -> Request:
    """The CANCEL for a pending ``invite`` (RFC 3261 9.1); send it on its own
    :class:`NonInviteClientTransaction`."""
    return _sibling_request(invite, "CANCEL", _raw(invite, "to"))


def make_trying(request: Request) -> Response:
    """100 Trying for ``request``: no To tag, Timestamp echoed (RFC 3261 8.2.6.1)."""
    stamp = request.get("timestamp")
    return make_response(request, 100, headers=[("Timestamp", stamp)] if stamp else ())
