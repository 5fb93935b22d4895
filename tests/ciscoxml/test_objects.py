"""The objects keep the phones' rules: every limit refused one past it, with
a message naming the object, the field and the limit, and accepted at it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from phonecast.ciscoxml import (
    CiscoXmlError,
    Directory,
    DirectoryEntry,
    Error,
    Execute,
    ExecuteItem,
    IconFileItem,
    IconFileMenu,
    IconItem,
    IconMenu,
    Image,
    ImageFile,
    Input,
    InputItem,
    InvalidObjectError,
    InvalidUriError,
    Menu,
    MenuItem,
    ResponseItem,
    SoftKeyItem,
    Status,
    StatusFile,
    Text,
    check_family,
    iter_urls,
    pack_pixels,
    unpack_pixels,
)

FORM = "http://h/form"


def menu_of(count: int) -> Menu:
    return Menu(items=tuple(MenuItem(f"item {n}", f"http://h/{n}") for n in range(count)))


BROKEN: list[tuple[str, Callable[[], object], str]] = [
    (
        "101 menu items",
        lambda: menu_of(101),
        "CiscoIPPhoneMenu: 101 MenuItem elements, at most 100",
    ),
    (
        "33 directory entries",
        lambda: Directory(entries=tuple(DirectoryEntry("n", "1") for _ in range(33))),
        "CiscoIPPhoneDirectory: 33 DirectoryEntry elements, at most 32",
    ),
    (
        "6 input items",
        lambda: Input(url=FORM, items=tuple(InputItem("d", f"q{n}") for n in range(6))),
        "CiscoIPPhoneInput: 6 InputItem elements, at most 5",
    ),
    (
        "4 execute items",
        lambda: Execute.of("Key:A", "Key:B", "Key:C", "Key:D"),
        "CiscoIPPhoneExecute: 4 ExecuteItem elements, at most 3",
    ),
    (
        "2 HTTP URLs in one Execute",
        lambda: Execute.of("http://a/1", "https://a/2"),
        "CiscoIPPhoneExecute: 2 HTTP URLs, at most 1",
    ),
    (
        "SoftKey: in Execute",
        lambda: Execute.of("SoftKey:Exit"),
        "ExecuteItem: URL 'SoftKey:Exit': SoftKey: URIs are not allowed in Execute",
    ),
    (
        "Notify: in Execute",
        lambda: Execute.of("Notify:http:h:80:p"),
        "Notify: URIs are not allowed in Execute",
    ),
    ("Priority 3", lambda: ExecuteItem("Key:A", 3), "ExecuteItem: Priority 3 outside 0..2"),
    ("Priority -1", lambda: ExecuteItem("Key:A", -1), "ExecuteItem: Priority -1 outside 0..2"),
    (
        "Position 17",
        lambda: SoftKeyItem("x", position=17),
        "SoftKeyItem: Position 17 outside 1..16",
    ),
    ("Position 0", lambda: SoftKeyItem("x", position=0), "SoftKeyItem: Position 0 outside 1..16"),
    (
        "Name of 65",
        lambda: MenuItem("x" * 65),
        "MenuItem: Name has 65 characters, at most 64 allowed",
    ),
    (
        "image Depth 3",
        lambda: Image(width=2, height=2, depth=3, data="00"),
        "CiscoIPPhoneImage: Depth 3, at most 2 allowed",
    ),
    (
        "image Data too short",
        lambda: Image(width=4, height=2, depth=2, data="00"),
        "CiscoIPPhoneImage: Data has 2 hex digits; Width*Height*Depth = 4*2*2 bits needs exactly 4",
    ),
    (
        "image Data too long",
        lambda: Image(width=4, height=1, depth=2, data="0000"),
        "Data has 4 hex digits; Width*Height*Depth = 4*1*2 bits needs exactly 2",
    ),
    (
        "image Data not hex",
        lambda: Image(width=4, height=1, depth=2, data="0g"),
        "CiscoIPPhoneImage: Data must be hex digits",
    ),
    (
        "image wider than the pane",
        lambda: Image(width=134, height=1, depth=1, data="00" * 17),
        "CiscoIPPhoneImage: Width 134 outside 1..133",
    ),
    (
        "image taller than the pane",
        lambda: Image(width=1, height=66, depth=1, data="00" * 9),
        "CiscoIPPhoneImage: Height 66 outside 1..65",
    ),
    (
        "icon wider than 16",
        lambda: IconItem(0, 17, 1, 1, "0000"),
        "IconItem: Width 17 outside 1..16",
    ),
    ("icon index 10", lambda: IconItem(10, 1, 1, 1, "00"), "IconItem: Index 10 outside 0..9"),
    (
        "33 icon menu items",
        lambda: IconMenu(items=tuple(MenuItem(str(n)) for n in range(33))),
        "CiscoIPPhoneIconMenu: 33 MenuItem elements, at most 32",
    ),
    (
        "two icons with one index",
        lambda: IconMenu(icons=(IconItem(1, 1, 1, 1, "00"), IconItem(1, 1, 1, 1, "00"))),
        "CiscoIPPhoneIconMenu: two IconItems with Index 1",
    ),
    (
        "IconIndex naming no icon",
        lambda: IconMenu(items=(MenuItem("a", icon_index=3),), icons=(IconItem(1, 1, 1, 1, "00"),)),
        "CiscoIPPhoneIconMenu: MenuItem[1] IconIndex 3 names no IconItem",
    ),
    (
        "IconIndex in a plain menu",
        lambda: Menu(items=(MenuItem("a", icon_index=0),)),
        "CiscoIPPhoneMenu: MenuItem[1] has an IconIndex",
    ),
    (
        "17 soft keys",
        lambda: Text(softkeys=tuple(SoftKeyItem(str(n)) for n in range(17))),
        "CiscoIPPhoneText: 17 SoftKeyItem elements, at most 16",
    ),
    (
        "two soft keys at one position",
        lambda: Text(softkeys=(SoftKeyItem("a", position=2), SoftKeyItem("b", position=2))),
        "CiscoIPPhoneText: two SoftKeyItems at Position 2",
    ),
    (
        "bell character",
        lambda: Text(text="ring\x07"),
        "CiscoIPPhoneText: Text contains control character U+0007",
    ),
    ("NUL in a title", lambda: Menu(title="a\x00"), "CiscoIPPhoneMenu: Title contains control"),
    ("C1 control", lambda: DirectoryEntry("a\x85", "1"), "DirectoryEntry: Name contains control"),
    ("DEL", lambda: MenuItem("\x7f"), "MenuItem: Name contains control character U+007F"),
    ("lone surrogate", lambda: Text(text="\ud800"), "U+D800, which is not a character"),
    ("U+FFFE", lambda: Text(prompt="\ufffe"), "CiscoIPPhoneText: Prompt contains U+FFFE"),
    (
        "InputFlags Z",
        lambda: InputItem("d", "q", input_flags="Z"),
        "InputItem: InputFlags 'Z' must be one of A T N E U L",
    ),
    ("InputFlags P alone", lambda: InputItem("d", "q", input_flags="P"), "InputFlags 'P'"),
    ("InputFlags PA", lambda: InputItem("d", "q", input_flags="PA"), "InputFlags 'PA'"),
    ("InputFlags AN", lambda: InputItem("d", "q", input_flags="AN"), "InputFlags 'AN'"),
    (
        "QueryStringParam with &",
        lambda: InputItem("d", "a&b"),
        "InputItem: QueryStringParam 'a&b' must be non-empty",
    ),
    ("empty QueryStringParam", lambda: InputItem("d", ""), "QueryStringParam '' must be"),
    ("Input without URL", lambda: Input(), "CiscoIPPhoneInput: URL is required"),
    (
        "Input posting to an internal URI",
        lambda: Input(url="Key:Services"),
        "CiscoIPPhoneInput: URL 'Key:Services' must be an http(s) URL",
    ),
    ("ImageFile without URL", lambda: ImageFile(), "CiscoIPPhoneImageFile: URL is required"),
    ("StatusFile without URL", lambda: StatusFile(), "CiscoIPPhoneStatusFile: URL is required"),
    ("icon PNG not http", lambda: IconFileItem(0, "Play:x"), "IconItem: URL 'Play:x' must be"),
    (
        "Status image half given",
        lambda: Status(text="x", width=1, height=1),
        "CiscoIPPhoneStatus: Width, Height, Depth and Data come together",
    ),
    ("Status Timer negative", lambda: Status(timer=-1), "CiscoIPPhoneStatus: Timer -1"),
    ("Execute without items", lambda: Execute(), "CiscoIPPhoneExecute: at least one ExecuteItem"),
    ("ftp URL", lambda: Execute.of("ftp://x/y"), "ExecuteItem: URL 'ftp://x/y' is neither"),
    ("typo in a URI kind", lambda: ExecuteItem("Dail:123"), "URL 'Dail:123' is neither"),
    ("relative URL", lambda: MenuItem("a", "/menu.xml"), "MenuItem: URL '/menu.xml'"),
    ("blank in a URL", lambda: MenuItem("a", "http://h/a b"), "not an absolute http(s) URL"),
    ("URL without host", lambda: SoftKeyItem("a", "http:///x"), "SoftKeyItem: URL"),
    ("bad Dial digits", lambda: ExecuteItem("Dial:12x"), "DTMF digits"),
    ("Display over a day", lambda: ExecuteItem("Display:On:1441"), "at most 1440"),
    ("odd RTP port", lambda: ExecuteItem("RTPRx:10.0.0.1:20481"), "RTP port 20481 is odd"),
    ("RTP volume 101", lambda: ExecuteItem("RTPRx:10.0.0.1:20480:101"), "volume 101%"),
    ("unicast RTPMRx", lambda: ExecuteItem("RTPMRx:10.0.0.1:20480"), "not a multicast address"),
    ("Error Number 5", lambda: Error(5), "CiscoIPPhoneError: Number 5 outside 1..4"),
    ("Error Number 0", lambda: Error(0), "CiscoIPPhoneError: Number 0 outside 1..4"),
    ("bool as integer", lambda: SoftKeyItem("x", position=True), "Position must be an integer"),
    ("str as integer", lambda: ResponseItem("0"), "Status must be an integer"),  # type: ignore[arg-type]
    ("tuple as menu item", lambda: Menu(items=(("a", "b"),)), "MenuItem[1] must be a MenuItem"),  # type: ignore[arg-type]
    ("None as name", lambda: MenuItem(None), "MenuItem: Name is required"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("build", "message"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_rules_raise_naming_object_field_and_limit(
    build: Callable[[], object], message: str
) -> None:
    with pytest.raises(InvalidObjectError) as caught:
        build()
    assert message in str(caught.value)
    assert isinstance(caught.value, CiscoXmlError) and isinstance(caught.value, ValueError)
    assert caught.value.number == 1


AT_LIMIT: list[tuple[str, Callable[[], object]]] = [
    ("100 menu items", lambda: menu_of(100)),
    ("32 entries", lambda: Directory(entries=tuple(DirectoryEntry("n", "1") for _ in range(32)))),
    ("5 input items", lambda: Input(url=FORM, items=tuple(InputItem("d", "q") for _ in range(5)))),
    ("3 execute items, 1 HTTP", lambda: Execute.of("http://h/a", "Key:B", "Init:Services")),
    ("Position 16", lambda: SoftKeyItem("x", position=16)),
    ("Position 1", lambda: SoftKeyItem("x", position=1)),
    ("Name of 64", lambda: MenuItem("x" * 64)),
    ("Priority 2", lambda: ExecuteItem("http://h/a", 2)),
    ("Depth 2 full pane", lambda: Image(width=133, height=65, depth=2, data="00" * 2162)),
    ("Depth 1 with padding", lambda: Image(width=3, height=3, depth=1, data="0000")),
    (
        "16 soft keys",
        lambda: Text(softkeys=tuple(SoftKeyItem(str(n), position=n) for n in range(1, 17))),
    ),
    ("icon 16x10", lambda: IconItem(9, 16, 10, 2, "00" * 40)),
    ("32 icon menu items", lambda: IconMenu(items=tuple(MenuItem(str(n)) for n in range(32)))),
    ("CR LF tab in text", lambda: Text(text="a\r\n\tb")),
    ("InputFlags TP", lambda: InputItem("d", "q", input_flags="TP")),
    ("Error 4", lambda: Error(4, "Authentication error")),
]


@pytest.mark.parametrize("build", [b[1] for b in AT_LIMIT], ids=[b[0] for b in AT_LIMIT])
def test_values_at_the_limit_are_accepted(build: Callable[[], object]) -> None:
    build()


def test_objects_are_immutable_and_lists_are_frozen() -> None:
    items = [MenuItem("a", "http://h/a")]
    menu = Menu(title="t", items=items)  # type: ignore[arg-type]
    items.append(MenuItem("b"))
    assert menu.items == (MenuItem("a", "http://h/a"),)
    with pytest.raises(dataclasses.FrozenInstanceError):
        menu.title = "u"  # type: ignore[misc]
    assert not hasattr(menu, "__dict__")  # slots


def test_positional_order_stays_title_prompt_softkeys_then_own_fields() -> None:
    # Callers elsewhere in phonecast build Text("Drill", None, (), "body").
    text = Text("Drill", None, (), "body")
    assert (text.title, text.prompt, text.softkeys, text.text) == ("Drill", None, (), "body")


def test_builders() -> None:
    menu = Menu.of("Apps", ("Weather", "http://h/w.xml"), MenuItem("Missed", "Init:CallHistory"))
    assert [i.name for i in menu.items] == ["Weather", "Missed"] and menu.title == "Apps"
    directory = Directory.of("Staff", ("Alice", "1001"), prompt="Pick one")
    assert directory.entries == (DirectoryEntry("Alice", "1001"),)
    assert directory.prompt == "Pick one"


def test_execute_of_gives_the_priority_to_the_http_url_only() -> None:
    execute = Execute.of("Key:Services", "http://h/a.xml", priority=2)
    assert [(i.url, i.priority) for i in execute.items] == [
        ("Key:Services", 0),
        ("http://h/a.xml", 2),
    ]
    lax = ExecuteItem("Key:Services", 1)  # what payload.execute_payload may build
    assert lax.priority == 1 and lax.effective_priority == 0
    assert ExecuteItem("http://h/a", 1).effective_priority == 1


def test_url_down_empty_and_absent_are_one_value() -> None:
    assert SoftKeyItem("a", url_down="") == SoftKeyItem("a")


def test_pixel_packing_follows_cisco_order() -> None:
    # Development notes: pixels 1, 3, 2, 0 pack into the byte 0x2D.
    assert pack_pixels([1, 3, 2, 0], 2) == "2D"
    assert pack_pixels([1, 0, 0, 0, 0, 0, 0, 1], 1) == "81"
    assert pack_pixels([3], 2) == "03"  # padded with zero pixels
    assert unpack_pixels("2D", 4, 2) == (1, 3, 2, 0)
    image = Image.from_rows([[1, 3, 2, 0], [0, 1, 2, 3]], title="x")
    assert (image.width, image.height, image.depth, image.data) == (4, 2, 2, "2DE4")
    assert (image.location_x, image.location_y) == (-1, -1)
    assert image.pixels() == (1, 3, 2, 0, 0, 1, 2, 3)
    with pytest.raises(InvalidObjectError, match=r"pixel 4 outside 0\.\.3"):
        pack_pixels([4], 2)
    with pytest.raises(InvalidObjectError, match="same width"):
        Image.from_rows([[1, 2], [1]])


def test_iter_urls_names_where_each_url_stands() -> None:
    menu = Menu(
        items=(MenuItem("a", "http://h/a"), MenuItem("b", "Key:Services")),
        softkeys=(SoftKeyItem("Exit", "SoftKey:Exit", "Play:x.raw"),),
    )
    assert list(iter_urls(menu)) == [
        ("CiscoIPPhoneMenu/MenuItem[1]", "URL", "http://h/a"),
        ("CiscoIPPhoneMenu/MenuItem[2]", "URL", "Key:Services"),
        ("CiscoIPPhoneMenu/SoftKeyItem[1]", "URL", "SoftKey:Exit"),
        ("CiscoIPPhoneMenu/SoftKeyItem[1]", "URLDown", "Play:x.raw"),
    ]


def test_check_family_refuses_what_spa_phones_do_not_run() -> None:
    ok = Execute.of("http://h/a", "Key:Services", "Dial:100")
    check_family(ok, "spa")
    check_family(ok, "enterprise")
    rtp = Execute.of("RTPRx:10.0.0.1:20480")
    check_family(rtp, "enterprise")
    with pytest.raises(InvalidUriError) as caught:
        check_family(rtp, "spa")
    message = str(caught.value)
    assert "CiscoIPPhoneExecute/ExecuteItem[1]" in message
    assert "spa phones do not run RTPRx: URIs" in message
    menu = Menu(items=(MenuItem("a", "Display:Off:5"),))
    with pytest.raises(InvalidUriError, match=r"CiscoIPPhoneMenu/MenuItem\[1\].*Display"):
        check_family(menu, "spa")


def test_icon_file_menu_checks_its_icons() -> None:
    menu = IconFileMenu(
        items=(MenuItem("a", "http://h/a", 2),), icons=(IconFileItem(2, "http://h/i.png"),)
    )
    assert menu.icons[0].url == "http://h/i.png"
    with pytest.raises(InvalidObjectError, match="IconIndex 3 names no IconItem"):
        IconFileMenu(items=(MenuItem("a", icon_index=3),))
