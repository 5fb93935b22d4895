"""The hardened parser: round trips, the phones' rules with element paths,
and hostile input refused early, with the right error, never a crash."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phonecast.ciscoxml import (
    CiscoObject,
    CiscoXmlError,
    Directory,
    DirectoryEntry,
    Execute,
    ExecuteItem,
    ForbiddenXmlError,
    Image,
    Input,
    InputItem,
    InvalidObjectError,
    Menu,
    MenuItem,
    SoftKeyItem,
    Text,
    UndefinedElementError,
    XmlLimitError,
    XmlSyntaxError,
    parse,
    parse_execute,
    to_xml,
)

from .strategies import OBJECTS, executes

# ------------------------------------------------------------- round trips


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(OBJECTS)
def test_every_object_round_trips(obj: CiscoObject) -> None:
    assert parse(to_xml(obj)) == obj


@settings(max_examples=100)
@given(executes())
def test_parse_execute_round_trips(obj: Execute) -> None:
    assert parse_execute(to_xml(obj)) == obj


def test_objects_at_their_limits_round_trip() -> None:
    full: list[CiscoObject] = [
        Menu(items=tuple(MenuItem("m" * 64, f"http://h/{n}") for n in range(100))),
        Directory(entries=tuple(DirectoryEntry(f"n{n}", str(n)) for n in range(32))),
        Input(url="http://h/f", items=tuple(InputItem("d", f"q{n}", "", "AP") for n in range(5))),
        Execute.of("http://h/a", "Key:Services", "Dial:100", priority=2),
        Image(width=133, height=65, depth=2, data="AB" * 2162),
        Text(
            text="x",
            softkeys=tuple(SoftKeyItem(str(n), "Key:Services", None, n) for n in range(1, 17)),
        ),
    ]
    for obj in full:
        assert parse(to_xml(obj)) == obj


def test_documentation_style_input_parses() -> None:
    # Indented, with comments and the notes' own Execute example.
    data = b"""<?xml version="1.0" encoding="ISO-8859-1"?>
<!-- a comment -->
<CiscoIPPhoneExecute>
    <ExecuteItem Priority="1" URL="http://server/textmessage.xml"/>
    <ExecuteItem URL="Key:Services"/>
