"""The items inside Cisco objects (soft keys, menu items, input fields,
directory entries, icons, Execute and Response items) and the limits.

Items check their own rules (a name's length, a soft key's position, an
Execute item's priority and URL); the objects in
:mod:`phonecast.ciscoxml.objects` check what only the whole can see
(counts, unique positions, one HTTP URL per Execute).  The numbers are those
of Cisco's "IP Phone Services Application Development Notes".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from phonecast.ciscoxml._schema import (
    Element,
    XmlField,
    attr_field,
    check_int,
    check_pixels,
    check_text,
    check_url,
    hex_field,
    int_field,
    text_field,
    url_field,
)
from phonecast.ciscoxml.errors import InvalidObjectError
from phonecast.ciscoxml.uris import is_http_url

MAX_MENU_ITEMS = 100
MAX_NAME_CHARS = 64
MAX_INPUT_ITEMS = 5
MAX_DIRECTORY_ENTRIES = 32
MAX_ICON_MENU_ITEMS = 32
MAX_EXECUTE_ITEMS = 3
MAX_EXECUTE_HTTP_URLS = 1
MAX_SOFTKEYS = 16
PANE_WIDTH, PANE_HEIGHT = 133, 65
ICON_WIDTH, ICON_HEIGHT = 16, 10
MAX_ICON_INDEX = 9
#: Execute priorities (they apply to HTTP URLs; internal URIs run at once).
PRIORITY_NOW, PRIORITY_WHEN_IDLE, PRIORITY_ONLY_IF_IDLE = 0, 1, 2
#: InputFlags: one input type, optionally followed by the one modifier P
#: (password: shown as asterisks), e.g. ``A``, ``N``, ``AP``, ``TP``.
INPUT_FLAGS = re.compile(r"[ATNEUL]P?")
#: Characters a QueryStringParam name cannot hold: the phone appends
#: ``name=value`` to the URL, so these would change the query's meaning.
_QUERY_NAME = re.compile(r"[^\s&=?#]+")


# -------------------------------------------------------------------- items


@dataclass(frozen=True, slots=True)
class SoftKeyItem(Element):
    """A soft key: its label, the URL run on release (and on press, for
    ``url_down``), and its position 1-16 (``None``: the phone places it)."""

    TAG: ClassVar[str] = "SoftKeyItem"
    FIELDS: ClassVar[tuple[XmlField, ...]] = (
        text_field("name", "Name", required=True),
        url_field("url"),
        url_field("url_down", "URLDown"),
        int_field("position", "Position"),
    )
    name: str
    url: str = ""
    url_down: str | None = None
    position: int | None = None

    def __post_init__(self) -> None:
        check_text(self.TAG, "Name", self.name, required=True)
        check_url(self.TAG, "URL", self.url)
        check_url(self.TAG, "URLDown", self.url_down)
        if self.url_down == "":  # "no URLDown" has one spelling, so values compare equal
            object.__setattr__(self, "url_down", None)
        if self.position is not None:
            check_int(self.TAG, "Position", self.position, 1, MAX_SOFTKEYS)


@dataclass(frozen=True, slots=True)
class MenuItem(Element):
    """A menu entry (name at most 64 characters; two CRs may split it over
    three lines); ``icon_index`` names its icon in an icon menu only."""

    TAG: ClassVar[str] = "MenuItem"
    FIELDS: ClassVar[tuple[XmlField, ...]] = (
        int_field("icon_index", "IconIndex"),
        text_field("name", "Name", required=True),
        url_field("url"),
    )
    name: str
    url: str = ""
    icon_index: int | None = None

    def __post_init__(self) -> None:
        check_text(self.TAG, "Name", self.name, limit=MAX_NAME_CHARS, required=True)
        check_url(self.TAG, "URL", self.url)
        if self.icon_index is not None:
            check_int(self.TAG, "IconIndex", self.icon_index, 0, MAX_ICON_INDEX)


@dataclass(frozen=True, slots=True)
class InputItem(Element):
    """An input field: label, the query parameter it is sent as, a default
    and :data:`INPUT_FLAGS` (``A`` text, ``T`` phone number, ``N`` numeric,
    ``E`` equation, ``U`` upper case, ``L`` lower case; ``P`` suffix masks)."""

    TAG: ClassVar[str] = "InputItem"
    FIELDS: ClassVar[tuple[XmlField, ...]] = (
        text_field("display_name", "DisplayName", required=True),
        text_field("query_string_param", "QueryStringParam", required=True),
        text_field("default_value", "DefaultValue"),
        text_field("input_flags", "InputFlags", required=True),
    )
    display_name: str
    query_string_param: str
    default_value: str = ""
    input_flags: str = "A"

    def __post_init__(self) -> None:
        check_text(self.TAG, "DisplayName", self.display_name, required=True)
        check_text(self.TAG, "QueryStringParam", self.query_string_param, required=True)
        if _QUERY_NAME.fullmatch(self.query_string_param) is None:
            raise InvalidObjectError(
                self.TAG,
                "QueryStringParam",
                f"QueryStringParam {self.query_string_param!r} must be non-empty, "
                "without blanks or & = ? #",
            )
        check_text(self.TAG, "DefaultValue", self.default_value, required=True)
        check_text(self.TAG, "InputFlags", self.input_flags, required=True)
        if INPUT_FLAGS.fullmatch(self.input_flags) is None:
            raise InvalidObjectError(
                self.TAG,
                "InputFlags",
                f"InputFlags {self.input_flags!r} must be one of A T N E U L, "
                "optionally followed by P (password)",
            )


@dataclass(frozen=True, slots=True)
class DirectoryEntry(Element):
    """A directory line: a name and the number the phone dials."""

    TAG: ClassVar[str] = "DirectoryEntry"
    FIELDS: ClassVar[tuple[XmlField, ...]] = (
        text_field("name", "Name", required=True),
        text_field("telephone", "Telephone", required=True),
    )
    name: str
    telephone: str

    def __post_init__(self) -> None:
        check_text(self.TAG, "Name", self.name, required=True)
        check_text(self.TAG, "Telephone", self.telephone, required=True)


@dataclass(frozen=True, slots=True)
class IconItem(Element):
    """An icon of a CiscoIPPhoneIconMenu: index 0-9, at most 16x10 pixels
    of depth 1 or 2, packed as hex (see :func:`pack_pixels`)."""

    TAG: ClassVar[str] = "IconItem"
    FIELDS: ClassVar[tuple[XmlField, ...]] = (
        int_field("index", "Index", required=True),
        int_field("height", "Height", required=True),
        int_field("width", "Width", required=True),
        int_field("depth", "Depth", required=True),
        hex_field("data", "Data", required=True),
    )
    index: int
    width: int
    height: int
    depth: int
    data: str

    def __post_init__(self) -> None:
        check_int(self.TAG, "Index", self.index, 0, MAX_ICON_INDEX)
        check_pixels(
            self.TAG, self.width, self.height, self.depth, self.data, ICON_WIDTH, ICON_HEIGHT
        )


@dataclass(frozen=True, slots=True)
class IconFileItem(Element):
    """An icon of a CiscoIPPhoneIconFileMenu: index 0-9 and a PNG URL."""

    TAG: ClassVar[str] = "IconItem"
    FIELDS: ClassVar[tuple[XmlField, ...]] = (
        int_field("index", "Index", required=True),
        url_field("url", required=True),
    )
    index: int
    url: str

    def __post_init__(self) -> None:
        check_int(self.TAG, "Index", self.index, 0, MAX_ICON_INDEX)
        check_url(self.TAG, "URL", self.url, required=True, http_only=True)


@dataclass(frozen=True, slots=True)
class ExecuteItem(Element):
    """One command of an Execute object: an http(s) URL the phone fetches or
    an internal URI it runs, and a priority: 0 now, 1 when idle, 2 only if
    idle.  Phones apply the priority to HTTP URLs only (see
    :attr:`effective_priority`); SoftKey: and Notify: URIs are refused."""

    TAG: ClassVar[str] = "ExecuteItem"
    FIELDS: ClassVar[tuple[XmlField, ...]] = (
        attr_field("priority", "Priority", number=True),
        attr_field("url", "URL", required=True),
    )
    url: str
    priority: int = PRIORITY_NOW

    def __post_init__(self) -> None:
        if isinstance(self.priority, bool) or not isinstance(self.priority, int):
            raise InvalidObjectError(self.TAG, "Priority", "Priority must be an integer")
        if self.priority not in (PRIORITY_NOW, PRIORITY_WHEN_IDLE, PRIORITY_ONLY_IF_IDLE):
            raise InvalidObjectError(
                self.TAG,
                "Priority",
                f"Priority {self.priority} outside 0..2 (0 now, 1 when idle, 2 only if idle)",
            )
        check_url(self.TAG, "URL", self.url, required=True, in_execute=True)

    @property
    def is_http(self) -> bool:
        """True for an http(s) URL (the phone fetches it)."""
        return is_http_url(self.url)

    @property
    def effective_priority(self) -> int:
        """The priority a phone honours: internal URIs always run at once."""
        return self.priority if self.is_http else PRIORITY_NOW


@dataclass(frozen=True, slots=True)
class ResponseItem(Element):
    """One result in a CiscoIPPhoneResponse: status 0 for success, the data
    the phone returns, and the URL or URI it was asked to run (echoed as is,
    so it is only checked for characters, not as a URI)."""

    TAG: ClassVar[str] = "ResponseItem"
    FIELDS: ClassVar[tuple[XmlField, ...]] = (
        attr_field("status", "Status", required=True, number=True),
        attr_field("data", "Data"),
        attr_field("url", "URL"),
    )
    status: int
    data: str = ""
    url: str = ""

    def __post_init__(self) -> None:
        check_int(self.TAG, "Status", self.status, -(2**31), 2**31 - 1)
        check_text(self.TAG, "Data", self.data, required=True)
        check_text(self.TAG, "URL", self.url, required=True)
