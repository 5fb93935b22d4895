"""The Replaces header (RFC 3891): an INVITE asking to take a dialog's place.

An attended transfer or a call pickup sends a new INVITE carrying
``Replaces: <call-id>;to-tag=<tag>;from-tag=<tag>[;early-only]``.  The
tags are written as the dialog's *recipient* sees them on an incoming
request (RFC 3891 3): ``to-tag`` is the recipient's local tag and
``from-tag`` its remote tag, so :attr:`Replaces.dialog_id` is directly the
key of the recipient's dialog table.  Knowing both tags is what entitles a
third party to the dialog: they are random and travel only between its
two ends (RFC 3891 5, RFC 3261 19.3), so a header without either one names
no dialog and is refused, never matched with an empty tag.

What a UAS does with a match (accept and end the old dialog, 481, 486,
603) is its own decision; :func:`replaces_of` only reads the header and
applies the rules that hold for every UAS that supports it: at most one
Replaces, only in an INVITE, both tags present (400 otherwise, RFC 3891 3
and 6.1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from phonecast.sip import _abnf
from phonecast.sip._params import parse_params
from phonecast.sip.errors import HeaderError, ValidationError
from phonecast.sip.message import Request

#: The Call-ID at the start of the value: callid = word [ "@" word ].
_CALL_ID_RE: Final = re.compile(rf"[ \t]*({_abnf.callid})[ \t]*")
_TOKEN_RE: Final = re.compile(_abnf.token)


@dataclass(frozen=True, slots=True)
class Replaces:
    """One Replaces value, tags as the recipient of the INVITE sees them."""

    call_id: str
    #: The recipient's own (local) tag of the dialog to replace.
    to_tag: str
    #: The remote tag of that dialog, at the recipient.
    from_tag: str
    #: Replace only a dialog not yet answered (486 for a confirmed one).
    early_only: bool = False

    @property
    def dialog_id(self) -> tuple[str, str, str]:
        """The recipient's dialog id: (Call-ID, local tag, remote tag)."""
        return (self.call_id, self.to_tag, self.from_tag)


def parse_replaces(value: str) -> Replaces:
    """Parse one Replaces field value (raises :class:`HeaderError`).

    Both tags are required (RFC 3891 6.1: they are what makes the match
    unique and the request authorised); parameter names are
    case-insensitive, their values are not (RFC 3261 7.3.1)."""
    m = _CALL_ID_RE.match(value)
    if m is None or (m.end() < len(value) and value[m.end()] != ";"):
        raise HeaderError("Replaces", "expected a Call-ID first", value=value)
    tags: dict[str, str] = {}
    early_only = False
    for name, param in parse_params(value[m.end() :], "Replaces"):
        key = name.lower()
        if key == "early-only":
            # The flag has no value; ``early-only=1`` is a generic-param of
            # the same name, and taken as the flag: asking for less.
            early_only = True
        elif key in ("to-tag", "from-tag"):
            if key in tags:
                raise HeaderError("Replaces", f"{key} appears twice", value=value)
            if param is None or _TOKEN_RE.fullmatch(param) is None:
                raise HeaderError("Replaces", f"{key} must be a token", value=value)
            tags[key] = param
    missing = [key for key in ("to-tag", "from-tag") if key not in tags]
    if missing:
        raise HeaderError("Replaces", f"{' and '.join(missing)} missing", value=value)
    return Replaces(m.group(1), tags["to-tag"], tags["from-tag"], early_only)


def replaces_of(request: Request) -> Replaces | None:
    """The dialog ``request`` asks to replace, if it carries Replaces.

    Raises :class:`ValidationError` 400 for what RFC 3891 3 says a UAS
    MUST refuse that way: more than one Replaces, Replaces in a request
    other than INVITE, or a value that does not follow the grammar."""
    fields = request.get_all("Replaces")
    if not fields:
        return None
    if len(fields) > 1:
        raise _bad("more than one Replaces header")
    if request.method != "INVITE":
        raise _bad(f"Replaces in a {request.method}, not an INVITE")
    try:
        return parse_replaces(fields[0])
    except HeaderError as exc:
        raise _bad(str(exc)) from None


def _bad(message: str) -> ValidationError:
    return ValidationError(message, status_code=400, reason="Bad Request")