</CiscoIPPhoneExecute>
"""
    assert parse_execute(data) == Execute(
        (ExecuteItem("http://server/textmessage.xml", 1), ExecuteItem("Key:Services", 0))
    )
    latin = (
        b'<?xml version="1.0" encoding="ISO-8859-1"?>'
        b"<CiscoIPPhoneText><Text>caf\xe9</Text></CiscoIPPhoneText>"
    )
    assert parse(latin) == Text(text="café")
    utf16 = (
        '<?xml version="1.0" encoding="UTF-16"?><CiscoIPPhoneText><Text>é</Text></CiscoIPPhoneText>'
    )
    assert parse(utf16.encode("utf-16")) == Text(text="é")
    image = (
        b"<CiscoIPPhoneImage><Width>4</Width><Height>1</Height><Depth>2</Depth>"
        b"<Data>\n  2D\n</Data></CiscoIPPhoneImage>"
    )
    assert parse(image) == Image(width=4, height=1, depth=2, data="2D")


# ------------------------------------------- the phones' rules, with paths


def menu_xml(items: int) -> bytes:
    return (
        b"<CiscoIPPhoneMenu>"
        + b"<MenuItem><Name>x</Name><URL>http://h/x</URL></MenuItem>" * items
        + b"</CiscoIPPhoneMenu>"
    )


def execute_xml(*items: str) -> bytes:
    return ("<CiscoIPPhoneExecute>" + "".join(items) + "</CiscoIPPhoneExecute>").encode()


RULES: list[tuple[str, bytes, str]] = [
    (
        "101 menu items",
        menu_xml(101),
        "CiscoIPPhoneMenu: 101 MenuItem elements, at most 100 allowed",
    ),
    (
        "33 directory entries",
        b"<CiscoIPPhoneDirectory>"
        + b"<DirectoryEntry><Name>a</Name><Telephone>1</Telephone></DirectoryEntry>" * 33
        + b"</CiscoIPPhoneDirectory>",
        "CiscoIPPhoneDirectory: 33 DirectoryEntry elements, at most 32 allowed",
    ),
    (
        "6 input items",
        b"<CiscoIPPhoneInput><URL>http://h/f</URL>"
        + b"<InputItem><DisplayName>d</DisplayName><QueryStringParam>q</QueryStringParam>"
        b"<InputFlags>A</InputFlags></InputItem>" * 6 + b"</CiscoIPPhoneInput>",
        "CiscoIPPhoneInput: 6 InputItem elements, at most 5 allowed",
    ),
    (
        "4 execute items",
        execute_xml(*['<ExecuteItem URL="Key:Services"/>'] * 4),
        "CiscoIPPhoneExecute: 4 ExecuteItem elements, at most 3 allowed",
    ),
    (
        "2 HTTP URLs",
        execute_xml('<ExecuteItem URL="http://h/a"/>', '<ExecuteItem URL="http://h/b"/>'),
        "CiscoIPPhoneExecute: 2 HTTP URLs, at most 1 allowed",
    ),
    (
        "SoftKey: in Execute",
        execute_xml('<ExecuteItem URL="SoftKey:Exit"/>'),
        "CiscoIPPhoneExecute/ExecuteItem[1]: URL 'SoftKey:Exit': SoftKey: URIs are not allowed",
    ),
    (
        "Priority 3",
        execute_xml('<ExecuteItem URL="Key:A"/>', '<ExecuteItem Priority="3" URL="http://h/a"/>'),
        "CiscoIPPhoneExecute/ExecuteItem[2]: Priority 3 outside 0..2",
    ),
    (
        "Position 17",
        b"<CiscoIPPhoneText><SoftKeyItem><Name>a</Name><Position>17</Position></SoftKeyItem>"
        b"</CiscoIPPhoneText>",
        "CiscoIPPhoneText/SoftKeyItem[1]: Position 17 outside 1..16",
    ),
    (
        "Name of 65",
        b"<CiscoIPPhoneMenu><MenuItem><Name>a</Name></MenuItem><MenuItem><Name>"
        + b"n" * 65
        + b"</Name></MenuItem></CiscoIPPhoneMenu>",
        "CiscoIPPhoneMenu/MenuItem[2]: Name has 65 characters, at most 64 allowed",
    ),
    (
        "image Depth 3",
        b"<CiscoIPPhoneImage><Width>1</Width><Height>1</Height><Depth>3</Depth><Data>00</Data>"
        b"</CiscoIPPhoneImage>",
        "CiscoIPPhoneImage: Depth 3, at most 2 allowed",
    ),
    (
        "image Data length",
        b"<CiscoIPPhoneImage><Width>8</Width><Height>2</Height><Depth>2</Depth><Data>00</Data>"
        b"</CiscoIPPhoneImage>",
        "CiscoIPPhoneImage: Data has 2 hex digits; Width*Height*Depth = 8*2*2 bits needs exactly 8",
    ),
    (
        "control character as C1",
        "<CiscoIPPhoneText><Title>a\x85</Title></CiscoIPPhoneText>".encode(),
        "CiscoIPPhoneText: Title contains control character U+0085",
    ),
    (
        "Position not a number",
        b"<CiscoIPPhoneText><SoftKeyItem><Name>a</Name><Position>1e3</Position></SoftKeyItem>"
        b"</CiscoIPPhoneText>",
        "CiscoIPPhoneText/SoftKeyItem[1]/Position: Position '1e3' is not an integer",
    ),
    (
        "Priority not a number",
        execute_xml('<ExecuteItem Priority="high" URL="Key:A"/>'),
        "CiscoIPPhoneExecute/ExecuteItem[1]: Priority 'high' is not an integer",
    ),
    (
        "missing Width",
        b"<CiscoIPPhoneImage><Height>1</Height><Depth>1</Depth><Data>00</Data></CiscoIPPhoneImage>",
        "CiscoIPPhoneImage: missing element Width",
    ),
    (
        "ExecuteItem without URL",
        execute_xml('<ExecuteItem Priority="0"/>'),
        "CiscoIPPhoneExecute/ExecuteItem[1]: missing attribute URL",
    ),
    (
        "Title twice",
        b"<CiscoIPPhoneText><Title>a</Title><Title>b</Title></CiscoIPPhoneText>",
        "CiscoIPPhoneText: <Title> appears 2 times, at most once allowed",
    ),
]


@pytest.mark.parametrize(("data", "message"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_rules_broken_in_a_document_name_the_element(data: bytes, message: str) -> None:
    with pytest.raises(InvalidObjectError) as caught:
        parse(data)
    assert str(caught.value) == message or str(caught.value).startswith(message)
    assert caught.value.number == 1


# ---------------------------------------------------------- hostile input

XXE = (
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    b"<CiscoIPPhoneText><Text>&e;</Text></CiscoIPPhoneText>"
)
EXTERNAL_DTD = (
    b'<!DOCTYPE CiscoIPPhoneText SYSTEM "http://127.0.0.1:1/evil.dtd"><CiscoIPPhoneText/>'
)
PARAMETER_ENTITY = (
    b'<!DOCTYPE x [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><CiscoIPPhoneText/>'
)
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">'.encode()
        for n in range(1, 10)
    )
    + b"]><CiscoIPPhoneText><Text>&lol9;</Text></CiscoIPPhoneText>"
)


@pytest.mark.parametrize("data", [XXE, EXTERNAL_DTD, PARAMETER_ENTITY, LAUGHS])
def test_dtds_and_entities_are_refused(data: bytes) -> None:
    start = time.perf_counter()
    with pytest.raises(ForbiddenXmlError) as caught:
        parse(data)
    assert time.perf_counter() - start < 0.5
    assert "refused a DTD" in str(caught.value)
    assert "root:" not in str(caught.value)  # nothing of /etc/passwd leaks
    assert caught.value.number == 1


def test_ten_megabytes_are_refused_by_size_before_parsing() -> None:
    huge = b"<CiscoIPPhoneText><Text>" + b"x" * 10_000_000 + b"</Text></CiscoIPPhoneText>"
    start = time.perf_counter()
    with pytest.raises(XmlLimitError, match=f"object of {len(huge)} bytes, at most 65536 allowed"):
        parse(huge)
    assert time.perf_counter() - start < 0.05  # a length check, not a parse


def test_max_bytes_is_configurable() -> None:
    data = to_xml(Text(text="x" * 1000))
    with pytest.raises(XmlLimitError):
        parse(data, max_bytes=len(data) - 1)
    assert parse(data, max_bytes=len(data)) == Text(text="x" * 1000)


def test_a_big_body_allowed_in_is_still_stopped_while_building() -> None:
    # With the size bound lifted, the element bound stops expat early: the
    # error names the 334th item (the 1001st element), not the 300,000th.
    big = menu_xml(300_000)
    assert len(big) > 10_000_000
    start = time.perf_counter()
    with pytest.raises(XmlLimitError) as caught:
        parse(big, max_bytes=len(big))
    assert time.perf_counter() - start < 1.0
    assert str(caught.value).startswith("CiscoIPPhoneMenu/MenuItem[334]: more than 1000 elements")


def test_element_bound_is_configurable() -> None:
    assert isinstance(parse(menu_xml(100), max_elements=301), Menu)
    with pytest.raises(XmlLimitError, match="more than 300 elements"):
        parse(menu_xml(100), max_elements=300)


def test_depth_bound_is_checked_on_each_start_tag() -> None:
    data = to_xml(Text(softkeys=(SoftKeyItem("x"),)))  # SoftKeyItem/Name is at depth 3
    assert isinstance(parse(data, max_depth=3), Text)
    with pytest.raises(
        XmlLimitError, match=r"CiscoIPPhoneText/SoftKeyItem\[1\]/Name: .*deeper than 2"
    ):
        parse(data, max_depth=2)


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (
            b"<CiscoIPPhoneText>" + b"<Text>" * 10_000,
            UndefinedElementError,
            "CiscoIPPhoneText/Text: undefined element <Text>",
        ),
        (b"<a>" * 10_000 + b"</a>" * 10_000, XmlLimitError, "at most 65536 allowed"),
        (b"<a>" * 10_000, UndefinedElementError, "unknown root element <a>"),
        (
            b"<CiscoIPPhoneMenu>" + b"<MenuItem>" * 10_000 + b"</MenuItem>" * 10_000,
            XmlLimitError,
            "at most 65536 allowed",
        ),
    ],
)
def test_ten_thousand_deep_nesting_is_refused_at_once(
    data: bytes, error: type[CiscoXmlError], message: str
) -> None:
    start = time.perf_counter()
    with pytest.raises(error, match=message):
        parse(data)
    with pytest.raises(error, match=message):  # and with the size bound lifted
        parse(data, max_bytes=len(data)) if error is not XmlLimitError else parse(data)
    assert time.perf_counter() - start < 0.5


def test_deep_nesting_with_size_lifted_hits_a_bound_not_recursion() -> None:
    data = b"<CiscoIPPhoneMenu>" + b"<MenuItem>" * 10_000 + b"</MenuItem>" * 10_000
    with pytest.raises(UndefinedElementError, match=r"MenuItem\[1\]: undefined element <MenuItem>"):
        parse(data, max_bytes=len(data))


UNDEFINED: list[tuple[str, bytes, str]] = [
    ("unknown root", b"<html><body/></html>", "unknown root element <html>; expected CiscoIPPhone"),
    ("root is case-sensitive", b"<ciscoipphonetext/>", "unknown root element <ciscoipphonetext>"),
    (
        "namespaced root",
        b'<x:CiscoIPPhoneText xmlns:x="urn:x"/>',
        "unknown root element <{urn:x}CiscoIPPhoneText>",
    ),
    (
        "undefined child",
        b"<CiscoIPPhoneText><Script>x</Script></CiscoIPPhoneText>",
        "CiscoIPPhoneText: undefined element <Script>",
    ),
    (
        "child case-sensitive",
        b"<CiscoIPPhoneText><title>x</title></CiscoIPPhoneText>",
        "CiscoIPPhoneText: undefined element <title>",
    ),
    (
        "undefined grandchild",
        b"<CiscoIPPhoneMenu><MenuItem><Name>a</Name></MenuItem><MenuItem><Icon/></MenuItem>"
        b"</CiscoIPPhoneMenu>",
        "CiscoIPPhoneMenu/MenuItem[2]: undefined element <Icon>",
    ),
    (
        "IconIndex in a plain menu item is undefined only in icon menus? no: defined everywhere",
        b"<CiscoIPPhoneMenu><MenuItem><Name>a</Name><Foo/></MenuItem></CiscoIPPhoneMenu>",
        "CiscoIPPhoneMenu/MenuItem[1]: undefined element <Foo>",
    ),
    (
        "element inside a text leaf",
        b"<CiscoIPPhoneText><Text>a<b>bold</b></Text></CiscoIPPhoneText>",
        "CiscoIPPhoneText/Text: undefined element <b>",
    ),
    (
        "element of another object",
        b"<CiscoIPPhoneText><MenuItem><Name>a</Name></MenuItem></CiscoIPPhoneText>",
        "CiscoIPPhoneText: undefined element <MenuItem>",
    ),
    (
        "undefined attribute",
        b'<CiscoIPPhoneExecute><ExecuteItem URL="Key:A" Onload="x"/></CiscoIPPhoneExecute>',
        "CiscoIPPhoneExecute/ExecuteItem[1]: undefined attribute Onload= on <ExecuteItem>",
    ),
    (
        "attribute on a leaf",
        b'<CiscoIPPhoneText><Text href="x">a</Text></CiscoIPPhoneText>',
        "CiscoIPPhoneText/Text: undefined attribute href=",
    ),
    (
        "stray text",
        b"<CiscoIPPhoneMenu>hello<MenuItem><Name>a</Name></MenuItem></CiscoIPPhoneMenu>",
        "CiscoIPPhoneMenu: undefined text 'hello' in <CiscoIPPhoneMenu>",
    ),
    (
        "CDATA where no text belongs",
        b"<CiscoIPPhoneExecute><![CDATA[x]]></CiscoIPPhoneExecute>",
        "CiscoIPPhoneExecute: undefined text 'x'",
    ),
]


@pytest.mark.parametrize(
    ("data", "message"), [u[1:] for u in UNDEFINED], ids=[u[0][:30] for u in UNDEFINED]
)
def test_undefined_tags_are_refused_with_their_path(data: bytes, message: str) -> None:
    with pytest.raises(UndefinedElementError) as caught:
        parse(data)
    assert str(caught.value).startswith(message)
    assert caught.value.number == 1


MALFORMED: list[tuple[str, bytes, str]] = [
    ("empty", b"", "no element found"),
    ("unclosed", b"<CiscoIPPhoneText><Text>unclosed", "not well-formed XML"),
    ("mismatched", b"<CiscoIPPhoneText></CiscoIPPhoneMenu>", "mismatched tag"),
    ("raw bell", b"<CiscoIPPhoneText><Text>\x07</Text></CiscoIPPhoneText>", "not well-formed"),
    (
        "bell reference",
        b"<CiscoIPPhoneText><Text>&#7;</Text></CiscoIPPhoneText>",
        "invalid character",
    ),
    (
        "undefined entity",
        b"<CiscoIPPhoneText><Text>&e;</Text></CiscoIPPhoneText>",
        "undefined entity",
    ),
    ("bad UTF-8", b"<CiscoIPPhoneText><Text>\xff\xfe</Text></CiscoIPPhoneText>", "not well-formed"),
    (
        "multi-byte encoding",
        b'<?xml version="1.0" encoding="Shift_JIS"?><CiscoIPPhoneText/>',
        "unreadable encoding",
    ),
    (
        "unknown encoding",
        b'<?xml version="1.0" encoding="x-nonsense"?><CiscoIPPhoneText/>',
        "unreadable encoding",
    ),
    ("two roots", b"<CiscoIPPhoneError Number='1'/><CiscoIPPhoneError Number='1'/>", "junk"),
]


@pytest.mark.parametrize(
    ("data", "message"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_xml_is_a_syntax_error(data: bytes, message: str) -> None:
    with pytest.raises(XmlSyntaxError, match=message) as caught:
        parse(data)
    assert caught.value.number == 1


def test_parse_execute_refuses_other_roots_at_the_first_tag() -> None:
    # Not even well-formed after the root tag: refused before expat sees that.
    with pytest.raises(UndefinedElementError, match=r"expected CiscoIPPhoneExecute$"):
        parse_execute(b"<CiscoIPPhoneText><Text>" + b"\x00" * 100)
    with pytest.raises(UndefinedElementError, match="unknown root element <CiscoIPPhoneMenu>"):
        parse_execute(to_xml(Menu.of("m", ("a", "http://h/a"))))
    execute = parse_execute(to_xml(Execute.of("Key:Services", "http://h/a", priority=1)))
    assert [(i.url, i.priority) for i in execute.items] == [("Key:Services", 0), ("http://h/a", 1)]


def test_parse_takes_bytes_only() -> None:
    with pytest.raises(TypeError, match="takes bytes"):
        parse("<CiscoIPPhoneText/>")  # type: ignore[arg-type]
    assert parse(bytearray(b"<CiscoIPPhoneText/>")) == Text()


# -------------------------------------------------------------------- fuzz


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_give_an_object_or_a_cisco_error(data: bytes) -> None:
    try:
        parse(data)
    except CiscoXmlError as exc:
        assert exc.number == 1


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(OBJECTS, st.data())
def test_mutated_documents_give_an_object_or_a_cisco_error(
    obj: CiscoObject, data: st.DataObject
) -> None:
    doc = bytearray(to_xml(obj))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(doc)))
        action = data.draw(st.sampled_from(["delete", "insert", "replace"]))
        piece = data.draw(
            st.sampled_from(
                [
                    b"<",
                    b">",
                    b"/",
                    b"&",
                    b"\x00",
                    b"]]>",
                    b"<!DOCTYPE a>",
                    b"<x>",
                    b"\xff",
                    b"9",
                    b'"',
                ]
            )
        )
        if action == "delete":
            del doc[at : at + len(piece)]
        elif action == "insert":
            doc[at:at] = piece
        else:
            doc[at : at + len(piece)] = piece
    try:
        result = parse(bytes(doc))
    except CiscoXmlError:
        return
    assert to_xml(result)  # whatever parses is an object the writer accepts
