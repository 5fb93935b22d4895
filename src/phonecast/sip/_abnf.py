"""RFC 3261 section 25 grammar, as named regular-expression fragments.

Each fragment keeps the RFC's rule name so that code reading ``token`` or
``hnv_unreserved`` can be checked against the ABNF it came from.  Only the
rules the parser needs are here; compositions are built with f-strings so a
reader can follow them from the leaves up.  All patterns work on ``str``
(header sections are decoded as UTF-8 with surrogateescape, which keeps any
byte sequence round-trippable).
"""

from __future__ import annotations

import re
from typing import Final

# alphanum / mark / unreserved / escaped  (RFC 3261 25.1)
alphanum = r"A-Za-z0-9"
mark = r"\-_.!~*'()"
unreserved = alphanum + mark
escaped = r"%[0-9A-Fa-f]{2}"
reserved = ";/?:@&=+$,"

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
token_chars = r"A-Za-z0-9\-.!%*_+`'~"
# Final (typed): other modules read it inside an import cycle, where
# mypy and mypyc would otherwise meet it before inferring its type.
token: Final[str] = rf"[{token_chars}]+"

# word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" /
#        "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}")
word_chars = token_chars + r"()<>:\\\"/\[\]?{}"
word = rf"[{word_chars}]+"
# callid = word [ "@" word ]
callid = rf"{word}(?:@{word})?"

# Method = INVITEm / ... / extension-method ; extension-method = token
Method = token

# SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT  ("SIP" is case-insensitive in ABNF)
SIP_Version = r"[Ss][Ii][Pp]/[0-9]+\.[0-9]+"

# Status-Code = 3DIGIT ; Reason-Phrase = *(reserved / unreserved / escaped /
#               UTF8-NONASCII / UTF8-CONT / SP / HTAB)
Status_Code = r"[0-9]{3}"
Reason_Phrase = r"[^\r\n]*"

# scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
scheme = r"[A-Za-z][A-Za-z0-9+\-.]*"

# user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
user_unreserved = r"&=+$,;?/"
# user = 1*( unreserved / escaped / user-unreserved )
user = rf"(?:[{unreserved}{user_unreserved}]|{escaped})+"
# password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
password = rf"(?:[{unreserved}&=+$,]|{escaped})*"

# hostname = *( domainlabel "." ) toplabel [ "." ]
domainlabel = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
toplabel = r"[A-Za-z](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
hostname = rf"(?:{domainlabel}\.)*{toplabel}\.?"
# IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT
IPv4address = r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}"
# IPv6reference = "[" IPv6address "]".  The RFC 3261 IPv6address rule admits
# some strings RFC 4291 does not (RFC 5118 section 4.3 "3 colons"); accept the
# RFC 3261 shape here and let ipaddress normalise what it can.
IPv6reference = r"\[[0-9A-Fa-f:.]+\]"
host = rf"(?:{hostname}|{IPv4address}|{IPv6reference})"
port = r"[0-9]{1,5}"

# param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$"
param_unreserved = r"\[\]/:&+$"
paramchar = rf"(?:[{param_unreserved}{unreserved}]|{escaped})"
pname = rf"{paramchar}+"
pvalue = rf"{paramchar}*"

# hnv-unreserved = "[" / "]" / "/" / "?" / ":" / "+" / "$"
hnv_unreserved = r"\[\]/?:+$"
hname = rf"(?:[{hnv_unreserved}{unreserved}]|{escaped})+"
hvalue = rf"(?:[{hnv_unreserved}{unreserved}]|{escaped})*"

# quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
#   qdtext = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII
#   quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
qdtext = r"[ \t\x21\x23-\x5b\x5d-\x7e\x80-\U0010ffff]"
quoted_pair = r"\\[\x00-\x09\x0b\x0c\x0e-\x7f]"
quoted_string = rf'"(?:{qdtext}|{quoted_pair})*"'

