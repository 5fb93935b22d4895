"""Cisco IP phone XML objects as immutable values that keep the phones' rules.

Limits are those of Cisco's "IP Phone Services Application Development
Notes" (gathered in the project's field guide): at most 100 menu items with
names of at most 64 characters, 5 input items, 32 directory entries, 32 icon
menu items with icons of at most 16x10 indexed 0-9, 3 Execute items of which
at most one HTTP URL, soft keys at positions 1-16, image depth at most 2 on a
133x65 pane, text without control characters other than CR, LF and tab.

Objects are checked when they are built, so a value that exists is one a
phone accepts and the writer never has to second-guess it; a broken rule
raises :class:`~phonecast.ciscoxml.errors.InvalidObjectError` naming the
object, the field and the limit (``CiscoIPPhoneMenu: 101 MenuItem elements,
at most 100 allowed``).  Collections may be given as lists; they are frozen
into tuples.  Positional order is ``title, prompt, softkeys`` then the
object's own fields, keywords read best: ``Text(title="Hi", text="...")``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeAlias

from phonecast.ciscoxml._schema import (
    Element,
    FieldKind,
    XmlField,
    attr_field,
    check_count,
    check_int,
    check_pixels,
    check_text,
    check_url,
    hex_field,
    int_field,
    items_field,
    pack_pixels,
    text_field,
    tuple_of,
    unpack_pixels,
    url_field,
)
from phonecast.ciscoxml.errors import InvalidObjectError
from phonecast.ciscoxml.items import (
    MAX_DIRECTORY_ENTRIES,
    MAX_EXECUTE_HTTP_URLS,
    MAX_EXECUTE_ITEMS,
    MAX_ICON_INDEX,
    MAX_ICON_MENU_ITEMS,
    MAX_INPUT_ITEMS,
    MAX_MENU_ITEMS,
    MAX_SOFTKEYS,
    PANE_HEIGHT,
    PANE_WIDTH,
    PRIORITY_NOW,
    DirectoryEntry,
    ExecuteItem,
    IconFileItem,
    IconItem,
    InputItem,
    MenuItem,
    ResponseItem,
    SoftKeyItem,
)
from phonecast.ciscoxml.uris import PhoneFamily, check_uri, is_http_url

_HEAD = (text_field("title", "Title"), text_field("prompt", "Prompt"))
_SOFTKEYS = items_field("softkeys", "SoftKeyItem", SoftKeyItem)


@dataclass(frozen=True, slots=True)
class _Screen(Element):
    """What the displayable objects share: title, prompt, soft keys."""

    title: str | None = None
    prompt: str | None = None
    softkeys: tuple[SoftKeyItem, ...] = ()

    def _check_screen(self) -> None:
        check_text(self.TAG, "Title", self.title)
        check_text(self.TAG, "Prompt", self.prompt)
        keys = tuple_of(self.TAG, "SoftKeyItem", self.softkeys, SoftKeyItem)
        object.__setattr__(self, "softkeys", keys)
        check_count(self.TAG, "SoftKeyItem", keys, MAX_SOFTKEYS)
        positions = [k.position for k in self.softkeys if k.position is not None]
        taken = {p for p in positions if positions.count(p) > 1}
        if taken:
            raise InvalidObjectError(
                self.TAG, "Position", f"two SoftKeyItems at Position {min(taken)}"
            )

    def _freeze(self, attr: str, tag: str, item: type[Element], limit: int) -> None:
        frozen = tuple_of(self.TAG, tag, getattr(self, attr), item)
        object.__setattr__(self, attr, frozen)
        check_count(self.TAG, tag, frozen, limit)


@dataclass(frozen=True, slots=True)
class Text(_Screen):
    """CiscoIPPhoneText: a title, a prompt and text (8-bit text on older
    phones; the firmware wraps and pages it)."""

    TAG: ClassVar[str] = "CiscoIPPhoneText"
    FIELDS: ClassVar[tuple[XmlField, ...]] = (*_HEAD, text_field("text", "Text"), _SOFTKEYS)
    text: str = ""

    def __post_init__(self) -> None:
        self._check_screen()
        check_text(self.TAG, "Text", self.text, required=True)


def _icon_refs(owner: str, menu: tuple[MenuItem, ...], icons: Sequence[int] | None) -> None:
    """Plain menus carry no IconIndex (it is not their element); icon menus
    must point each IconIndex at an icon they define."""
    for number, item in enumerate(menu, 1):
        if item.icon_index is None:
            continue
        if icons is None:
            raise InvalidObjectError(
                owner, "IconIndex", f"MenuItem[{number}] has an IconIndex; only icon menus do"
            )
        if item.icon_index not in icons:
            raise InvalidObjectError(
                owner,
                "IconIndex",
                f"MenuItem[{number}] IconIndex {item.icon_index} names no IconItem",
            )


def _unique_indexes(owner: str, icons: Sequence[IconItem | IconFileItem]) -> list[int]:
    indexes = [icon.index for icon in icons]
    twice = {i for i in indexes if indexes.count(i) > 1}
    if twice:
        raise InvalidObjectError(owner, "Index", f"two IconItems with Index {min(twice)}")
    return indexes


@dataclass(frozen=True, slots=True)
class Menu(_Screen):
    """CiscoIPPhoneMenu: up to 100 items the user picks from."""

    TAG: ClassVar[str] = "CiscoIPPhoneMenu"
    FIELDS: ClassVar[tuple[XmlField, ...]] = (
        *_HEAD,
        items_field("items", "MenuItem", MenuItem),
        _SOFTKEYS,
    )
    items: tuple[MenuItem, ...] = ()

    def __post_init__(self) -> None:
        self._check_screen()
        self._freeze("items", "MenuItem", MenuItem, MAX_MENU_ITEMS)
        _icon_refs(self.TAG, self.items, None)

    @classmethod
    def of(
        cls,
        title: str | None,
        *entries: MenuItem | tuple[str, str],
        prompt: str | None = None,
        softkeys: Sequence[SoftKeyItem] = (),
    ) -> Menu:
        """A menu from ``(name, url)`` pairs or items:
        ``Menu.of("Apps", ("Weather", "http://h/w.xml"), ("Missed", "Init:CallHistory"))``."""
        made = tuple(e if isinstance(e, MenuItem) else MenuItem(*e) for e in entries)
        return cls(title, prompt, tuple(softkeys), made)


@dataclass(frozen=True, slots=True)
class IconMenu(_Screen):
    """CiscoIPPhoneIconMenu: up to 32 items, each may show one of the icons
    (at most 10, indexes 0-9) defined in the object."""

    TAG: ClassVar[str] = "CiscoIPPhoneIconMenu"
    FIELDS: ClassVar[tuple[XmlField, ...]] = (
        *_HEAD,
        items_field("items", "MenuItem", MenuItem),
        items_field("icons", "IconItem", IconItem),
        _SOFTKEYS,
    )
    items: tuple[MenuItem, ...] = ()
    icons: tuple[IconItem, ...] = ()

    def __post_init__(self) -> None:
        self._check_screen()
        self._freeze("items", "MenuItem", MenuItem, MAX_ICON_MENU_ITEMS)
        self._freeze("icons", "IconItem", IconItem, MAX_ICON_INDEX + 1)
        _icon_refs(self.TAG, self.items, _unique_indexes(self.TAG, self.icons))


@dataclass(frozen=True, slots=True)
class IconFileMenu(_Screen):
    """CiscoIPPhoneIconFileMenu: an icon menu whose icons are PNG URLs."""

    TAG: ClassVar[str] = "CiscoIPPhoneIconFileMenu"
    FIELDS: ClassVar[tuple[XmlField, ...]] = (
        *_HEAD,
        items_field("items", "MenuItem", MenuItem),
        items_field("icons", "IconItem", IconFileItem),
        _SOFTKEYS,
    )
    items: tuple[MenuItem, ...] = ()
    icons: tuple[IconFileItem, ...] = ()

    def __post_init__(self) -> None:
        self._check_screen()
        self._freeze("items", "MenuItem", MenuItem, MAX_ICON_MENU_ITEMS)
        self._freeze("icons", "IconItem", IconFileItem, MAX_ICON_INDEX + 1)
        _icon_refs(self.TAG, self.items, _unique_indexes(self.TAG, self.icons))


@dataclass(frozen=True, slots=True)
class Input(_Screen):
    """CiscoIPPhoneInput: a form of up to 5 fields; the phone requests
    ``url`` with ``?param=value&...`` appended."""

    TAG: ClassVar[str] = "CiscoIPPhoneInput"
    FIELDS: ClassVar[tuple[XmlField, ...]] = (
        *_HEAD,
        url_field("url", required=True),
        items_field("items", "InputItem", InputItem),
        _SOFTKEYS,
    )
    url: str = ""
    items: tuple[InputItem, ...] = ()

    def __post_init__(self) -> None:
        self._check_screen()
        check_url(self.TAG, "URL", self.url, required=True, http_only=True)
        self._freeze("items", "InputItem", InputItem, MAX_INPUT_ITEMS)


@dataclass(frozen=True, slots=True)
class Directory(_Screen):
    """CiscoIPPhoneDirectory: up to 32 entries the user can dial."""

    TAG: ClassVar[str] = "CiscoIPPhoneDirectory"
    FIELDS: ClassVar[tuple[XmlField, ...]] = (
        *_HEAD,
        items_field("entries", "DirectoryEntry", DirectoryEntry),
        _SOFTKEYS,
    )
    entries: tuple[DirectoryEntry, ...] = ()

    def __post_init__(self) -> None:
        self._check_screen()
        self._freeze("entries", "DirectoryEntry", DirectoryEntry, MAX_DIRECTORY_ENTRIES)

    @classmethod
    def of(
        cls,
        title: str | None,
        *entries: DirectoryEntry | tuple[str, str],
        prompt: str | None = None,
        softkeys: Sequence[SoftKeyItem] = (),
    ) -> Directory:
        """A directory from ``(name, telephone)`` pairs or entries."""
        made = tuple(e if isinstance(e, DirectoryEntry) else DirectoryEntry(*e) for e in entries)
        return cls(title, prompt, tuple(softkeys), made)


@dataclass(frozen=True, slots=True)
class Image(_Screen):
    """CiscoIPPhoneImage: packed grayscale pixels on the 133x65 pane;
    location (-1, -1) centres the image."""

    TAG: ClassVar[str] = "CiscoIPPhoneImage"
    FIELDS: ClassVar[tuple[XmlField, ...]] = (
        *_HEAD,
        int_field("location_x", "LocationX"),
        int_field("location_y", "LocationY"),
        int_field("width", "Width", required=True),
        int_field("height", "Height", required=True),
        int_field("depth", "Depth", required=True),
        hex_field("data", "Data", required=True),
        _SOFTKEYS,
    )
    location_x: int = 0
    location_y: int = 0
    width: int = 0
    height: int = 0
    depth: int = 2
    data: str = ""

    def __post_init__(self) -> None:
        self._check_screen()
        check_int(self.TAG, "LocationX", self.location_x, -1, PANE_WIDTH - 1)
        check_int(self.TAG, "LocationY", self.location_y, -1, PANE_HEIGHT - 1)
        check_pixels(
            self.TAG, self.width, self.height, self.depth, self.data, PANE_WIDTH, PANE_HEIGHT
        )

    @classmethod
    def from_rows(
        cls,
        rows: Sequence[Sequence[int]],
        *,
        depth: int = 2,
        title: str | None = None,
        prompt: str | None = None,
        location: tuple[int, int] = (-1, -1),
        softkeys: Sequence[SoftKeyItem] = (),
    ) -> Image:
        """An image from rows of pixel values (0..3 at depth 2), centred by
        default; packing is done for you."""
        width = len(rows[0]) if rows else 0
        if any(len(row) != width for row in rows):
            raise InvalidObjectError(cls.TAG, "Width", "all rows must have the same width")
        flat = [pixel for row in rows for pixel in row]
        data = pack_pixels(flat, depth)
        x, y = location
        return cls(title, prompt, tuple(softkeys), x, y, width, len(rows), depth, data)

    def pixels(self) -> tuple[int, ...]:
        """The pixel values, row after row (what an emulated phone draws)."""
        return unpack_pixels(self.data, self.width * self.height, self.depth)


@dataclass(frozen=True, slots=True)
class ImageFile(_Screen):
    """CiscoIPPhoneImageFile: a PNG the phone fetches from ``url``."""

    TAG: ClassVar[str] = "CiscoIPPhoneImageFile"
    FIELDS: ClassVar[tuple[XmlField, ...]] = (
        *_HEAD,
        int_field("location_x", "LocationX"),
        int_field("location_y", "LocationY"),
        url_field("url", required=True),
        _SOFTKEYS,
    )
    location_x: int = 0
    location_y: int = 0
    url: str = ""

    def __post_init__(self) -> None:
        self._check_screen()
        check_int(self.TAG, "LocationX", self.location_x, -1)
        check_int(self.TAG, "LocationY", self.location_y, -1)
        check_url(self.TAG, "URL", self.url, required=True, http_only=True)


_STATUS_IMAGE = ("width", "height", "depth", "data")


@dataclass(frozen=True, slots=True)
class Status(Element):
    """CiscoIPPhoneStatus: text, an optional timer (seconds) and an optional
    image in the call plane's status window; it has no soft keys.  The image
    fields (width, height, depth, data) come all together or not at all."""

    TAG: ClassVar[str] = "CiscoIPPhoneStatus"
    FIELDS: ClassVar[tuple[XmlField, ...]] = (
        text_field("text", "Text"),
        int_field("timer", "Timer"),
        int_field("location_x", "LocationX"),
        int_field("location_y", "LocationY"),
        int_field("width", "Width"),
        int_field("height", "Height"),
        int_field("depth", "Depth"),
        hex_field("data", "Data"),
    )
    text: str = ""
    timer: int | None = None
    location_x: int | None = None
    location_y: int | None = None
    width: int | None = None
    height: int | None = None
    depth: int | None = None
    data: str | None = None

    def __post_init__(self) -> None:
        check_text(self.TAG, "Text", self.text, required=True)
        _check_status_common(self.TAG, self.timer, self.location_x, self.location_y)
        given = [name for name in _STATUS_IMAGE if getattr(self, name) is not None]
        if given and len(given) != len(_STATUS_IMAGE):
            raise InvalidObjectError(
                self.TAG, "Data", "Width, Height, Depth and Data come together or not at all"
            )
        if self.width is not None and self.height is not None and self.depth is not None:
            check_pixels(
                self.TAG, self.width, self.height, self.depth, self.data, PANE_WIDTH, PANE_HEIGHT
            )


def _check_status_common(owner: str, timer: object, x: object, y: object) -> None:
    if timer is not None:
        check_int(owner, "Timer", timer, 0)
    if x is not None:
        check_int(owner, "LocationX", x, -1)
    if y is not None:
        check_int(owner, "LocationY", y, -1)


@dataclass(frozen=True, slots=True)
class StatusFile(Element):
    """CiscoIPPhoneStatusFile: as Status, with a PNG by URL for the image."""

    TAG: ClassVar[str] = "CiscoIPPhoneStatusFile"
    FIELDS: ClassVar[tuple[XmlField, ...]] = (
        text_field("text", "Text"),
        int_field("timer", "Timer"),
        int_field("location_x", "LocationX"),
        int_field("location_y", "LocationY"),
        url_field("url", required=True),
    )
    text: str = ""
    timer: int | None = None
    location_x: int | None = None
    location_y: int | None = None
    url: str = ""

    def __post_init__(self) -> None:
        check_text(self.TAG, "Text", self.text, required=True)
        _check_status_common(self.TAG, self.timer, self.location_x, self.location_y)
        check_url(self.TAG, "URL", self.url, required=True, http_only=True)


@dataclass(frozen=True, slots=True)
class Execute(Element):
    """CiscoIPPhoneExecute: 1 to 3 items, at most one of them an HTTP URL
    (the others internal URIs).  The phone does not promise an order."""

    TAG: ClassVar[str] = "CiscoIPPhoneExecute"
    FIELDS: ClassVar[tuple[XmlField, ...]] = (items_field("items", "ExecuteItem", ExecuteItem),)
    items: tuple[ExecuteItem, ...] = ()

    def __post_init__(self) -> None:
        frozen = tuple_of(self.TAG, "ExecuteItem", self.items, ExecuteItem)
        object.__setattr__(self, "items", frozen)
        if not frozen:
            raise InvalidObjectError(self.TAG, "ExecuteItem", "at least one ExecuteItem needed")
        check_count(self.TAG, "ExecuteItem", frozen, MAX_EXECUTE_ITEMS)
        http = sum(item.is_http for item in self.items)
        if http > MAX_EXECUTE_HTTP_URLS:
            raise InvalidObjectError(
                self.TAG,
                "URL",
                f"{http} HTTP URLs, at most {MAX_EXECUTE_HTTP_URLS} allowed "
                "(the other items must be internal URIs)",
            )

    @classmethod
    def of(cls, *urls: str, priority: int = PRIORITY_NOW) -> Execute:
        """``Execute.of("http://h/a.xml", "Key:Services", priority=1)``: the
        priority goes to the HTTP URL, internal URIs get 0 (they run at once
        whatever they say)."""
        return cls(tuple(ExecuteItem(u, priority if is_http_url(u) else 0) for u in urls))


@dataclass(frozen=True, slots=True)
class Response(Element):
    """CiscoIPPhoneResponse: what a phone answers to an Execute pushed to
    its /CGI/Execute, one item per ExecuteItem."""

    TAG: ClassVar[str] = "CiscoIPPhoneResponse"
    FIELDS: ClassVar[tuple[XmlField, ...]] = (items_field("items", "ResponseItem", ResponseItem),)
    items: tuple[ResponseItem, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "items", tuple_of(self.TAG, "ResponseItem", self.items, ResponseItem)
        )


@dataclass(frozen=True, slots=True)
class Error(Element):
    """CiscoIPPhoneError: Number 1 parse error, 2 framing error, 3 internal
    file error, 4 authentication error; optionally a message as its text."""

    TAG: ClassVar[str] = "CiscoIPPhoneError"
    FIELDS: ClassVar[tuple[XmlField, ...]] = (
        attr_field("number", "Number", required=True, number=True),
        XmlField("message", "", FieldKind.CONTENT),
    )
    number: int = 1
    message: str = ""

    def __post_init__(self) -> None:
        check_int(self.TAG, "Number", self.number, 1, 4)
        check_text(self.TAG, "message", self.message, required=True)


CiscoObject: TypeAlias = (
    Text
    | Menu
    | IconMenu
    | IconFileMenu
    | Input
    | Directory
    | Image
    | ImageFile
    | Status
    | StatusFile
    | Execute
    | Response
    | Error
)
#: Root element name -> class: the objects a phone accepts.
OBJECT_CLASSES: dict[str, type[CiscoObject]] = {
    cls.TAG: cls
    for cls in (
        Text,
        Menu,
        IconMenu,
        IconFileMenu,
        Input,
        Directory,
        Image,
        ImageFile,
        Status,
        StatusFile,
        Execute,
        Response,
        Error,
    )
}


def iter_urls(element: Element, path: str | None = None) -> Iterator[tuple[str, str, str]]:
    """``(element path, field, URL)`` for every non-empty URL field, nested
    items included: ``("CiscoIPPhoneMenu/MenuItem[2]", "URL", "Key:Services")``."""
    here = path or element.TAG
    for spec in element.FIELDS:
        value = getattr(element, spec.attr)
        if spec.kind is FieldKind.ITEMS:
            for number, child in enumerate(value, 1):
                yield from iter_urls(child, f"{here}/{spec.tag}[{number}]")
        elif spec.tag in ("URL", "URLDown") and isinstance(value, str) and value:
            yield here, spec.tag, value


def check_family(obj: CiscoObject, family: PhoneFamily) -> None:
    """Refuse ``obj`` if it carries an internal URI phones of ``family``
    do not run (an SPA phone ignores RTPRx:, Display:, Notify:...), naming
    where it stands.  A Response only echoes URLs, so it is not checked."""
    if isinstance(obj, Response):
        return
    for where, field, value in iter_urls(obj):
        check_uri(
            value, family=family, in_execute=isinstance(obj, Execute), owner=where, field=field
        )
