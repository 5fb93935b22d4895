"""What an emulated SPA takes in an XML-Service body."""

from __future__ import annotations

import pytest

from phonecast.ciscoxml import CiscoXmlError
from phonecast.phone.bodies import xml_service_items


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
        b"http://10.0.0.2/a b.xml",  # a blank the phone would send raw
        b"http://10.0.0.2/a.xml\r\nhttp://10.0.0.3/b.xml",
        b"10.0.0.2/alert.xml",
    ],
)
def test_any_other_body_is_a_cisco_parse_error(body: bytes) -> None:
    with pytest.raises(CiscoXmlError, match="neither an http\\(s\\) URL") as caught:
        xml_service_items(body)
    assert caught.value.number == 1


def test_a_long_body_is_quoted_short_in_the_error() -> None:
    with pytest.raises(CiscoXmlError) as caught:
        xml_service_items(b"x" * 10_000)
    assert len(str(caught.value)) < 200 and "..." in str(caught.value)


def test_strict_url_body_refuses_surrounding_blanks() -> None:
    assert xml_service_items(b"http://h/a.xml", strict_url_body=True) == [("http://h/a.xml", 0)]
    with pytest.raises(CiscoXmlError, match="surrounding white space") as caught:
        xml_service_items(b"http://h/a.xml\r\n", strict_url_body=True)
    assert caught.value.number == 1