# LWS after unfolding is just white space.
WSP: Final = r"[ \t]"

TOKEN_RE: Final = re.compile(token)
CALLID_RE: Final = re.compile(callid)
SCHEME_RE: Final = re.compile(scheme)
USER_RE: Final = re.compile(user)
PASSWORD_RE: Final = re.compile(password)
HOST_RE: Final = re.compile(host)
HOSTNAME_RE: Final = re.compile(hostname)
IPV4_RE: Final = re.compile(IPv4address)
PNAME_RE: Final = re.compile(pname)
PVALUE_RE: Final = re.compile(pvalue)
HNAME_RE: Final = re.compile(hname)
HVALUE_RE: Final = re.compile(hvalue)
QUOTED_STRING_RE: Final = re.compile(quoted_string)
QUOTED_STRING_AT_RE: Final = re.compile(rf"{WSP}*({quoted_string})")
TOKEN_AT_RE: Final = re.compile(rf"{WSP}*({token})")

REQUEST_LINE_RE: Final = re.compile(rf"({Method}) ([^ \t]+) ({SIP_Version})")
STATUS_LINE_RE: Final = re.compile(rf"({SIP_Version}) ({Status_Code}) ({Reason_Phrase})")

_ESCAPE_RE: Final = re.compile(r"%([0-9A-Fa-f]{2})")


def small_number(text: str, most: int = 65535) -> int | None:
    """``text`` as a number from 0 to ``most`` if it is ASCII digits, no more
    of them than ``most`` has; else None.  ``str.isdigit`` is also true of
    ``²`` and of other scripts' digits (which ``int`` reads), and ``int``
    refuses 4,300 digits and more: a port, a priority or a weight is read
    here rather than each reader checking those three things its own way."""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(most)):
        return None
    value = int(text)
    return value if value <= most else None


def unescape(text: str) -> str:
    """Decode %HH escapes as UTF-8 (invalid sequences kept as surrogates)."""
    if "%" not in text:
        return text
    raw = _ESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16) + 0xDC00), text)
    # Surrogates stand for raw bytes; turn the whole string back into bytes.
    data = bytearray()
    for ch in raw:
        code = ord(ch)
        if 0xDC00 <= code <= 0xDCFF:
            data.append(code - 0xDC00)
        else:
            data.extend(ch.encode("utf-8", "surrogateescape"))
    return data.decode("utf-8", "surrogateescape")


def normalize_escapes(text: str) -> str:
    """Canonical form for comparison (RFC 3261 19.1.4): an escaped character
    that is not reserved equals itself unescaped; remaining escapes upper-case."""
    if "%" not in text:
        return text

    def fix(m: re.Match[str]) -> str:
        ch = chr(int(m.group(1), 16))
        if ch in reserved or ch == "%" or not ch.isprintable() or ord(ch) > 0x7E:
            return "%" + m.group(1).upper()
        return ch

    return _ESCAPE_RE.sub(fix, text)


def unquote(quoted: str) -> str:
    """Remove the quotes and quoted-pair escapes of a quoted-string."""
    inner = quoted[1:-1]
    if "\\" not in inner:
        return inner
    out: list[str] = []
    i = 0
    while i < len(inner):
        ch = inner[i]
        if ch == "\\" and i + 1 < len(inner):
            out.append(inner[i + 1])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def quote(text: str) -> str:
    """Make a quoted-string of ``text`` (backslash-escape ``"`` and ``\\``)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def is_token(text: str) -> bool:
    """True if ``text`` is an RFC 3261 token.

    Most tokens on the wire (tags, branches, digest values) are ASCII
    letters, digits and '-': two C-level checks settle those before the
    expression runs.  ``isalnum`` alone would not do: it is true of any
    Unicode letter or digit, which a token may not hold."""
    if text.isascii() and text.replace("-", "").isalnum():
        return True
    return TOKEN_RE.fullmatch(text) is not None
