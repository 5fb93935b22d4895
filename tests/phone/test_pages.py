"""What the emulated SPA does with the pages it fetches beyond showing them:
an Execute served as a page is run (and its chains bounded), a served
CiscoIPPhoneError is reported with its own number, a Response is no page,
and a page is read in the charset its Content-Type names."""

from __future__ import annotations

import pytest

from phonecast.ciscoxml import Execute, Text, to_xml
from phonecast.phone.bodies import Page, read_page
from phonecast.phone.pushes import MAX_EXECUTE_HOPS
from phonecast.push.payload import url_payload
from tests.phone.test_emulator import Rig, rig
from tests.waiting import until

__all__ = ["rig"]  # the fixture, shared with the emulator's tests


async def test_an_execute_served_as_a_page_is_run_not_shown(rig: Rig) -> None:
    """Its Dial: is dialled (the phone busy), its URL fetched and shown;
    every event names the line the push came in on."""
    shown = rig.content.publish("desk", to_xml(Text("Lobby", None, (), "Visitor")))
    execute = to_xml(Execute.of(shown, "Dial:5551234"))
    first = rig.content.publish("desk", execute)
    assert (await rig.push(1, "other", url_payload(first))).delivered
    await until(lambda: rig.kinds("screen"), what="the page the Execute named, shown")
    assert [e["title"] for e in rig.kinds("screen")] == ["Lobby"]
    assert [e["action"] for e in rig.kinds("action")] == ["Dial:5551234"]
    phone = rig.host.phones["desk"]
    assert phone.calls.busy and "Dial:5551234" in phone.actions
    for kind in ("fetch_started", "fetch_finished", "action", "screen"):
        assert {e["line"] for e in rig.kinds(kind)} == {"1002"}, kind


async def test_an_execute_page_naming_itself_is_followed_a_bounded_number_of_times(
    rig: Rig,
) -> None:
    url = rig.content.url_for("loop")
    rig.content.publish_token("loop", "desk", to_xml(Execute.of(url)))
    assert (await rig.push(0, "secret", url_payload(url))).delivered
    await until(lambda: rig.kinds("xml_error"), what="the loop's end")
    assert len(rig.kinds("fetch_finished")) == MAX_EXECUTE_HOPS + 1
    (error,) = rig.kinds("xml_error")
    assert "a loop?" in error["detail"] and error["line"] == "1001"
    assert rig.kinds("screen") == []


async def test_a_served_cisco_error_is_reported_with_its_number_and_message(rig: Rig) -> None:
    body = b'<CiscoIPPhoneError Number="4">login needed</CiscoIPPhoneError>'
    url = rig.content.publish("desk", body)
    assert (await rig.push(0, "secret", url_payload(url))).delivered
    await until(lambda: rig.kinds("xml_error"), what="the served error reported")
    (error,) = rig.kinds("xml_error")
    assert error["number"] == 4 and "login needed" in error["detail"]
    assert rig.kinds("screen") == [] and rig.host.phones["desk"].screen.kind == "idle"


def test_a_response_object_is_no_page() -> None:
    body = b'<CiscoIPPhoneResponse><ResponseItem Status="0" Data="x" URL="Key:Services"/>'
    body += b"</CiscoIPPhoneResponse>"
    with pytest.raises(ValueError, match="CiscoIPPhoneResponse") as caught:
        read_page(body, "text/xml")
    assert getattr(caught.value, "number", None) == 1


_TEXT = "<CiscoIPPhoneText><Title>Café</Title><Text>ā</Text></CiscoIPPhoneText>"


@pytest.mark.parametrize(
    ("body", "content_type", "title"),
    [
        (_TEXT.encode("iso-8859-4"), "text/xml; charset=ISO-8859-4", "Café"),
        (_TEXT.encode("iso-8859-4"), 'text/xml; Charset="iso-8859-4"', "Café"),
        (_TEXT.encode(), "text/xml", "Café"),  # no charset: UTF-8
        (_TEXT.encode(), "text/xml; charset=utf-8", "Café"),
        # A declared encoding governs, whatever the Content-Type says.
        (
            b'<?xml version="1.0" encoding="ISO-8859-1"?>'
            + "<CiscoIPPhoneText><Title>Café</Title></CiscoIPPhoneText>".encode("iso-8859-1"),
            "text/xml; charset=utf-8",
            "Café",
        ),
    ],
)
def test_a_page_is_read_in_the_charset_its_content_type_names(
    body: bytes, content_type: str, title: str
) -> None:
    """Served as ISO-8859-1 without a declaration, a page was read as
    UTF-8 and refused as broken (RFC 7303 3)."""
    page = read_page(body, content_type)
    assert isinstance(page, Page) and page.screen is not None and page.screen.title == title


@pytest.mark.parametrize(
    ("content_type", "why"),
    [
        ("text/xml; charset=klingon", "unknown charset 'klingon'"),
        ("text/xml; charset=ascii", "not ascii"),
    ],
)
def test_a_charset_that_cannot_be_read_is_a_parse_error_naming_it(
    content_type: str, why: str
) -> None:
    with pytest.raises(ValueError, match=why):
        read_page(_TEXT.encode("iso-8859-4"), content_type)


def test_a_page_near_the_cap_in_a_single_byte_charset_is_read_whole() -> None:
    """Transcoded to UTF-8 before the 64 KiB cap applied, a 40 KB Latin-1
    page grew to 80 and was refused as too large."""
    text = "é" * 40_000
    body = f"<CiscoIPPhoneText><Title>t</Title><Text>{text}</Text></CiscoIPPhoneText>"
    page = read_page(body.encode("iso-8859-1"), "text/xml; charset=ISO-8859-1")
    assert page.screen is not None and page.screen.text == text


@pytest.mark.parametrize("charset", ["undefined", "rot13"])
def test_a_codec_that_reads_no_text_is_an_unknown_charset(charset: str) -> None:
    with pytest.raises(ValueError, match=f"unknown charset '{charset}'") as caught:
        read_page(
            b"<CiscoIPPhoneText><Text>x</Text></CiscoIPPhoneText>", f"text/xml; charset={charset}"
        )
    assert getattr(caught.value, "number", None) == 1
