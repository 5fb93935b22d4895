"""What an emulated SPA takes: XML-Service bodies, and the pages it fetches.

An accepted XML-Service NOTIFY is answered 200 before its body is looked
at, so a body the phone cannot act on is not refused in SIP: the phone
reports it as a CiscoIPPhoneError (Number 1, "parse error") and does
nothing else.  The field guide knows two body forms, a bare http(s) URL and
a CiscoIPPhoneExecute object; this module tells them apart from everything
else, so that nothing else is ever taken for a URL and fetched.

On top of the XML parser's rules it applies the SPA's own: of the internal
URIs an SPA runs only Key, SoftKey, Init, Dial, EditDial and Play (field
guide), so an Execute that carries RTPRx:, Display:, SendDigits:... is
refused whole, with the same CiscoIPPhoneError 1 as one that breaks Cisco's
rules (four items, a SoftKey: item), naming the item at fault.  The phone
the emulator stands for cannot run it, and a test that passes here must
pass on the phone.

A page the phone fetched is shown only if it was served as ``text/xml``
(:func:`page_refusal` says why not), read in the charset its Content-Type
names when the XML declares none (:func:`read_page`).  A fetched
CiscoIPPhoneExecute is run, not shown; a fetched CiscoIPPhoneError is
reported with its own number, and a CiscoIPPhoneResponse (what a phone
answers to an Execute posted to it) is no page at all.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

from phonecast.ciscoxml import (
    PARSE_ERROR,
    CiscoXmlError,
    Error,
    Execute,
    Response,
    check_family,
    is_http_url,
    parse,
    parse_execute,
)
from phonecast.ciscoxml.parser import MAX_BYTES
from phonecast.ciscoxml.uris import SPA_KINDS
from phonecast.credentials import redact_uri
from phonecast.phone.screen import Screen, object_to_screen

__all__ = [
    "INTERNAL_SCHEMES",
    "PAGE_MEDIA_TYPE",
    "Page",
    "page_refusal",
    "read_page",
    "xml_service_items",
]

#: The internal URIs an SPA runs, as lower-case prefixes (``key:``...): an
#: item :func:`xml_service_items` returns is one of these or an http(s) URL.
INTERNAL_SCHEMES: Final = tuple(sorted(kind.value.lower() + ":" for kind in SPA_KINDS))

#: How an XML body can begin: its first tag (or declaration), or the byte
#: order mark of UTF-8 or UTF-16 before it, which the XML parser reads.
_XML_STARTS: Final = (b"<", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
#: The one media type of a page the phone shows.
PAGE_MEDIA_TYPE: Final = "text/xml"
#: Longest piece of a peer's text (a URL body, a Content-Type) quoted in an error.
_QUOTED: Final = 60


def xml_service_items(body: bytes, *, strict_url_body: bool = False) -> list[tuple[str, int]]:
    """``(http(s) URL or internal URI, priority)`` for each thing an accepted
    XML-Service ``body`` asks the phone to do.

    A body starting with ``<`` (after blanks, or a byte order mark) must be a CiscoIPPhoneExecute
    whose internal URIs an SPA runs; any other body must be one absolute
    http(s) URL with a host, surrounded by nothing but blanks (and by
    nothing at all with ``strict_url_body``, as SPA500 firmware 7.4.4 and
    later want).  The phone fetches only http and https
    (:func:`is_http_url`), so ``ftp://x``, ``hello world``, a bare
    ``Key:Services`` or an empty body are not URLs.

    Raises :class:`~phonecast.ciscoxml.CiscoXmlError` (a ``ValueError``)
    for anything else; its ``number`` is the CiscoIPPhoneError the phone
    reports.
    """
    if body.lstrip(b" \t\r\n").startswith(_XML_STARTS):
        execute = parse_execute(body)
        check_family(execute, "spa")
        return [(item.url, item.priority) for item in execute.items]
    text = _octets_as_url_text(body)
    url = text.strip()
    if strict_url_body and url != text:
        raise CiscoXmlError("URL body has surrounding white space or CR/LF", number=PARSE_ERROR)
    if not is_http_url(url):
        # Quoted into the xml_error event: a URL that failed only for a
        # blank or a control character may still carry user:password@.
        shown = redact_uri(url)
        shown = shown if len(shown) <= _QUOTED else shown[:_QUOTED] + "..."
        raise CiscoXmlError(
            f"body {shown!r} is neither an http(s) URL nor a CiscoIPPhoneExecute object",
            number=PARSE_ERROR,
        )
    return [(url, 0)]


def _octets_as_url_text(body: bytes) -> str:
    """A URL body as text, each octet outside ASCII percent-encoded as sent.

    A URL is ASCII (RFC 3986 2); a sender that put ``?n=ā`` in it wrote
    octets of its charset (the knowledge base's example declares
    ISO-8859-4), which only the server it names can read.  Passing them on
    as ``%E0`` keeps them; decoding them as UTF-8 with replacement made the
    phone fetch a URL (``?n=\ufffd``) that nobody sent.
    """
    if body.isascii():
        return body.decode("ascii")
    return "".join(chr(octet) if octet < 0x80 else f"%{octet:02X}" for octet in body)


def page_refusal(content_type: str | None) -> str | None:
    """Why the phone would not show a page served with ``content_type``
    (the Content-Type field as received, None or '' when there was none),
    or None when it would.

    The media type is compared without regard to case and without its
    parameters (RFC 9110 8.3.1: ``TEXT/XML; charset=utf-8`` is text/xml).
    Only text/xml passes, not application/xml nor ``+xml`` types: the field
    guide says pages are "served as text/xml" and knows of no SPA that takes
    another type, and the issue names text/xml alone.  An emulator that took
    more would pass a content server that a real phone might refuse; one
    that is strict can only make a test fail that the phone might pass, and
    that failure names the type.
    """
    media = (content_type or "").partition(";")[0].strip().lower()
    if media == PAGE_MEDIA_TYPE:
        return None
    if not media:
        return f"the page has no Content-Type (the phone shows {PAGE_MEDIA_TYPE} only)"
    shown = media if len(media) <= _QUOTED else media[:_QUOTED] + "..."
    return f"Content-Type {shown!r} is not {PAGE_MEDIA_TYPE}, the only type the phone shows"


@dataclass(frozen=True, slots=True)
class Page:
    """What a fetched page makes the phone do: show ``screen``, or, for a
    CiscoIPPhoneExecute served as a page, run ``items`` (``(URI, priority)``
    each, as :func:`xml_service_items` gives them)."""

    screen: Screen | None = None
    items: tuple[tuple[str, int], ...] = ()


#: An XML declaration that names its encoding (which then governs, as the
#: field guide says the phone reads it), within its first 200 octets.
_DECLARED: Final = re.compile(rb"<\?xml[^?>]{0,200}?\sencoding\s*=")
#: The charset parameter of a Content-Type, a registered name's length at most.
_CHARSET: Final = re.compile(r';\s*charset\s*=\s*"?([A-Za-z0-9._:+-]{1,40})"?', re.IGNORECASE)
_BOMS: Final = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def _in_its_charset(body: bytes, content_type: str | None) -> bytes:
    """``body`` as the XML parser should read it: as it is when it starts
    with a byte order mark or declares its encoding, else transcoded from
    the charset its Content-Type names (RFC 7303 3: for text/xml that
    parameter is the encoding; without one the phone assumes UTF-8, its
    locale's).  A page in ISO-8859-1 served as such was refused as broken
    UTF-8.  Raises :class:`CiscoXmlError` (parse error) for an unknown
    charset or octets it cannot hold."""
    found = _CHARSET.search(content_type or "")
    if found is None or body.startswith(_BOMS) or _DECLARED.match(body):
        return body
    charset = found.group(1)
    try:
        text = body.decode(charset)
    except UnicodeDecodeError as exc:
        raise CiscoXmlError(
            f"the page is not {charset}: octet {exc.start} cannot be read", number=PARSE_ERROR
        ) from None
    except (LookupError, UnicodeError):  # no such codec, or none for text (idna)
        raise CiscoXmlError(
            f"unknown charset {charset!r} in Content-Type", number=PARSE_ERROR
        ) from None
    return text.encode("utf-8")


def read_page(body: bytes, content_type: str | None = None) -> Page:
    """What a page served with ``content_type`` makes the phone do.

    Raises :class:`CiscoXmlError` for what the phone reports instead: an
    object it refuses (its CiscoIPPhoneError number), a CiscoIPPhoneError
    the server sent (that number, and its message), a CiscoIPPhoneResponse.
    Memoised per body and type (small bodies; errors are not cached), as
    :func:`~phonecast.phone.screen.screen_for`: a campaign's fleet fetches
    the same page."""
    if len(body) > 8192:
        return _read_page(body, content_type)
    return _read_small_page(body, content_type)


@functools.lru_cache(maxsize=256)
def _read_small_page(body: bytes, content_type: str | None) -> Page:
    return _read_page(body, content_type)


def _read_page(body: bytes, content_type: str | None) -> Page:
    readable = _in_its_charset(body, content_type)
    # The size cap is the page's as served: transcoded to UTF-8, a Latin-1
    # page of 40 KB grows to 80 and was refused as too large.
    cap = max(MAX_BYTES, len(readable)) if len(body) <= MAX_BYTES else MAX_BYTES
    obj = parse(readable, max_bytes=cap)
    if isinstance(obj, Execute):
        check_family(obj, "spa")
        return Page(items=tuple((item.url, item.priority) for item in obj.items))
    if isinstance(obj, Error):
        message = obj.message if len(obj.message) <= _QUOTED else obj.message[:_QUOTED] + "..."
        raise CiscoXmlError(
            f"the server sent CiscoIPPhoneError {obj.number}: {message!r}", number=obj.number
        )
    if isinstance(obj, Response):
        raise CiscoXmlError(
            "a CiscoIPPhoneResponse answers an Execute posted to a phone; it is no page",
            number=PARSE_ERROR,
        )
    return Page(screen=object_to_screen(obj))
