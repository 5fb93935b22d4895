"""What an emulated SPA takes in an XML-Service body."""

from __future__ import annotations

import pytest

from phonecast.ciscoxml import CiscoXmlError
from phonecast.phone.bodies import page_refusal, xml_service_items

_EXECUTE = (
    '<CiscoIPPhoneExecute><ExecuteItem Priority="1" URL="http://h/a.xml"/></CiscoIPPhoneExecute>'
)


@pytest.mark.parametrize(
    "encoded",
    [
        b"\xef\xbb\xbf" + _EXECUTE.encode(),  # UTF-8 with its byte order mark
        _EXECUTE.encode("utf-16"),  # UTF-16, its mark first
        b"\r\n" + _EXECUTE.encode(),
    ],
)
def test_an_execute_body_with_a_byte_order_mark_is_read_as_xml(encoded: bytes) -> None:
    """The XML parser reads these; the check that sends a body to it
    looked for a bare ``<`` and took them for a URL that was none."""
    assert xml_service_items(encoded) == [("http://h/a.xml", 1)]


@pytest.mark.parametrize(
    ("body", "items"),
    [
        (b"http://10.0.0.2/alert.xml", [("http://10.0.0.2/alert.xml", 0)]),
        (b"HTTPS://phones.example/a?b=1", [("HTTPS://phones.example/a?b=1", 0)]),
        (b"  http://10.0.0.2/alert.xml\r\n", [("http://10.0.0.2/alert.xml", 0)]),
        (
            b'<CiscoIPPhoneExecute><ExecuteItem Priority="1" URL="http://h/a.xml"/>'
            b'<ExecuteItem URL="Key:Services"/></CiscoIPPhoneExecute>',
            [("http://h/a.xml", 1), ("Key:Services", 0)],
        ),
    ],
)
def test_urls_and_execute_objects_are_what_the_phone_acts_on(
    body: bytes, items: list[tuple[str, int]]
) -> None:
    assert xml_service_items(body) == items


@pytest.mark.parametrize(
    "body",
    [
        b"hello world",
        b"",
        b"   \r\n",
        b"ftp://x",
        b"ftp://10.0.0.2/alert.xml",
        b"Key:Services",  # an internal URI travels in an Execute, not bare
        b"http://",  # no host
        b"http:///alert.xml",
        b"http://10.0.0.2/a\x00.xml",  # a control character the GET would carry raw
        b"http://10.0.0.2:0/alert.xml",
        b"http://10.0.0.2/a b.xml",  # a blank the phone would send raw
        b"http://10.0.0.2/a.xml\r\nhttp://10.0.0.3/b.xml",
        b"10.0.0.2/alert.xml",
    ],
)
def test_any_other_body_is_a_cisco_parse_error(body: bytes) -> None:
    with pytest.raises(CiscoXmlError, match="neither an http\\(s\\) URL") as caught:
        xml_service_items(body)
    assert caught.value.number == 1


def test_a_refused_url_body_is_quoted_without_its_password() -> None:
    with pytest.raises(CiscoXmlError) as caught:
        xml_service_items(b"http://admin:Hunter2secret@10.0.0.2/a b.xml")
    assert "Hunter2secret" not in str(caught.value)
    assert "http://admin:***@10.0.0.2/a b.xml" in str(caught.value)


def test_a_long_body_is_quoted_short_in_the_error() -> None:
    with pytest.raises(CiscoXmlError) as caught:
        xml_service_items(b"x" * 10_000)
    assert len(str(caught.value)) < 200 and "..." in str(caught.value)


def test_strict_url_body_refuses_surrounding_blanks() -> None:
    assert xml_service_items(b"http://h/a.xml", strict_url_body=True) == [("http://h/a.xml", 0)]
    with pytest.raises(CiscoXmlError, match="surrounding white space") as caught:
        xml_service_items(b"http://h/a.xml\r\n", strict_url_body=True)
    assert caught.value.number == 1


def _execute(*urls: str) -> bytes:
    items = "".join(f'<ExecuteItem URL="{url}"/>' for url in urls)
    return f"<CiscoIPPhoneExecute>{items}</CiscoIPPhoneExecute>".encode()


@pytest.mark.parametrize(
    "uri",
    [
        "RTPRx:10.0.0.1:20480",
        "RTPTx:Stop",
        "RTPMRx:239.1.1.1:20480:50",
        "Display:On:10",
        "SendDigits:1234",
        "QueryStringParam:a=1",
    ],
)
def test_internal_uris_an_spa_does_not_run_refuse_the_whole_execute(uri: str) -> None:
    with pytest.raises(CiscoXmlError) as caught:
        xml_service_items(_execute("Key:Services", uri))
    assert caught.value.number == 1
    assert "ExecuteItem[2]" in str(caught.value) and "spa phones do not run" in str(caught.value)


@pytest.mark.parametrize(
    "uri", ["Key:Services", "Init:CallHistory", "Dial:1234", "EditDial:55", "Play:ring1"]
)
def test_internal_uris_an_spa_runs_pass(uri: str) -> None:
    assert xml_service_items(_execute(uri, "http://h/a.xml")) == [(uri, 0), ("http://h/a.xml", 0)]


@pytest.mark.parametrize(
    "content_type", ["text/xml", "TEXT/XML", "text/xml; charset=utf-8", ' Text/Xml ;charset="x"']
)
def test_a_page_served_as_text_xml_is_shown(content_type: str) -> None:
    assert page_refusal(content_type) is None


@pytest.mark.parametrize(
    ("content_type", "named"),
    [
        ("text/plain", "'text/plain'"),
        ("text/html; charset=utf-8", "'text/html'"),
        ("application/xml", "'application/xml'"),
        ("application/xhtml+xml", "'application/xhtml+xml'"),
        ("text/xml-external-parsed-entity", "'text/xml-external-parsed-entity'"),
        ("", "no Content-Type"),
        (None, "no Content-Type"),
        ("x" * 5000, "..."),
    ],
)
def test_a_page_served_as_anything_else_is_refused_naming_the_type(
    content_type: str | None, named: str
) -> None:
    refusal = page_refusal(content_type)
    assert refusal is not None and named in refusal and len(refusal) < 200


@pytest.mark.parametrize(
    ("body", "url"),
    [
        ("http://h/a.xml?n=ā".encode("iso-8859-4"), "http://h/a.xml?n=%E0"),
        ("http://h/ü.xml".encode(), "http://h/%C3%BC.xml"),
        (b"http://h/a.xml?x=\xff\xfe", "http://h/a.xml?x=%FF%FE"),
    ],
)
def test_octets_outside_ascii_in_a_url_body_are_passed_on_percent_encoded(
    body: bytes, url: str
) -> None:
    """Decoded as UTF-8 with replacement, ``?n=ā`` in ISO-8859-4 became
    ``?n=\\ufffd``: the phone fetched a URL nobody sent."""
    assert xml_service_items(body) == [(url, 0)]
