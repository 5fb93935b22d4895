"""Header names: the compact forms, the headers whose values are lists,
and the two spellings the core uses, canonical (lower-case long form, for
lookups) and display (for error messages).  Both are remembered per
spelling in bounded tables, since names come off the wire.
"""

from __future__ import annotations

from typing import Final

#: RFC 3261 7.3.3 and later RFCs' compact header names.
COMPACT_NAMES: Final = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}

#: Headers whose values are comma-separated lists (RFC 3261 7.3.1).
LIST_HEADERS: Final = frozenset(
    {
        "via",
        "contact",
        "route",
        "record-route",
        "allow",
        "supported",
        "require",
        "proxy-require",
        "unsupported",
        "accept",
        "accept-encoding",
        "accept-language",
        "content-encoding",
        "alert-info",
        "call-info",
        "error-info",
        "in-reply-to",
        "allow-events",
        "path",
        "service-route",
    }
)

#: Header name as spelled -> canonical name.  Peers spell the same few dozen
#: names the same way every time; bounded because names come off the wire.
_CANONICAL: Final[dict[str, str]] = {}


def canonical_name(name: str) -> str:
    """Lower-case long form of a header name, for lookups."""
    key = _CANONICAL.get(name)
    if key is None:
        lname = name.lower()
        key = COMPACT_NAMES.get(lname, lname)
        if len(_CANONICAL) < 4096:
            _CANONICAL[name] = key
    return key


_DISPLAY_NAMES: Final = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
}


def display_name(key: str) -> str:
    """How a canonical header name is shown in errors (memoised: it is
    computed for every typed read)."""
    shown = _DISPLAY_NAMES.get(key)
    if shown is None:
        shown = "-".join(p.capitalize() for p in key.split("-"))
        if len(_DISPLAY_NAMES) < 512:  # names come from the wire: stay bounded
            _DISPLAY_NAMES[key] = shown
    return shown
