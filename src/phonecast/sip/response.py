"""Building responses to requests (RFC 3261 8.2.6), including to broken ones.

A UAS answers even a request it could not fully parse when it can (RFC 4475
3.1.2: "respond with 400 Bad Request"): :func:`salvage_error_response` splits
the header section without framing the body and, if the fields a response
must echo (Via, From, To, Call-ID, CSeq) are there, builds the error
response from them.  Otherwise nothing can be sent and the datagram is
dropped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, Final

from phonecast.sip._memo import remember
from phonecast.sip._random import token_hex
from phonecast.sip.errors import SipError
from phonecast.sip.message import Header, Request, Response
from phonecast.sip.names import _CANONICAL, canonical_name
from phonecast.sip.wire import parse_head

#: Reason phrases of the responses phonecast sends (RFC 3261 21 and others).
REASONS: Final = {
    100: "Trying",
    180: "Ringing",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "Version Not Supported",
    603: "Decline",
}

_ECHOED: Final = frozenset({"via", "from", "to", "call-id", "cseq"})
#: Also copied into responses that may create a dialog (RFC 3261 12.1.1).
_DIALOG_ECHOED: Final = _ECHOED | {"record-route"}
#: Headers of the caller's that a response replaces with its own.
_LENGTH_ONLY: Final = frozenset({"content-length"})
_LENGTH_AND_TYPE: Final = frozenset({"content-length", "content-type"})


def new_tag() -> str:
    """A From/To tag: 48 bits from the OS CSPRNG (RFC 3261 19.3: "globally
    unique and cryptographically random with at least 32 bits of randomness")."""
    return token_hex(6)


#: Keyed hash states by key (a UAS has one key): copying one is cheaper
#: than keying a new hash per answer.  Bounded.
_TAG_MACS: Final[dict[bytes, Any]] = {}


def stateless_tag(request: Request, key: bytes) -> str:
    """The To tag of a response sent without a transaction: the same for
    every copy of ``request`` (RFC 3261 8.2.7: a stateless UAS "MUST"
    generate tags "in a manner that will generate the same tag for the same
    request consistently"), and as unguessable as :func:`new_tag` to whoever
    lacks ``key`` (a secret of the UAS, at least 16 bytes).

    Made from the fields that identify a request and its copies: the top
    Via (its branch), From (its tag), Call-ID and CSeq, as received."""
    keyed = _TAG_MACS.get(key)
    if keyed is None:
        keyed = remember(_TAG_MACS, key, hashlib.blake2b(key=key, digest_size=6), 16)
    mac = keyed.copy()
    index = request._values_index()  # the dict itself: see validate.validate
    fields = [values[0] if (values := index.get(name)) else "" for name in _TAGGED_BY]
    mac.update("\0".join(fields).encode("utf-8", "surrogateescape"))  # one call: each costs
    return str(mac.hexdigest())


_TAGGED_BY: Final = ("via", "from", "call-id", "cseq")


def _response_headers(
    source: Iterable[Header],
    to_tag: str | None,
    extra: Iterable[Header],
    echoed: frozenset[str] = _ECHOED,
) -> list[Header]:
    out: list[Header] = []
    known = _CANONICAL  # canonical_name's own table, probed inline (one call less a header)
    for name, value in source:
        key = known.get(name) or canonical_name(name)
        if key not in echoed:
            continue
        if key == "to" and to_tag is not None and ";tag=" not in value.replace(" ", "").lower():
            value = f"{value};tag={to_tag}"
        out.append((name, value))
    out.extend(extra)
    return out


def make_response(
    request: Request,
    status_code: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[Header] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> Response:
    """A response to ``request`` echoing Via, From, To, Call-ID and CSeq
    (and Record-Route in 101-299 responses, which may create a dialog).

    ``to_tag`` is added to To unless it already has one (RFC 3261 8.2.6.2:
    a UAS adds a tag to every response but 100).
    """
    tag = None if status_code == 100 else to_tag
    echoed = _DIALOG_ECHOED if 100 < status_code < 300 else _ECHOED
    # Only the caller's extra headers can carry a Content-Type or -Length
    # (the echoed ones never do); ours replace theirs.
    replaced = _LENGTH_ONLY if content_type is None else _LENGTH_AND_TYPE
    extra = [f for f in headers if canonical_name(f[0]) not in replaced]
    fields = _response_headers(request.headers, tag, extra, echoed)
    if content_type is not None:
        fields.append(("Content-Type", content_type))
    fields.append(("Content-Length", str(len(body))))
    response = Response(
        status_code, REASONS.get(status_code, "") if reason is None else reason, fields, body
    )
    # The echoed CSeq, Call-ID, From and Via are the request's very text:
    # their parsed forms carry over instead of being parsed again (the
    # transaction reads the CSeq of every response it sends).
    return response.adopt_parsed(request, _ADOPTED)


_ADOPTED: Final = ("cseq", "call-id", "from", "via*", "via^")


def error_response(request: Request, error: SipError, *, to_tag: str | None = None) -> Response:
    """The response a UAS sends for a request refused with ``error``."""
    code = error.status_code or 400
    extra = getattr(error, "headers", ())
    reason = getattr(error, "reason", None) if code != 400 else None
    return make_response(request, code, reason, to_tag=to_tag, headers=extra)


def salvage_error_response(data: bytes, status_code: int = 400) -> Response | None:
    """Best-effort error response for bytes that did not parse as a request.

    Returns ``None`` for responses (never answered) and when a required
    header to echo is missing or the header section is unusable.
    """
    try:
        end = data.find(b"\r\n\r\n")
        head = (data if end < 0 else data[:end]).decode("utf-8", "surrogateescape")
        start, fields, _ = parse_head(head.lstrip("\r\n"))
    except SipError:
        return None
    if start[:4].upper() == "SIP/":
        return None
    present = {canonical_name(n) for n, _ in fields}
    if not all(k in present for k in _ECHOED):
        return None
    resp = Response(
        status_code, REASONS.get(status_code, ""), _response_headers(fields, new_tag(), ())
    )
    return resp.with_body(b"")
