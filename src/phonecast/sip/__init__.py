"""phonecast.sip: the sans-IO SIP core.

No sockets, no asyncio, no clock: time comes in as ``now`` arguments and
timers go out as deadlines.  This module only re-exports the public names.
"""

from phonecast.sip._random import token_bytes, token_hex
from phonecast.sip.dialog import Dialog, DialogState, DialogTable, OfferState
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
from phonecast.sip.response import error_response, make_response, new_tag, stateless_tag
from phonecast.sip.transaction import (
    DEFAULT_TIMERS,
    ClientTransaction,
    ServerTransaction,
    Timers,
    TransactionEvent,
    TransactionTable,
    new_branch,
    new_client_transaction,
    new_server_transaction,
)
from phonecast.sip.uri import AbsoluteUri, SipUri, TelUri, Uri, parse_uri
from phonecast.sip.validate import UasPolicy, validate

__all__ = [
    "DEFAULT_TIMERS",
    "AbsoluteUri",
    "CSeq",
    "ClientTransaction",
    "Dialog",
    "DialogState",
    "DialogTable",
    "DigestError",
    "Event",
    "HeaderError",
    "MediaType",
    "Message",
    "NameAddr",
    "OfferState",
    "ParseError",
    "Request",
    "Response",
    "RetryAfter",
    "ServerTransaction",
    "SipError",
    "SipUri",
    "StreamFramer",
    "SubscriptionState",
    "TelUri",
    "Timers",
    "TransactionError",
    "TransactionEvent",
    "TransactionTable",
    "UasPolicy",
    "Uri",
    "UriError",
    "ValidationError",
    "Via",
    "error_response",
    "make_response",
    "new_branch",
    "new_client_transaction",
    "new_server_transaction",
    "new_tag",
    "parse_message",
    "parse_uri",
    "stateless_tag",
    "token_bytes",
    "token_hex",
    "validate",
]
