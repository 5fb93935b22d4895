"""phonecast.sip: the sans-IO SIP core.

No sockets, no asyncio, no clock: time comes in as ``now`` arguments and
timers go out as deadlines.  This module only re-exports the public names.
"""

from phonecast.sip.errors import (
    DigestError,
    HeaderError,
    ParseError,
    SipError,
    TransactionError,
    UriError,
    ValidationError,
)
from phonecast.sip.headers import (
    CSeq,
    Event,
    MediaType,
    NameAddr,
    RetryAfter,
    SubscriptionState,
    Via,
)
from phonecast.sip.message import Message, Request, Response, StreamFramer, parse_message
from phonecast.sip.uri import AbsoluteUri, SipUri, TelUri, Uri, parse_uri
from phonecast.sip.validate import UasPolicy, validate

__all__ = [
    "AbsoluteUri",
    "CSeq",
    "DigestError",
    "Event",
    "HeaderError",
    "MediaType",
    "Message",
    "NameAddr",
    "ParseError",
    "Request",
    "Response",
    "RetryAfter",
    "SipError",
    "SipUri",
    "StreamFramer",
    "SubscriptionState",
    "TelUri",
    "TransactionError",
    "UasPolicy",
    "Uri",
    "UriError",
    "ValidationError",
    "Via",
    "parse_message",
    "parse_uri",
    "validate",
]
