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
(:func:`page_refusal` says why not).
"""

from __future__ import annotations

from typing import Final

from phonecast.ciscoxml import PARSE_ERROR, CiscoXmlError, check_family, is_http_url, parse_execute
from phonecast.ciscoxml.uris import SPA_KINDS
from phonecast.credentials import redact_uri

__all__ = ["INTERNAL_SCHEMES", "PAGE_MEDIA_TYPE", "page_refusal", "xml_service_items"]

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
    text = body.decode("utf-8", "replace")
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
