"""Validation of parsed messages, kept apart from parsing.

Parsing answers "is this SIP?"; validation answers "may a UA act on it?".
:func:`validate` checks what RFC 3261 section 8.2 makes every UAS check
(version, required and single-valued headers, CSeq against the method,
headers in the Request-URI) and reads the typed value of every header it knows,
so a malformed known header is refused with 400 before a feature sees it.
With a :class:`UasPolicy` it also applies the checks that depend on what the
UA supports (URI schemes 416, extensions 420, body types 415, authorization
schemes 401, acceptable answer types 406, and the Replaces rules of RFC
3891 3 when it supports ``replaces``), each error carrying the headers the
response needs (Unsupported, Accept...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from phonecast.sip import headers as h
from phonecast.sip.errors import SipError, ValidationError
from phonecast.sip.message import Message, Request, Response
from phonecast.sip.names import display_name
from phonecast.sip.replaces import replaces_of
from phonecast.sip.uri import SipUri

_REQUIRED: Final = ("to", "from", "cseq", "call-id", "via")
_SINGLE: Final = (
    "to",
    "from",
    "cseq",
    "call-id",
    "max-forwards",
    "content-type",
    "expires",
    "min-expires",
    "event",
    "subscription-state",
    "retry-after",
    "date",
)

#: Parsers for every header validation reads; keyed by canonical name.
_TYPED: Final[dict[str, object]] = {
    "max-forwards": h.parse_max_forwards,
    "content-type": h.parse_media_type,
    "expires": h.parse_delta_seconds,
    "min-expires": h.parse_delta_seconds,
    "event": h.parse_event,
    "subscription-state": h.parse_subscription_state,
    "retry-after": h.parse_retry_after,
    "date": h.parse_date,
    "allow": h.parse_token_list,
    "supported": h.parse_token_list,
    "require": h.parse_token_list,
    "proxy-require": h.parse_token_list,
    "unsupported": h.parse_token_list,
    "accept": h.parse_accept,
}


@dataclass(frozen=True, slots=True)
class UasPolicy:
    """What a UAS supports, for the application-level checks."""

    schemes: frozenset[str] = frozenset({"sip", "sips"})
    extensions: frozenset[str] = frozenset()
    body_types: frozenset[str] = frozenset({"application/sdp", "multipart/mixed"})
    auth_schemes: frozenset[str] = frozenset({"digest"})
    answer_types: frozenset[str] = frozenset({"application/sdp"})
    #: Methods whose answer carries a body the Accept header must admit.
    answering_methods: frozenset[str] = frozenset({"INVITE", "UPDATE"})
    #: Methods whose body types the application checks itself, after
    #: authenticating the request (RFC 3261 8.2: authentication comes
    #: before content processing), if at all: ``body_types`` is not applied.
    own_body_methods: frozenset[str] = frozenset()


def unsupported_body(mime: str | None, accepted: frozenset[str]) -> ValidationError:
    """The 415 for a body of type ``mime`` (None: a body without one),
    with Accept naming the types taken (RFC 3261 21.4.13)."""
    what = f"body type {mime}" if mime is not None else "a body without a Content-Type"
    return ValidationError(
        f"{what} is not supported",
        status_code=415,
        reason="Unsupported Media Type",
        headers=(("Accept", ", ".join(sorted(accepted))),),
    )


def _bad(message: str) -> ValidationError:
    return ValidationError(message, status_code=400, reason="Bad Request")


def validate(message: Message, policy: UasPolicy | None = None) -> None:
    """Raise :class:`ValidationError` (or :class:`HeaderError`) if ``message``
    must be refused; return ``None`` if a UA may act on it."""
    if message.version.upper() != "SIP/2.0":
        if isinstance(message, Request):
            raise ValidationError(
                f"unsupported protocol version {message.version}",
                status_code=505,
                reason="Version Not Supported",
            )
        raise _bad(f"unsupported protocol version {message.version}")
    # The index as the dict it is (header_map() is its read-only view):
    # compiled, a dict's probes are direct calls, a Mapping's method lookups.
    fields = message._values_index()
    try:
        checked = _check_headers_quickly(message, fields)
    except SipError:
        checked = False
    if not checked:
        _check_headers_in_order(message, fields)
    cseq = message.cseq
    if isinstance(message, Response):
        if not 100 <= message.status_code <= 699:
            raise _bad(f"status code {message.status_code} out of range")
        return
    assert isinstance(message, Request)
    if cseq.method != message.method:
        raise _bad(f"CSeq method {cseq.method} does not match request method {message.method}")
    if isinstance(message.uri, SipUri) and message.uri.headers:
        raise _bad("a Request-URI must not contain headers (RFC 3261 19.1.5)")
    if policy is not None:
        check_policy(message, policy)


#: What validation does with each header it knows, as bits (see _RULES).
#: Optional headers read through their Message property when present.
_PROPERTIES: Final = ("contact", "route", "record-route", "content-length")
_IS_REQUIRED: Final = 1
_IS_SINGLE: Final = 2
_IS_PROPERTY: Final = 4  # read through its Message property (Contact, Route, ...)
_IS_TYPED: Final = 8  # read with its parser in _TYPED


def _rules() -> dict[str, int]:
    rules: dict[str, int] = {}
    for names, bit in (
        (_REQUIRED, _IS_REQUIRED),
        (_SINGLE, _IS_SINGLE),
        (_PROPERTIES, _IS_PROPERTY),
        (tuple(_TYPED), _IS_TYPED),
    ):
        for name in names:
            rules[name] = rules.get(name, 0) | bit
    return rules


_RULES: Final = _rules()


def _check_headers_quickly(message: Message, fields: dict[str, list[str]]) -> bool:
    """True if the headers pass every check of :func:`_check_headers_in_order`,
    looking only at the headers present (a dozen, where the ordered checks
    probe for some thirty names).  False, or a parser's exception, when
    anything is wrong: the ordered checks then find the fault they report
    first (a failed parse is not cached, so it fails again there)."""
    required = 0
    properties = 0
    typed: list[str] = []
    for name, values in fields.items():
        rule = _RULES.get(name)
        if rule is None:
            continue
        if rule & _IS_REQUIRED:
            required += 1
        if len(values) > 1 and (rule & _IS_SINGLE or name == "content-length"):
            return False
        if rule & _IS_PROPERTY:
            properties += 1
        if rule & _IS_TYPED:
            typed.append(name)
    if required != len(_REQUIRED):
        return False
    _read_required(message)
    if properties:
        _read_properties(message, fields)
    for name in typed:
        message.typed(name, _TYPED[name])  # type: ignore[arg-type]
    return True


def _read_required(message: Message) -> None:
    """Read the headers every message has; each raises HeaderError (status
    400) if malformed, in this order."""
    message.via  # noqa: B018
    message.from_  # noqa: B018
    message.to  # noqa: B018
    message.call_id  # noqa: B018
    message.cseq  # noqa: B018


def _read_properties(message: Message, fields: dict[str, list[str]]) -> None:
    if "contact" in fields:
        message.contact  # noqa: B018
    if "route" in fields:
        message.route  # noqa: B018
    if "record-route" in fields:
        message.record_route  # noqa: B018
    if "content-length" in fields:
        message.content_length  # noqa: B018


def _check_headers_in_order(message: Message, fields: dict[str, list[str]]) -> None:
    """The header checks, each in a fixed order, so that of several faults
    the same one is always reported (and the RFC 4475 verdicts hold)."""
    for name in _REQUIRED:
        if name not in fields:
            raise _bad(f"missing required header {display_name(name)}")
    for name in _SINGLE:
        values = fields.get(name)
        if values is not None and len(values) > 1:
            raise _bad(f"header {display_name(name)} appears {len(values)} times")
    lengths = fields.get("content-length")
    if lengths is not None and len(lengths) > 1 and len({v.strip() for v in lengths}) > 1:
        raise _bad("conflicting Content-Length values")
    _read_required(message)
    # Optional headers are read only when present (an absent one cannot be
    # malformed, and a UAS validates every request it receives).
    _read_properties(message, fields)
    for name, parser in _TYPED.items():  # in a fixed order: the first fault is reported
        if name in fields:
            message.typed(name, parser)  # type: ignore[arg-type]


def check_policy(request: Request, policy: UasPolicy) -> None:
    """The application-level checks of RFC 3261 8.2.2 - 8.2.3 and 21.4.

    Headers the request lacks are not read at all: each check looks in the
    message's header map first (a UAS runs this on every request)."""
    scheme = request.uri.scheme
    if scheme not in policy.schemes and scheme.lower() not in policy.schemes:
        raise ValidationError(
            f"Request-URI scheme {scheme!r} is not supported",
            status_code=416,
            reason="Unsupported URI Scheme",
        )
    fields = request._values_index()  # the dict itself: see validate()
    if "require" in fields and request.method not in ("ACK", "CANCEL"):
        unknown = [tag for tag in request.require if tag.lower() not in policy.extensions]
        if unknown:
            raise ValidationError(
                f"unsupported extensions required: {', '.join(unknown)}",
                status_code=420,
                reason="Bad Extension",
                headers=(("Unsupported", ", ".join(unknown)),),
            )
    # A UAS that supports RFC 3891 refuses a second Replaces, one outside
    # an INVITE, or a malformed one (400; ACK and CANCEL cannot be refused,
    # and copy what their INVITE carried).
    if (
        "replaces" in fields
        and "replaces" in policy.extensions
        and request.method not in ("ACK", "CANCEL")
    ):
        replaces_of(request)
    ctype = request.content_type if request.body and "content-type" in fields else None
    if (
        ctype is not None
        and ctype.mime not in policy.body_types
        and request.method not in policy.own_body_methods
    ):
        raise unsupported_body(ctype.mime, policy.body_types)
    for field in ("authorization", "proxy-authorization"):
        for value in fields.get(field, ()):
            scheme = value.split(None, 1)[0].lower() if value.strip() else ""
            if scheme not in policy.auth_schemes:
                raise ValidationError(
                    f"{display_name(field)} scheme {scheme!r} is not supported",
                    status_code=401,
                    reason="Unauthorized",
                )
    if request.method not in policy.answering_methods or "accept" not in fields:
        return
    accept = request.accept
    acceptable = accept is None or any(
        rng.matches(t) for rng in accept for t in policy.answer_types
    )
    if accept and not acceptable:
        raise ValidationError(
            "no acceptable body type for the answer",
            status_code=406,
            reason="Not Acceptable",
            headers=(("Accept", ", ".join(sorted(policy.answer_types))),),
        )
