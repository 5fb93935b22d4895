"""Cisco IP phone XML objects as immutable values, with the phones' limits.

Limits and rules are those of Cisco's "IP Phone Services Application
Development Notes" as gathered in the project's field guide: at most 100
menu items (names at most 64 characters), 5 input items, 32 directory
entries, 32 icon menu items, 3 Execute items of which at most one HTTP URL,
soft keys at positions 1-16, image depth at most 2, text without control
characters other than CR, LF and tab.  A value that breaks one raises
:class:`CiscoXmlError` naming the object, the field and the limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


class CiscoXmlError(ValueError):
    """An object breaks a rule; ``number`` is the CiscoIPPhoneError a phone
    would report (1 parse error, 2 framing, 3 internal file, 4 auth)."""

    def __init__(self, message: str, number: int = 1) -> None:
        super().__init__(message)
        self.number = number


INTERNAL_URI_SCHEMES = (
    "Key",
    "SoftKey",
    "Init",
    "Dial",
    "EditDial",
    "Play",
    "Display",
    "QueryStringParam",
    "RTPRx",
    "RTPTx",
    "RTPMRx",
    "RTPMTx",
    "Notify",
    "SendDigits",
)
#: What SPA / Multiplatform phones support (field guide).
SPA_URI_SCHEMES = ("Key", "SoftKey", "Init", "Dial", "EditDial", "Play")
_ALLOWED_CONTROL = {"\r", "\n", "\t"}


def check_text(owner: str, name: str, value: str | None, limit: int | None = None) -> None:
    """Refuse control characters (other than CR, LF, tab) and overlong text."""
    if value is None:
        return
    bad = next((c for c in value if ord(c) < 0x20 and c not in _ALLOWED_CONTROL), None)
    if bad is not None or "\x7f" in value:
        raise CiscoXmlError(f"{owner}: {name} contains a control character")
    if limit is not None and len(value) > limit:
        raise CiscoXmlError(f"{owner}: {name} has {len(value)} characters, at most {limit}")


def _count(owner: str, what: str, items: tuple[object, ...], limit: int) -> None:
    if len(items) > limit:
        raise CiscoXmlError(f"{owner}: {len(items)} {what} elements, at most {limit} allowed")


@dataclass(frozen=True, slots=True)
class InternalUri:
    """A parsed internal URI such as ``Key:Services`` or ``Dial:1234``."""

    scheme: str
    argument: str

    @classmethod
    def parse(cls, uri: str, *, family: str = "enterprise") -> InternalUri | None:
        """The internal URI in ``uri``, ``None`` for http(s); raises for an
        unknown scheme or one the phone family does not support."""
        if uri.lower().startswith(("http://", "https://")):
            return None
        scheme, colon, arg = uri.partition(":")
        known = {s.lower(): s for s in INTERNAL_URI_SCHEMES}
        if not colon or scheme.lower() not in known:
            raise CiscoXmlError(f"unknown URI {uri!r} (not http(s) nor an internal URI)")
        canonical = known[scheme.lower()]
        if family == "spa" and canonical not in SPA_URI_SCHEMES:
            raise CiscoXmlError(f"SPA phones do not support {canonical}: URIs")
        return cls(canonical, arg)


@dataclass(frozen=True, slots=True)
class SoftKeyItem:
    """A soft key: label, URL (pressed), URLDown, position 1-16."""

    name: str
    url: str = ""
    url_down: str | None = None
    position: int = 1

    def __post_init__(self) -> None:
        check_text("SoftKeyItem", "Name", self.name)
        if not 1 <= self.position <= 16:
            raise CiscoXmlError(f"SoftKeyItem: Position {self.position} outside 1..16")


@dataclass(frozen=True, slots=True)
class MenuItem:
    """A menu entry (for IconMenu, ``icon_index`` names its icon)."""

    name: str
    url: str = ""
    icon_index: int | None = None

    def __post_init__(self) -> None:
        check_text("MenuItem", "Name", self.name, 64)


@dataclass(frozen=True, slots=True)
class InputItem:
    """An input field: label, query parameter, default, flags (A T N E U L P)."""

    display_name: str
    query_string_param: str
    default_value: str = ""
    input_flags: str = "A"

    def __post_init__(self) -> None:
        check_text("InputItem", "DisplayName", self.display_name)
        flags = self.input_flags
        if not flags or flags[0] not in "ATNEUL" or any(c not in "ATNEULP" for c in flags):
            raise CiscoXmlError(
                f"InputItem: InputFlags {flags!r} is not one of A T N E U L "
                "(optionally followed by P)"
            )


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """A directory line: name and number."""

    name: str
    telephone: str

    def __post_init__(self) -> None:
        check_text("DirectoryEntry", "Name", self.name)
        check_text("DirectoryEntry", "Telephone", self.telephone)


@dataclass(frozen=True, slots=True)
class IconItem:
    """An icon of an IconMenu: packed hex pixels, 16x10 at most."""

    index: int
    width: int
    height: int
    depth: int
    data: str

    def __post_init__(self) -> None:
        _check_pixels("IconItem", self.width, self.height, self.depth, self.data, 16, 10)


@dataclass(frozen=True, slots=True)
class ExecuteItem:
    """One command of an Execute object: a URL or internal URI and a priority."""

    url: str
    priority: int = 0

    def __post_init__(self) -> None:
        if self.priority not in (0, 1, 2):
            raise CiscoXmlError(f"ExecuteItem: Priority {self.priority} is not 0, 1 or 2")
        check_text("ExecuteItem", "URL", self.url)
        internal = InternalUri.parse(self.url)
        if internal is not None and internal.scheme == "SoftKey":
            raise CiscoXmlError("ExecuteItem: SoftKey: URIs are not allowed in Execute")

    @property
    def is_http(self) -> bool:
        """True for an http(s) URL (the phone fetches it)."""
        return self.url.lower().startswith(("http://", "https://"))


@dataclass(frozen=True, slots=True)
class ResponseItem:
    """One result of a CiscoIPPhoneResponse."""

    status: int
    data: str = ""
    url: str = ""


def _check_pixels(
    owner: str, width: int, height: int, depth: int, data: str, max_w: int, max_h: int
) -> None:
    if depth not in (1, 2):
        raise CiscoXmlError(f"{owner}: Depth {depth}, at most 2 allowed")
    if not (0 < width <= max_w and 0 < height <= max_h):
        raise CiscoXmlError(f"{owner}: {width}x{height} exceeds {max_w}x{max_h}")
    expected = (width * height * depth + 7) // 8 * 2
    if len(data) != expected or any(c not in "0123456789abcdefABCDEF" for c in data):
        raise CiscoXmlError(
            f"{owner}: Data must be {expected} hex digits for "
            f"{width}x{height}x{depth}, got {len(data)}"
        )


@dataclass(frozen=True, slots=True)
class _Screen:
    """Fields most display objects share."""

    TAG: ClassVar[str] = ""
    title: str | None = None
    prompt: str | None = None
    softkeys: tuple[SoftKeyItem, ...] = ()

    def _check_common(self) -> None:
        check_text(self.TAG, "Title", self.title)
        check_text(self.TAG, "Prompt", self.prompt)
        _count(self.TAG, "SoftKeyItem", self.softkeys, 16)


@dataclass(frozen=True, slots=True)
class Text(_Screen):
    """CiscoIPPhoneText: a title, a prompt and text."""

    TAG: ClassVar[str] = "CiscoIPPhoneText"
    text: str = ""

    def __post_init__(self) -> None:
        self._check_common()
        check_text(self.TAG, "Text", self.text, 4000)


@dataclass(frozen=True, slots=True)
class Menu(_Screen):
    """CiscoIPPhoneMenu: up to 100 items."""

    TAG: ClassVar[str] = "CiscoIPPhoneMenu"
    items: tuple[MenuItem, ...] = ()

    def __post_init__(self) -> None:
        self._check_common()
        _count(self.TAG, "MenuItem", self.items, 100)


@dataclass(frozen=True, slots=True)
class IconMenu(_Screen):
    """CiscoIPPhoneIconMenu: up to 32 items, each naming an icon."""

    TAG: ClassVar[str] = "CiscoIPPhoneIconMenu"
    items: tuple[MenuItem, ...] = ()
    icons: tuple[IconItem, ...] = ()

    def __post_init__(self) -> None:
        self._check_common()
        _count(self.TAG, "MenuItem", self.items, 32)
        _count(self.TAG, "IconItem", self.icons, 32)


@dataclass(frozen=True, slots=True)
class IconFileMenu(_Screen):
    """CiscoIPPhoneIconFileMenu: items with PNG icon URLs (``icons`` holds URLs)."""

    TAG: ClassVar[str] = "CiscoIPPhoneIconFileMenu"
    items: tuple[MenuItem, ...] = ()
    icons: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self._check_common()
        _count(self.TAG, "MenuItem", self.items, 32)


@dataclass(frozen=True, slots=True)
class Input(_Screen):
    """CiscoIPPhoneInput: a form of up to 5 fields posted to ``url``."""

    TAG: ClassVar[str] = "CiscoIPPhoneInput"
    url: str = ""
    items: tuple[InputItem, ...] = ()

    def __post_init__(self) -> None:
        self._check_common()
        _count(self.TAG, "InputItem", self.items, 5)


@dataclass(frozen=True, slots=True)
class Directory(_Screen):
    """CiscoIPPhoneDirectory: up to 32 entries."""

    TAG: ClassVar[str] = "CiscoIPPhoneDirectory"
    entries: tuple[DirectoryEntry, ...] = ()

    def __post_init__(self) -> None:
        self._check_common()
        _count(self.TAG, "DirectoryEntry", self.entries, 32)


@dataclass(frozen=True, slots=True)
class Image(_Screen):
    """CiscoIPPhoneImage: packed pixels on the 133x65 pane."""

    TAG: ClassVar[str] = "CiscoIPPhoneImage"
    location_x: int = 0
    location_y: int = 0
    width: int = 1
    height: int = 1
    depth: int = 2
    data: str = "00"

    def __post_init__(self) -> None:
        self._check_common()
        _check_pixels(self.TAG, self.width, self.height, self.depth, self.data, 133, 65)


@dataclass(frozen=True, slots=True)
class ImageFile(_Screen):
    """CiscoIPPhoneImageFile: a PNG by URL."""

    TAG: ClassVar[str] = "CiscoIPPhoneImageFile"
    location_x: int = 0
    location_y: int = 0
    url: str = ""

    def __post_init__(self) -> None:
        self._check_common()


@dataclass(frozen=True, slots=True)
class Status:
    """CiscoIPPhoneStatus: text (and optional timer) in the status line."""

    TAG: ClassVar[str] = "CiscoIPPhoneStatus"
    text: str = ""
    timer: int | None = None

    def __post_init__(self) -> None:
        check_text(self.TAG, "Text", self.text, 32)


@dataclass(frozen=True, slots=True)
class StatusFile:
    """CiscoIPPhoneStatusFile: a PNG status icon by URL."""

    TAG: ClassVar[str] = "CiscoIPPhoneStatusFile"
    text: str = ""
    url: str = ""

    def __post_init__(self) -> None:
        check_text(self.TAG, "Text", self.text, 32)


@dataclass(frozen=True, slots=True)
class Execute:
    """CiscoIPPhoneExecute: up to 3 items, at most one HTTP URL."""

    TAG: ClassVar[str] = "CiscoIPPhoneExecute"
    items: tuple[ExecuteItem, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.items:
            raise CiscoXmlError(f"{self.TAG}: at least one ExecuteItem is needed")
        _count(self.TAG, "ExecuteItem", self.items, 3)
        http = sum(item.is_http for item in self.items)
        if http > 1:
            raise CiscoXmlError(f"{self.TAG}: {http} HTTP URLs, at most 1 allowed")

    @classmethod
    def of(cls, *urls: str, priority: int = 0) -> Execute:
        """An Execute of ``urls`` (HTTP or internal), all at ``priority``."""
        return cls(tuple(ExecuteItem(u, priority) for u in urls))


@dataclass(frozen=True, slots=True)
class Response:
    """CiscoIPPhoneResponse: what the phone answers to a pushed Execute."""

    TAG: ClassVar[str] = "CiscoIPPhoneResponse"
    items: tuple[ResponseItem, ...] = ()


@dataclass(frozen=True, slots=True)
class Error:
    """CiscoIPPhoneError: Number 1 parse, 2 framing, 3 internal file, 4 auth."""

    TAG: ClassVar[str] = "CiscoIPPhoneError"
    number: int = 1

    def __post_init__(self) -> None:
        if self.number not in (1, 2, 3, 4):
            raise CiscoXmlError(f"{self.TAG}: Number {self.number} is not 1-4")


CiscoObject = (
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
