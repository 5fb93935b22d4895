"""What a push carries: the Event, the body and its Content-Type.

Two body forms for XML-Service (sources disagree; phonecast supports both):
a bare URL with no trailing CR/LF (Cisco's knowledge base: SPA500 firmware
7.4.4 and later accept only this; its example uses ``text/html``), or a
``CiscoIPPhoneExecute`` object (the admin guides' example, ``text/xml``).
Sibling events (resync, reboot...) carry no body.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from phonecast.ciscoxml import is_http_url
from phonecast.credentials import redact_uri
from phonecast.push.profiles import VendorProfile, get_profile

DEFAULT_URL_TYPE = "text/html"
DEFAULT_EXECUTE_TYPE = "text/xml"


class PayloadError(ValueError):
    """The payload cannot be built (bad URL, Execute over its limits...)."""


def check_header_value(name: str, value: str) -> str:
    """``value`` if it may stand as the value of header ``name``, else a
    :class:`PayloadError` naming the header and the character.

    A CR or LF in a value ends the header there and starts another of the
    sender's choosing (header injection); the other controls (C0, DEL,
    C1) have no place in a header value either (RFC 3261 25.1, TEXT-UTF8char
    excludes them).  Checked where a value is made, so that no caller of the
    library, not only the command line, can inject.  The value itself is
    not shown: it may be anything."""
    for char in value:
        code = ord(char)
        if code < 0x20 or 0x7F <= code <= 0x9F:
            raise PayloadError(f"{name} may not contain the control character {char!r}")
    return value


@dataclass(frozen=True, slots=True)
class Payload:
    """The Event header value, body and Content-Type of one NOTIFY."""

    event: str
    body: bytes = b""
    content_type: str | None = None
    #: For reports: ``url``, ``execute`` or ``event``.
    kind: str = "event"
    #: The URL the phone should fetch (for confirmation), if any.
    url: str | None = None

    def __post_init__(self) -> None:
        if not check_header_value("Event", self.event).strip():
            raise PayloadError("Event may not be empty")
        if self.content_type is not None:
            check_header_value("Content-Type", self.content_type)


def _check_url(url: str) -> str:
    """The URL as the phone will take it (``ciscoxml.is_http_url``, which the
    emulator uses too): refused here, it would be a CiscoIPPhoneError on the
    phone after a 200, which the pusher would report as delivered."""
    if not (url.startswith("http://") or url.startswith("https://")):
        raise PayloadError(f"the phone fetches http:// or https:// URLs, not {redact_uri(url)!r}")
    if not is_http_url(url):
        raise PayloadError(
            f"not a URL the phone takes: {redact_uri(url)!r} (a host, a port from 1 to"
            " 65535, and no blanks or control characters)"
        )
    return url


def url_payload(
    url: str, *, content_type: str | None = None, event: str = "XML-Service"
) -> Payload:
    """Body = the URL itself, no trailing CR/LF."""
    return Payload(
        event, _check_url(url).encode("utf-8"), content_type or DEFAULT_URL_TYPE, "url", url
    )


def execute_payload(
    items: Sequence[str],
    *,
    priority: int = 0,
    content_type: str | None = None,
    event: str = "XML-Service",
) -> Payload:
    """Body = a CiscoIPPhoneExecute with up to three items (URLs or internal URIs)."""
    from phonecast.ciscoxml import CiscoXmlError, Execute, ExecuteItem, to_xml

    try:
        obj = Execute(tuple(ExecuteItem(url=item, priority=priority) for item in items))
        body = to_xml(obj)
    except CiscoXmlError as exc:
        raise PayloadError(str(exc)) from None
    url = next((i for i in items if i.startswith(("http://", "https://"))), None)
    return Payload(event, body, content_type or DEFAULT_EXECUTE_TYPE, "execute", url)


def action_payload(action: str, vendor: str | VendorProfile | None = None) -> Payload:
    """A sibling event with no body (resync, reboot, restart, report)."""
    profile = vendor if isinstance(vendor, VendorProfile) else get_profile(vendor)
    return Payload(profile.event_for(action))
