"""The writer: declared UTF-8, escaping, only the defined elements."""

from __future__ import annotations

import re

import pytest
from hypothesis import given

from phonecast.ciscoxml import (
    CONTENT_TYPE,
    CiscoObject,
    Error,
    Execute,
    ExecuteItem,
    InvalidObjectError,
    Menu,
    MenuItem,
    Response,
    ResponseItem,
    SoftKeyItem,
    Status,
    Text,
    escape_attribute,
    escape_text,
    parse,
    to_xml,
)
from phonecast.ciscoxml.objects import OBJECT_CLASSES

from .strategies import OBJECTS

DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'


def body(obj: CiscoObject) -> str:
    data = to_xml(obj)
    assert data.startswith(DECLARATION)
    return data[len(DECLARATION) :].decode("utf-8")


def test_text_object_exactly() -> None:
    assert body(Text(title="Facilities", text="Fire drill at 10:00")) == (
        "<CiscoIPPhoneText><Title>Facilities</Title>"
        "<Text>Fire drill at 10:00</Text></CiscoIPPhoneText>"
    )
    assert CONTENT_TYPE == "text/xml; charset=utf-8"


def test_execute_exactly() -> None:
    assert body(Execute.of("http://h/a.xml?x=1&y=2", "Key:Services", priority=1)) == (
        "<CiscoIPPhoneExecute>"
        '<ExecuteItem Priority="1" URL="http://h/a.xml?x=1&amp;y=2"/>'
        '<ExecuteItem Priority="0" URL="Key:Services"/>'
        "</CiscoIPPhoneExecute>"
    )


def test_error_and_response_exactly() -> None:
    assert body(Error(4)) == '<CiscoIPPhoneError Number="4"/>'
    assert body(Error(1, "bad <x>")) == (
        '<CiscoIPPhoneError Number="1">bad &lt;x&gt;</CiscoIPPhoneError>'
    )
    assert body(Response((ResponseItem(0, "Success", "Key:Services"),))) == (
        '<CiscoIPPhoneResponse><ResponseItem Status="0" Data="Success" URL="Key:Services"/>'
        "</CiscoIPPhoneResponse>"
    )


def test_all_five_specials_are_escaped_in_text_and_attributes() -> None:
    nasty = "A & B <c> \"d\" 'e'"
    text = body(Text(title=nasty, prompt=nasty, text=nasty))
    escaped = "A &amp; B &lt;c&gt; &quot;d&quot; &apos;e&apos;"
    assert text.count(escaped) == 3
    execute = body(Execute.of("http://h/?a='1'&b=\"<2>\""))
    assert 'URL="http://h/?a=&apos;1&apos;&amp;b=&quot;&lt;2&gt;&quot;"' in execute
    assert parse(to_xml(Text(title=nasty, text=nasty))) == Text(title=nasty, text=nasty)


def test_escape_helpers() -> None:
    assert escape_text("<&>\"'") == "&lt;&amp;&gt;&quot;&apos;"
    assert escape_text("a\tb\nc\rd") == "a\tb\nc\rd"  # raw in element text
    assert escape_attribute("a\tb\nc\rd") == "a&#9;b&#10;c&#13;d"  # XML would blank them


def test_non_ascii_is_utf8() -> None:
    data = to_xml(Text(text="Café – 東京 🔔"))
    assert "Café – 東京 🔔".encode() in data


def test_line_ends_in_text_are_written_raw_and_read_back_as_lf() -> None:
    # Cisco documents CRs splitting a menu name over lines, so CR reaches the
    # phone as is; any XML parser (ours too) reads CR LF and CR as LF.
    menu = Menu(items=(MenuItem("one\r\rtwo"),))
    assert "<Name>one\r\rtwo</Name>" in body(menu)
    parsed = parse(to_xml(Text(text="a\r\nb\rc\td")))
    assert isinstance(parsed, Text) and parsed.text == "a\nb\nc\td"


def test_crlf_in_attributes_survive() -> None:
    response = Response((ResponseItem(1, "line1\r\nline2\tend", "Key:A"),))
    assert parse(to_xml(response)) == response


def test_absent_fields_are_left_out() -> None:
    out = body(Text(text="x", softkeys=(SoftKeyItem("Exit"),)))
    assert "<Title>" not in out and "<Prompt>" not in out
    assert "<SoftKeyItem><Name>Exit</Name></SoftKeyItem>" in out  # no URL, URLDown, Position
    assert body(Status(text="on")) == "<CiscoIPPhoneStatus><Text>on</Text></CiscoIPPhoneStatus>"


def test_control_characters_smuggled_past_the_constructor_are_still_refused() -> None:
    text = Text(text="ok")
    object.__setattr__(text, "text", "ring\x07")
    with pytest.raises(InvalidObjectError, match="CiscoIPPhoneText: Text contains control"):
        to_xml(text)
    item = ExecuteItem("Key:A")
    object.__setattr__(item, "url", "Key:A\x00")
    execute = Execute((ExecuteItem("Key:B"),))
    object.__setattr__(execute, "items", (item,))
    with pytest.raises(InvalidObjectError, match=r"ExecuteItem\[1\]: URL contains control"):
        to_xml(execute)


def test_refuses_what_is_not_an_object() -> None:
    with pytest.raises(TypeError):
        to_xml(MenuItem("a"))  # type: ignore[arg-type]


_TAG = re.compile(r"<([A-Za-z]+)")
#: Every element name the development notes define for these objects.
DOCUMENTED = {
    *OBJECT_CLASSES,
    "Title", "Prompt", "Text", "MenuItem", "Name", "URL", "IconIndex", "SoftKeyItem",
    "URLDown", "Position", "InputItem", "DisplayName", "QueryStringParam", "DefaultValue",
    "InputFlags", "DirectoryEntry", "Telephone", "LocationX", "LocationY", "Width", "Height",
    "Depth", "Data", "IconItem", "Index", "Timer", "ExecuteItem", "ResponseItem",
}  # fmt: skip


@given(OBJECTS)
def test_only_defined_tags_and_always_declared(obj: CiscoObject) -> None:
    out = body(obj)
    assert set(_TAG.findall(out)) <= DOCUMENTED
    assert "<!" not in out and "<?" not in out
