"""Cisco XML objects: round trips, limits, escaping, hostile input."""

from __future__ import annotations

import contextlib
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phonecast.ciscoxml import (
    CiscoXmlError,
    Directory,
    DirectoryEntry,
    Error,
    Execute,
    ExecuteItem,
    IconItem,
    IconMenu,
    Image,
    ImageFile,
    Input,
    InputItem,
    InternalUri,
    Menu,
    MenuItem,
    Response,
    ResponseItem,
    SoftKeyItem,
    Status,
    Text,
    parse,
    parse_execute,
    to_xml,
)

printable = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFFFF, blacklist_categories=("Cs",)),
    max_size=30,
)
names = printable.filter(lambda s: len(s) <= 64 and "\x7f" not in s)
softkeys = st.lists(
    st.builds(SoftKeyItem, names, printable, st.none(), st.integers(1, 16)), max_size=3
).map(tuple)

OBJECTS = st.one_of(
    st.builds(Text, st.none() | names, st.none() | names, softkeys, printable),
    st.builds(
        Menu,
        names,
        names,
        softkeys,
        st.lists(st.builds(MenuItem, names, printable), max_size=5).map(tuple),
    ),
    st.builds(
        Directory,
        names,
        names,
        softkeys,
        st.lists(
            st.builds(DirectoryEntry, names, st.from_regex(r"[0-9]{1,10}", fullmatch=True)),
            max_size=5,
        ).map(tuple),
    ),
    st.builds(
        Input,
        names,
        names,
        softkeys,
        printable,
        st.lists(
            st.builds(
                InputItem,
                names,
                st.from_regex(r"[a-z]{1,8}", fullmatch=True),
                printable,
                st.sampled_from(["A", "T", "N", "AP", "EP"]),
            ),
            max_size=5,
        ).map(tuple),
    ),
    st.builds(
        Execute.of,
        st.sampled_from(["http://h/a.xml", "Key:Services", "Dial:1234", "Init:CallHistory"]),
    ),
    st.builds(Error, st.integers(1, 4)),
    st.builds(Status, names.filter(lambda s: len(s) <= 32)),
)


@given(OBJECTS)
def test_round_trip(obj: object) -> None:
    data = to_xml(obj)  # type: ignore[arg-type]
    assert data.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    assert parse(data) == obj


def test_more_objects_round_trip() -> None:
    icon = IconItem(0, 16, 10, 2, "0" * 80)
    objects = [
        IconMenu("t", "p", (), (MenuItem("one", "http://x", 0),), (icon,)),
        Image("t", "p", (), 0, 0, 4, 2, 2, "ab" * 2),
        ImageFile("t", "p", (SoftKeyItem("Exit", "SoftKey:Exit", None, 3),), 1, 2, "http://i.png"),
        Response((ResponseItem(0, "Success", "Key:Services"),)),
    ]
    for obj in objects:
        assert parse(to_xml(obj)) == obj  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Menu(items=tuple(MenuItem(f"i{n}") for n in range(101))), "101 MenuItem"),
        (lambda: Directory(entries=tuple(DirectoryEntry("n", "1") for _ in range(33))), "33"),
        (lambda: Input(items=tuple(InputItem("d", "q") for _ in range(6))), "6 InputItem"),
        (lambda: Execute.of("Key:A", "Key:B", "Key:C", "Key:D"), "4 ExecuteItem"),
        (lambda: Execute.of("http://a/1", "http://a/2"), "2 HTTP URLs"),
        (lambda: Execute.of("SoftKey:Exit"), "SoftKey"),
        (lambda: ExecuteItem("Key:A", 3), "Priority 3"),
        (lambda: SoftKeyItem("x", position=17), "Position 17"),
        (lambda: MenuItem("x" * 65), "65 characters, at most 64"),
        (lambda: Image(width=2, height=2, depth=3, data="00"), "Depth 3"),
        (lambda: Image(width=4, height=2, depth=2, data="00"), "hex digits"),
        (lambda: Text(text="bell\x07"), "control character"),
        (lambda: InputItem("d", "q", input_flags="Z"), "InputFlags"),
        (lambda: Execute.of("ftp://x"), "unknown URI"),
    ],
)
def test_limits_raise_with_clear_messages(build: object, message: str) -> None:
    with pytest.raises(CiscoXmlError, match=message):
        build()  # type: ignore[operator]


def test_escaping() -> None:
    data = to_xml(Text("A & B", "<p>", (), 'say "hi" it\'s'))
    assert b"A &amp; B" in data and b"&lt;p&gt;" in data and b"&quot;hi&quot;" in data
    assert parse(data) == Text("A & B", "<p>", (), 'say "hi" it\'s')
    exe = to_xml(Execute.of('http://h/a.xml?x=1&y="2"'))
    assert b"&amp;y=&quot;2&quot;" in exe
    assert parse_execute(exe).items[0].url == 'http://h/a.xml?x=1&y="2"'


def test_internal_uris() -> None:
    assert InternalUri.parse("Dial:1234") == InternalUri("Dial", "1234")
    assert InternalUri.parse("http://x") is None
    assert InternalUri.parse("key:Services", family="spa") == InternalUri("Key", "Services")
    with pytest.raises(CiscoXmlError, match="SPA phones"):
        InternalUri.parse("RTPRx:1.2.3.4:20480", family="spa")


XXE = (
    b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    b"<CiscoIPPhoneText><Text>&e;</Text></CiscoIPPhoneText>"
)
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;">]><CiscoIPPhoneText><Text>&c;</Text></CiscoIPPhoneText>'
)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (XXE, "refused"),
        (LAUGHS, "refused"),
        (
            b"<CiscoIPPhoneText>" + b"<a>" * 10_000 + b"</a>" * 10_000 + b"</CiscoIPPhoneText>",
            "deeper|exceeds",
        ),
        (
            b"<CiscoIPPhoneText><Text>" + b"x" * 10_000_000 + b"</Text></CiscoIPPhoneText>",
            "exceeds",
        ),
        (b"<CiscoIPPhoneText><Script>x</Script></CiscoIPPhoneText>", "undefined element <Script>"),
        (
            b"<CiscoIPPhoneMenu><MenuItem><Icon/></MenuItem></CiscoIPPhoneMenu>",
            r"CiscoIPPhoneMenu/MenuItem\[1\]: undefined element <Icon>",
        ),
        (b"<html/>", "unknown root"),
        (b"<CiscoIPPhoneText><Text>unclosed", "well-formed"),
        (
            b"<CiscoIPPhoneExecute><ExecuteItem URL='Key:A' Priority='x'/></CiscoIPPhoneExecute>",
            "Priority",
        ),
        (b"<CiscoIPPhoneText><Text>\xff\xfe</Text></CiscoIPPhoneText>", "well-formed"),
    ],
)
def test_hostile_input_refused_quickly(data: bytes, match: str) -> None:
    start = time.monotonic()
    with pytest.raises(CiscoXmlError, match=match):
        parse(data)
    assert time.monotonic() - start < 2.0


def test_parse_execute_wants_execute() -> None:
    with pytest.raises(CiscoXmlError, match="expected CiscoIPPhoneExecute"):
        parse_execute(to_xml(Text(text="x")))
    assert parse_execute(to_xml(Execute.of("Key:Services", priority=1))).items[0].priority == 1


@given(st.binary(max_size=300))
def test_any_bytes_give_object_or_error(data: bytes) -> None:
    with contextlib.suppress(CiscoXmlError):
        parse(data)
