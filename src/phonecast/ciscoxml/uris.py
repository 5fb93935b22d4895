"""Internal URIs (``Key:Services``, ``Dial:1234``...) and the URL rules.

Every URL field of a Cisco object (a menu item, a soft key, an Execute
item) holds either an http(s) URL the phone fetches or an *internal URI*
the phone runs itself.  Telling them apart matters twice: an Execute object
may carry at most one HTTP URL, and SPA / Multiplatform phones run only a
subset of the internal URIs (Key, SoftKey, Init, Dial, EditDial, Play) while
enterprise phones run them all.  A URI the target cannot run is refused here
with its reason instead of being silently dropped by the phone.

Grammar of the arguments, from the Cisco "IP Phone Services Application
Development Notes" (enough to catch typos, not a full re-implementation):

==================  =====================================================
``Key:n``           a key name, letters and digits (``Services``, ``Line1``)
``SoftKey:n``       a soft key name without blanks (``Exit``, ``<<``)
``Init:a``          an application name (``Services``, ``CallHistory``)
``Dial:d``          DTMF digits ``0-9 * # A-D`` and ``,`` (1 s pause), then
                    optionally ``:useAppUI:applicationId[:audibleFeedback]``
``EditDial:d``      DTMF digits as for Dial
``Play:f``          a file name (SPA / MPP: a ring tone)
``Display:On:m``    ``On`` or ``Off`` with minutes 0-1440 (0 = until
                    changed), or ``Display:Default``
``QueryStringParam:d``  data appended to a URL (anything printable)
``RTPRx:i:p[:v]``   address, even port 20480-32768, volume 0-100; or ``Stop``
``RTPTx:i:p``       address and even port; or ``Stop``
``RTPMRx:i:p[:v]``  as RTPRx, multicast address
``RTPMTx:i:p``      as RTPTx, multicast address
``Notify:proto:host:port:path[:credentials[:data]]``  proto ``http``
``SendDigits:d[:...]``  DTMF digits, then the phone's own fields
==================  =====================================================

SoftKey and Notify URIs are not allowed in an Execute object (the
development notes say so for both).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal
from urllib.parse import urlsplit

from phonecast.ciscoxml.errors import InvalidUriError
from phonecast.credentials import redact_uri

PhoneFamily = Literal["spa", "enterprise"]
"""``spa``: SPA300/500 and Multiplatform (MPP) firmware; ``enterprise``:
phones registered to Cisco Unified CM (the full internal URI set)."""


class UriKind(StrEnum):
    """The kinds of internal URI, spelled as the phones spell them."""

    KEY = "Key"
    SOFTKEY = "SoftKey"
    INIT = "Init"
    DIAL = "Dial"
    EDIT_DIAL = "EditDial"
    PLAY = "Play"
    DISPLAY = "Display"
    QUERY_STRING_PARAM = "QueryStringParam"
    RTP_RX = "RTPRx"
    RTP_TX = "RTPTx"
    RTP_MRX = "RTPMRx"
    RTP_MTX = "RTPMTx"
    NOTIFY = "Notify"
    SEND_DIGITS = "SendDigits"


SPA_KINDS: frozenset[UriKind] = frozenset(
    {UriKind.KEY, UriKind.SOFTKEY, UriKind.INIT, UriKind.DIAL, UriKind.EDIT_DIAL, UriKind.PLAY}
)
ENTERPRISE_KINDS: frozenset[UriKind] = frozenset(UriKind)
FAMILY_KINDS: Mapping[PhoneFamily, frozenset[UriKind]] = {
    "spa": SPA_KINDS,
    "enterprise": ENTERPRISE_KINDS,
}
#: Kinds an Execute object must not carry (they act on a displayed object
#: or start a background request the Execute context cannot own).
NOT_IN_EXECUTE: frozenset[UriKind] = frozenset({UriKind.SOFTKEY, UriKind.NOTIFY})

_KINDS_BY_LOWER = {kind.value.lower(): kind for kind in UriKind}
#: No blank and no control character anywhere (\S lets NUL through).
_HTTP = re.compile(r"https?://[^\s\x00-\x1f\x7f/?#]+[^\s\x00-\x1f\x7f]*", re.IGNORECASE)
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_SOFTKEY_NAME = re.compile(r"[^\s:]+")
_DIGITS = re.compile(r"[0-9*#A-D,]+")
_FILE = re.compile(r"[^\s:/\\]+")
_FIELD = re.compile(r"[^\s:;]*")
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]*")


def is_http_url(url: str) -> bool:
    """True for an absolute http:// or https:// URL with a host (a valid
    one, as the fetcher reads it), a port other than 0 if any, and no blanks
    or control characters (the phone fetches it and would send them raw);
    the scheme is compared case-insensitively, as RFC 3986 says."""
    if _HTTP.fullmatch(url) is None:
        return False
    # The authority as the fetcher will read it: a bracket left open, an
    # IPv6 reference that is none, a port out of range or 0 make no URL.
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return bool(parts.hostname) and port != 0


@dataclass(frozen=True, slots=True)
class InternalUri:
    """A parsed internal URI: ``kind`` and the ``argument`` after the first
    colon (``Display:On:10`` is kind ``Display``, argument ``On:10``)."""

    kind: UriKind
    argument: str

    def __post_init__(self) -> None:
        if not isinstance(self.kind, UriKind):  # a plain "Key" is accepted too
            spelled = f"{self.kind}:{self.argument}"
            object.__setattr__(self, "kind", _kind_of(str(self.kind), spelled))
        _ARGUMENT_CHECKS[self.kind](self.argument, str(self))

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.argument}"

    @classmethod
    def parse(cls, uri: str) -> InternalUri:
        """The internal URI spelled by ``uri``; the kind is matched without
        regard to case (``key:services`` is ``Key:services``), the argument
        is kept as written.  Raises :class:`InvalidUriError` otherwise."""
        name, colon, argument = uri.partition(":")
        if not colon:
            raise InvalidUriError("URI", "URL", f"{redact_uri(uri)!r} is not a URI (no colon)")
        return cls(_kind_of(name, uri), argument)

    def supported_by(self, family: PhoneFamily) -> bool:
        """Whether phones of ``family`` run this URI."""
        return self.kind in FAMILY_KINDS[family]


def classify_uri(url: str) -> InternalUri | None:
    """``None`` for an http(s) URL, the parsed :class:`InternalUri` for an
    internal one; :class:`InvalidUriError` for anything else (``ftp:``, a
    relative path, a typo such as ``Dail:123``)."""
    if is_http_url(url):
        return None
    if url.lower().startswith(("http:", "https:")):
        raise InvalidUriError(
            "URI",
            "URL",
            f"{redact_uri(url)!r} is not an absolute http(s) URL with a valid host and port"
            " and no blanks or control characters",
        )
    return InternalUri.parse(url)


def check_uri(
    url: str,
    *,
    family: PhoneFamily = "enterprise",
    in_execute: bool = False,
    owner: str = "URI",
    field: str = "URL",
) -> InternalUri | None:
    """Validate ``url`` for a phone of ``family`` (and for an Execute object
    when ``in_execute``); returns what :func:`classify_uri` returns.

    ``owner`` and ``field`` name the element in the error message, so the
    caller learns *which* URL of an object is at fault."""
    try:
        uri = classify_uri(url)
    except InvalidUriError as exc:
        raise InvalidUriError(owner, field, f"{field} {exc.detail}") from None
    if uri is None:
        return None
    if in_execute and uri.kind in NOT_IN_EXECUTE:
        raise InvalidUriError(
            owner,
            field,
            f"{field} {redact_uri(url)!r}: {uri.kind.value}: URIs are not allowed in Execute",
        )
    if not uri.supported_by(family):
        supported = ", ".join(sorted(k.value for k in FAMILY_KINDS[family]))
        raise InvalidUriError(
            owner,
            field,
            f"{field} {redact_uri(url)!r}: {family} phones do not run {uri.kind.value}: URIs "
            f"(they run {supported})",
        )
    return uri


# ------------------------------------------------------------ argument rules


def _kind_of(name: str, uri: str) -> UriKind:
    kind = _KINDS_BY_LOWER.get(name.lower())
    if kind is None:
        known = ", ".join(k.value for k in UriKind)
        raise InvalidUriError(
            "URI",
            "URL",
            f"{redact_uri(uri)!r} is neither an http(s) URL nor an internal URI ({known})",
        )
    return kind


def _bad(uri: str, rule: str) -> InvalidUriError:
    return InvalidUriError("URI", "URL", f"{redact_uri(uri)!r}: {rule}")


def _full(pattern: re.Pattern[str], rule: str) -> Callable[[str, str], None]:
    def check(argument: str, uri: str) -> None:
        if pattern.fullmatch(argument) is None:
            raise _bad(uri, rule)

    return check


def _check_dial(argument: str, uri: str) -> None:
    digits, *rest = argument.split(":")
    if _DIGITS.fullmatch(digits) is None:
        raise _bad(uri, "the dial sequence takes DTMF digits 0-9 * # A-D and ',' only")
    if len(rest) > 3 or any(_FIELD.fullmatch(part) is None for part in rest):
        raise _bad(uri, "at most three further ':' fields, without blanks")


def _check_edit_dial(argument: str, uri: str) -> None:
    if _DIGITS.fullmatch(argument) is None:
        raise _bad(uri, "EditDial takes DTMF digits 0-9 * # A-D and ',' only")


def _check_display(argument: str, uri: str) -> None:
    if argument == "Default":
        return
    state, colon, minutes = argument.partition(":")
    if state not in ("On", "Off") or not colon or not minutes.isascii() or not minutes.isdigit():
        raise _bad(uri, "Display takes On:<minutes>, Off:<minutes> or Default")
    if int(minutes) > 1440:
        raise _bad(uri, f"Display interval {minutes} minutes, at most 1440 allowed")


def _rtp(multicast: bool, volume: bool) -> Callable[[str, str], None]:
    """RTP stream URIs: ``address:port[:volume]`` or ``Stop``."""

    def check(argument: str, uri: str) -> None:
        if argument == "Stop":
            return
        parts = argument.split(":")
        if not 2 <= len(parts) <= (3 if volume else 2):
            shape = "address:port[:volume]" if volume else "address:port"
            raise _bad(uri, f"expected {shape} or Stop")
        address, port = parts[0], parts[1]
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            if multicast or _SOFTKEY_NAME.fullmatch(address) is None:
                raise _bad(uri, f"{address!r} is not an IP address") from None
        else:
            if multicast and not ip.is_multicast:
                raise _bad(uri, f"{address} is not a multicast address")
        if not (port.isascii() and port.isdigit() and 20480 <= int(port) <= 32768):
            raise _bad(uri, "the port must be a number from 20480 to 32768")
        if int(port) % 2:
            raise _bad(uri, f"RTP port {port} is odd; RTP uses even ports")
        if len(parts) == 3 and not (parts[2].isascii() and parts[2].isdigit()):
            raise _bad(uri, "the volume must be a percentage 0-100")
        if len(parts) == 3 and int(parts[2]) > 100:
            raise _bad(uri, f"volume {parts[2]}%, at most 100 allowed")

    return check


def _check_notify(argument: str, uri: str) -> None:
    parts = argument.split(":")
    if not 4 <= len(parts) <= 6:
        raise _bad(uri, "expected Notify:http:host:port:path[:credentials[:data]]")
    protocol, host, port, path = parts[:4]
    if protocol != "http":
        raise _bad(uri, f"Notify protocol {protocol!r}; http is the only one phones support")
    if not host or _FIELD.fullmatch(host) is None:
        raise _bad(uri, "Notify needs a host")
    if not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        raise _bad(uri, "Notify port must be 1-65535")
    if any(_FIELD.fullmatch(part) is None for part in (path, *parts[4:])):
        raise _bad(uri, "Notify fields cannot contain blanks or semicolons")


def _check_send_digits(argument: str, uri: str) -> None:
    digits, *rest = argument.split(":")
    if _DIGITS.fullmatch(digits) is None:
        raise _bad(uri, "SendDigits takes DTMF digits 0-9 * # A-D and ',' only")
    if len(rest) > 3 or any(_FIELD.fullmatch(part) is None for part in rest):
        raise _bad(uri, "at most three further ':' fields, without blanks")


_ARGUMENT_CHECKS: Mapping[UriKind, Callable[[str, str], None]] = {
    UriKind.KEY: _full(_NAME, "a key name is letters and digits (Key:Services)"),
    UriKind.SOFTKEY: _full(_SOFTKEY_NAME, "a soft key name without blanks (SoftKey:Exit)"),
    UriKind.INIT: _full(_NAME, "an application name is letters and digits (Init:Services)"),
    UriKind.DIAL: _check_dial,
    UriKind.EDIT_DIAL: _check_edit_dial,
    UriKind.PLAY: _full(_FILE, "a file name without blanks, colons or slashes"),
    UriKind.DISPLAY: _check_display,
    UriKind.QUERY_STRING_PARAM: _full(_PRINTABLE, "no control characters"),
    UriKind.RTP_RX: _rtp(multicast=False, volume=True),
    UriKind.RTP_TX: _rtp(multicast=False, volume=False),
    UriKind.RTP_MRX: _rtp(multicast=True, volume=True),
    UriKind.RTP_MTX: _rtp(multicast=True, volume=False),
    UriKind.NOTIFY: _check_notify,
    UriKind.SEND_DIGITS: _check_send_digits,
}
