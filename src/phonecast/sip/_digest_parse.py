"""Reading WWW-Authenticate / Authorization values into digest values.

Part of :mod:`phonecast.sip.digest`, which re-exports the two entry points.
Grammar (RFC 3261 section 25; RFC 7235 section 2.1 for several challenges in
one field value and for token68)::

    challenge     = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
    auth-param    = token BWS "=" BWS ( token / quoted-string )

Values are read leniently where peers differ harmlessly (parameter-name case,
white space around ``=`` and ``,``, quoted or bare ``algorithm``/``qop``/``nc``,
empty list elements) and strictly where a guess could mislead (duplicated
parameters, a malformed ``nc``, text after a value).
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Final

from phonecast.sip import _abnf
from phonecast.sip._digest_core import (
    CHALLENGE_FIELDS,
    CREDENTIAL_FIELDS,
    QUOTED_STRING_RE,
    TOKEN68_RE,
    Challenge,
    Credentials,
    Params,
)
from phonecast.sip.errors import DigestError, HeaderError

_WS: Final = " \t\r\n"
_BWS: Final = r"[ \t\r\n]*"
# The common case, one scheme with its parameters in exact grammar, is read
# with one anchored match per parameter; anything else takes the general path.
_HEAD_RE: Final = re.compile(rf"{_BWS}({_abnf.token})[ \t\r\n]+")
_ITEM_RE: Final = re.compile(
    rf"({_abnf.token}){_BWS}={_BWS}({QUOTED_STRING_RE.pattern}|{_abnf.token}){_BWS}(?:,{_BWS}|\Z)"
)


class _Raw:
    """One challenge or credentials as read, before its fields are typed."""

    __slots__ = ("params", "scheme", "token68")

    def __init__(
        self, scheme: str, token68: str | None = None, params: list[tuple[str, str]] | None = None
    ) -> None:
        self.scheme = scheme
        self.token68 = token68
        self.params: list[tuple[str, str]] = [] if params is None else params


def _skip_ws(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in _WS:
        i += 1
    return i


class _Reader:
    """Error reporting for one header value.

    Credentials carry a response, so their errors never quote the value: not
    even a 20-character excerpt, which could be part of the response.
    """

    __slots__ = ("header", "secret", "text")

    def __init__(self, text: str, header: str, *, secret: bool) -> None:
        self.text = text
        self.header = header
        self.secret = secret

    def fail(self, message: str, at: int | None = None) -> HeaderError:
        if at is not None:
            where = f"offset {at}" if self.secret else repr(self.text[at : at + 20])
            message = f"{message} at {where}"
        if self.secret and self.header.lower() not in _REDACTED_HEADERS:
            return HeaderError(self.header, message)
        return HeaderError(self.header, message, value=self.text)


# errors.HeaderError redacts these by name; any other header name given for
# credentials gets no value in its messages at all.
_REDACTED_HEADERS: Final = frozenset({"authorization", "proxy-authorization"})


def _param_at(text: str, i: int) -> int | None:
    """Index of the "=" if ``token BWS "="`` starts at ``i``, else None."""
    m = _abnf.TOKEN_RE.match(text, i)
    if m is None:
        return None
    j = _skip_ws(text, m.end())
    return j if j < len(text) and text[j] == "=" else None


def _param_with_value_at(text: str, i: int) -> bool:
    """True if ``token BWS "=" BWS (token / quoted-string)`` starts at ``i``;
    ``abc=`` and ``abc==`` are token68s instead."""
    eq = _param_at(text, i)
    if eq is None:
        return False
    k = _skip_ws(text, eq + 1)
    return k < len(text) and (text[k] == '"' or _abnf.TOKEN_RE.match(text, k) is not None)


def _value_at(reader: _Reader, i: int, name: str) -> tuple[str, int]:
    """Read ``token / quoted-string`` at ``i`` (after BWS); wire form and end."""
    text = reader.text
    i = _skip_ws(text, i)
    m = QUOTED_STRING_RE.match(text, i) if text.startswith('"', i) else None
    if m is None:
        m = _abnf.TOKEN_RE.match(text, i)
    if m is None:
        raise reader.fail(f"parameter {name!r} has no valid value")
    return m.group(0), m.end()


def _token68_at(text: str, i: int) -> re.Match[str] | None:
    """A token68 at ``i`` that ends the element (so ``a=b`` is not one)."""
    t = TOKEN68_RE.match(text, i)
    if t is None:
        return None
    k = _skip_ws(text, t.end())
    return t if k == len(text) or text[k] == "," else None


def _single(text: str) -> _Raw | None:
    """``scheme 1*SP auth-param *(, auth-param)`` read fast, or None: one
    scan splits the list, and the parameters must follow each other without
    a gap up to the end (else the general reader decides, and names the
    fault)."""
    head = _HEAD_RE.match(text)
    if head is None:
        return None
    end = head.end()
    params: list[tuple[str, str]] = []
    for m in _ITEM_RE.finditer(text, end):
        if m.start() != end:
            return None
        params.append((m[1], m[2]))
        end = m.end()
    if end != len(text) or not params:
        return None
    return _Raw(head.group(1), None, params)


def _split(reader: _Reader) -> list[_Raw]:
    """Read a comma-separated list of challenges (or one credentials value).

    An element that is ``token BWS "="`` is a parameter of the current
    challenge; any other token starts a new challenge, optionally followed by
    white space and either a parameter or a token68.  Empty list elements
    (``a, , b``) are skipped, as RFC 7230 section 7 asks of list parsers.
    """
    fast = _single(reader.text)
    return [fast] if fast is not None else _split_general(reader)


def _split_general(reader: _Reader) -> list[_Raw]:
    """:func:`_split` for any value: element by element, naming the fault."""
    text = reader.text
    items: list[_Raw] = []
    n = len(text)
    i = _skip_ws(text, 0)
    need_comma = False
    while True:
        saw_comma = False
        while i < n and text[i] == ",":
            saw_comma = True
            i = _skip_ws(text, i + 1)
        if i >= n:
            break
        if need_comma and not saw_comma:
            raise reader.fail("expected ','", i)
        m = _abnf.TOKEN_RE.match(text, i)
        if m is None:
            raise reader.fail("expected a scheme or a parameter", i)
        name = m.group(0)
        eq = _param_at(text, i)
        if eq is not None:
            if not items:
                raise reader.fail("missing authentication scheme")
            wire, i = _value_at(reader, eq + 1, name)
            items[-1].params.append((name, wire))
            need_comma = True
        else:
            item = _Raw(name)
            items.append(item)
            i = _skip_ws(text, m.end())
            need_comma = True
            if i > m.end() and i < n and text[i] != ",":
                if _param_with_value_at(text, i):
                    need_comma = False  # the next round reads the first parameter
                else:
                    t = _token68_at(text, i)
                    if t is None:
                        raise reader.fail(f"bad data after scheme {name!r}", i)
                    item.token68, i = t.group(0), t.end()
        i = _skip_ws(text, i)
    if not items:
        raise reader.fail("empty value")
    return items


def _typed(raw: _Raw, known: frozenset[str], reader: _Reader) -> tuple[dict[str, str], Params]:
    """Split a Digest item's parameters into known fields (unquoted) and the rest.

    A known parameter given twice is an error (RFC 7235 2.1): two nonces or
    two responses would leave the reader guessing which one counts.
    """
    fields: dict[str, str] = {}
    rest: list[tuple[str, str]] = []
    for name, wire in raw.params:
        low = name.lower()
        if low not in known:
            rest.append((name, wire))
            continue
        if low in fields:
            raise reader.fail(f"duplicate parameter {low!r}")
        fields[low] = _abnf.unquote(wire) if wire.startswith('"') else wire
    return fields, tuple(rest)


def _flag(value: str | None) -> bool:
    return value is not None and value.lower() == "true"


def _challenge(raw: _Raw, reader: _Reader) -> Challenge:
    if raw.scheme.lower() != "digest":
        return Challenge(scheme=raw.scheme, params=tuple(raw.params), token68=raw.token68)
    if raw.token68 is not None:
        raise reader.fail("the Digest scheme takes parameters, not a token68")
    f, rest = _typed(raw, CHALLENGE_FIELDS, reader)
    offered = f.get("qop")
    options = [] if offered is None else [q.strip(_WS) for q in offered.split(",")]
    qop = tuple(q for q in options if q)
    return Challenge(
        scheme=raw.scheme,
        realm=f.get("realm"),
        nonce=f.get("nonce"),
        opaque=f.get("opaque"),
        algorithm=f.get("algorithm"),
        qop=qop,
        stale=_flag(f.get("stale")),
        domain=f.get("domain"),
        userhash=_flag(f.get("userhash")),
        params=rest,
    )


_AUTH_ONLY: Final = ("auth",)

#: The fields of the plain challenge and credentials, each with its place
#: in the reading.
_PLAIN_CHALLENGE: Final = {
    "realm": 0,
    "nonce": 1,
    "opaque": 2,
    "algorithm": 3,
    "qop": 4,
    "domain": 5,
}
_PLAIN_CREDENTIALS: Final = {
    "username": 0,
    "realm": 1,
    "nonce": 2,
    "uri": 3,
    "response": 4,
    "algorithm": 5,
    "cnonce": 6,
    "opaque": 7,
    "qop": 8,
    "nc": 9,
}


def _plain_digest(text: str, places: dict[str, int]) -> list[str | None] | None:
    """What servers and clients actually write, read with string operations:
    ``Digest name=value, name=value...`` (or ``,`` alone between items)
    with known fields (lower case), each once, values tokens or quoted
    strings without escapes; the values in the order of ``places``.  None
    sends the text to the general reader, which reads it the same way or
    names the fault (tests hold the two to agreement)."""
    if not text.startswith("Digest ") or "\\" in text or "\r" in text or "\n" in text:
        return None
    read: list[str | None] = [None] * len(places)
    # Items are split at every comma, with one space after it or none (SIPp
    # writes ",", most others ", ").  A quoted comma splits a value in two;
    # the halves then fail the quote checks below and the general reader
    # takes over.
    for piece in text[7:].split(","):
        if piece[:1] == " ":
            piece = piece[1:]
        name, _, wire = piece.partition("=")
        place = places.get(name)
        if place is None or not wire or read[place] is not None:
            return None
        if wire[0] == '"':
            if wire[-1] != '"' or wire.count('"') != 2:
                return None
            read[place] = wire[1:-1]
        elif _abnf.is_token(wire):
            read[place] = wire
        else:
            return None
    return read


def _plain_digest_challenge(text: str) -> Challenge | None:
    """The usual challenge (see :func:`_plain_digest`), offering qop=auth or
    no qop, or None."""
    read = _plain_digest(text, _PLAIN_CHALLENGE)
    if read is None:
        return None
    realm, nonce, opaque, algorithm, offered, domain = read
    if offered is None:
        qop: tuple[str, ...] = ()
    elif offered == "auth":
        qop = _AUTH_ONLY
    else:
        return None
    return Challenge(
        scheme="Digest",
        realm=realm,
        nonce=nonce,
        opaque=opaque,
        algorithm=algorithm,
        qop=qop,
        domain=domain,
    )


def _plain_digest_credentials(text: str) -> Credentials | None:
    """The usual credentials (see :func:`_plain_digest`), or None.  Raises
    DigestError as the constructor does (a missing field, a bad nc)."""
    read = _plain_digest(text, _PLAIN_CREDENTIALS)
    if read is None:
        return None
    username, realm, nonce, uri, response, algorithm, cnonce, opaque, qop, nc = read
    return Credentials(
        scheme="Digest",
        username=username,
        realm=realm,
        nonce=nonce,
        uri=uri,
        response=response,
        algorithm=algorithm,
        cnonce=cnonce,
        opaque=opaque,
        qop=qop,
        nc=nc,
    )


def parse_challenges(value: str, header: str = "WWW-Authenticate") -> tuple[Challenge, ...]:
    """Every challenge in one WWW-Authenticate / Proxy-Authenticate value.

    Several challenges may share a value (``Digest ..., Basic realm="x"``);
    commas inside quoted strings are data.  Only the syntax is checked here:
    whether a challenge can be answered is the client's question.  Raises
    :class:`HeaderError`.
    """
    reader = _Reader(value, header, secret=False)
    try:
        plain = _plain_digest_challenge(value)
        if plain is not None:
            return (plain,)
        return tuple([_challenge(raw, reader) for raw in _split(reader)])
    except DigestError as exc:
        raise reader.fail(exc.message) from None


def _credentials(raw: _Raw, reader: _Reader) -> Credentials:
    if raw.scheme.lower() != "digest":
        return Credentials(scheme=raw.scheme, params=tuple(raw.params), token68=raw.token68)
    if raw.token68 is not None:
        raise reader.fail("the Digest scheme takes parameters, not a token68")
    f, rest = _typed(raw, CREDENTIAL_FIELDS, reader)
    username = f.get("username")
    if any(name.lower() == "username*" for name, _ in rest):
        username, rest = _extended_username(f, rest, reader)
    return Credentials(
        scheme=raw.scheme,
        username=username,
        realm=f.get("realm"),
        nonce=f.get("nonce"),
        uri=f.get("uri"),
        response=f.get("response"),
        algorithm=f.get("algorithm"),
        cnonce=f.get("cnonce"),
        opaque=f.get("opaque"),
        qop=f.get("qop"),
        nc=f.get("nc"),
        userhash=_flag(f.get("userhash")),
        params=rest,
    )


#: RFC 8187 value-chars: attr-char or a percent-encoded octet.
_EXT_VALUE_RE: Final = re.compile(r"(?:[A-Za-z0-9!#$&+\-.^_`|~]|%[0-9A-Fa-f]{2})*")


def _extended_username(f: dict[str, str], rest: Params, reader: _Reader) -> tuple[str, Params]:
    """RFC 7616 3.4.4: ``username*`` (an RFC 8187 ext-value, for a name
    that a quoted string cannot carry), decoded; instead of ``username``,
    never with it or with ``userhash=true``.  It was refused as credentials
    lacking a username."""
    given = [wire for name, wire in rest if name.lower() == "username*"]
    if len(given) > 1:
        raise reader.fail("duplicate parameter 'username*'")
    if "username" in f:
        raise reader.fail("username and username* together (RFC 7616 3.4.4)")
    if _flag(f.get("userhash")):
        raise reader.fail("username* with userhash=true (RFC 7616 3.4.4)")
    charset, quote1, after = given[0].partition("'")
    _language, quote2, encoded = after.partition("'")
    charset = charset.lower()
    if not (quote1 and quote2) or charset not in ("utf-8", "iso-8859-1"):
        raise reader.fail("username* is not charset'language'value in UTF-8 (RFC 8187)")
    if not _EXT_VALUE_RE.fullmatch(encoded):
        raise reader.fail("username* holds characters RFC 8187 does not allow")
    try:
        name = urllib.parse.unquote_to_bytes(encoded).decode(charset)
    except UnicodeDecodeError:
        raise reader.fail(f"username* is not valid {charset}") from None
    return name, tuple((n, w) for n, w in rest if n.lower() != "username*")


def parse_credentials(value: str, header: str = "Authorization") -> Credentials:
    """The credentials in one Authorization / Proxy-Authorization value.

    A Digest value must carry username, realm, nonce, uri and response, and
    ``nc`` (when present) must be 8 hex digits; an unknown scheme parses, so
    the UAS can answer 401.  Raises :class:`HeaderError`, whose message never
    quotes any part of the value.
    """
    reader = _Reader(value, header, secret=True)
    try:
        plain = _plain_digest_credentials(value)
        if plain is not None:
            return plain
        items = _split(reader)
        if len(items) != 1:
            raise reader.fail("expected exactly one set of credentials")
        return _credentials(items[0], reader)
    except DigestError as exc:
        raise reader.fail(exc.message) from None
