"""What several header grammars share: comma-separated values, ``;name=value``
parameters, delta-seconds, and the bound on the texts the parsers' shape
tables keep.  Split out of :mod:`phonecast.sip.headers` so that the address
headers (:mod:`phonecast.sip._addresses`) and the rest can both use it."""

from __future__ import annotations

import re
from typing import Final

from phonecast.sip import _abnf
from phonecast.sip.errors import HeaderError
from phonecast.sip.uri import Params, find_param

_WS: Final = " \t"
# gen-value = token / host / quoted-string; Via's received also admits a bare
# IPv6address (RFC 3261 via-received, RFC 5118 4.5), tried first.
_GEN_VALUE_RE: Final = re.compile(
    rf"[0-9A-Fa-f]*:[0-9A-Fa-f:.]+|{_abnf.token}|{_abnf.host}|{_abnf.quoted_string}"
)
_MAX_DELTA: Final = 2**32 - 1


def split_commas(value: str) -> list[str]:
    """Split a list-valued header on the commas that separate its elements,
    leaving commas inside quoted strings and ``<...>`` alone."""
    if "," not in value:
        return [value.strip(_WS)]
    parts: list[str] = []
    start = 0
    in_quote = in_angle = False
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if in_quote:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_quote = False
        elif ch == '"':
            in_quote = True
        elif ch == "<":
            in_angle = True
        elif ch == ">":
            in_angle = False
        elif ch == "," and not in_angle:
            parts.append(value[start:i].strip(_WS))
            start = i + 1
        i += 1
    parts.append(value[start:].strip(_WS))
    return parts


def parse_params(text: str, header: str) -> Params:
    """Parse ``*( SEMI generic-param )``; ``text`` starts at the first ';'.

    generic-param = token [ EQUAL gen-value ]; gen-value = token / host /
    quoted-string.  LWS is allowed around ';' and '='.
    """
    out: list[tuple[str, str | None]] = []
    i = 0
    n = len(text)
    while i < n:
        while i < n and text[i] in _WS:
            i += 1
        if i == n:
            break
        if text[i] != ";":
            raise HeaderError(header, f"expected ';' before {text[i : i + 20]!r}", value=text)
        i += 1
        m = _abnf.TOKEN_AT_RE.match(text, i)
        if m is None:
            raise HeaderError(header, "empty or invalid parameter name", value=text)
        name = m.group(1)
        i = m.end()
        while i < n and text[i] in _WS:
            i += 1
        if i < n and text[i] == "=":
            i += 1
            while i < n and text[i] in _WS:
                i += 1
            vm = _GEN_VALUE_RE.match(text, i)
            if vm is None or vm.end() == i:
                raise HeaderError(header, f"parameter {name!r} has no valid value", value=text)
            out.append((name, vm.group(0)))
            i = vm.end()
        else:
            out.append((name, None))
    return tuple(out)


def param_value(params: Params, name: str) -> str | None:
    """Plain value of a header parameter: quotes removed, flag -> ``""``."""
    raw = find_param(params, name)
    if raw is not None and raw.startswith('"'):
        return _abnf.unquote(raw)
    return raw


def _delta_seconds(text: str, header: str, whole: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise HeaderError(header, "expected delta-seconds", value=whole)
    number = int(text)
    if number > _MAX_DELTA:
        raise HeaderError(header, f"value exceeds {_MAX_DELTA}", value=whole)
    return number


#: Longest text the parsers' tables keep (a longer one is read every time).
_MAX_KEY: Final = 160
