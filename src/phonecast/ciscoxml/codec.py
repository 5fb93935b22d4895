"""Cisco XML objects to bytes and back, with a parser that trusts nothing.

Serialising writes the UTF-8 declaration, escapes ``& " ' < >`` and emits no
element the phones do not define.  Parsing goes through defusedxml (no DTD,
no entity expansion, no external entities), after a size check that refuses
an oversized body *before* reading it, and then bounds depth and element
count while walking the tree; every tag must be one the object defines, and
an error names it and where it stood (``CiscoIPPhoneMenu/MenuItem[3]/Icon``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from phonecast.ciscoxml.objects import (
    CiscoObject,
    CiscoXmlError,
    Directory,
    DirectoryEntry,
    Error,
    Execute,
    ExecuteItem,
    IconFileMenu,
    IconItem,
    IconMenu,
    Image,
    ImageFile,
    Input,
    InputItem,
    Menu,
    MenuItem,
    Response,
    ResponseItem,
    SoftKeyItem,
    Status,
    StatusFile,
    Text,
)

DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n'
MAX_BYTES = 64 * 1024
MAX_DEPTH = 8
MAX_ELEMENTS = 2000
_ESC = {'"': "&quot;", "'": "&apos;"}


# ------------------------------------------------------------------- writing


def _attr(value: str) -> str:
    """Always double quotes, with every special character escaped: the
    phones' parser is not a full XML parser."""
    return '"' + escape(value, _ESC) + '"'


def _el(tag: str, value: object) -> str:
    return "" if value is None else f"<{tag}>{escape(str(value), _ESC)}</{tag}>"


def _softkeys(keys: tuple[SoftKeyItem, ...]) -> str:
    return "".join(
        "<SoftKeyItem>"
        + _el("Name", k.name)
        + _el("URL", k.url)
        + _el("URLDown", k.url_down)
        + _el("Position", k.position)
        + "</SoftKeyItem>"
        for k in keys
    )


def _head(obj: Any) -> str:
    return _el("Title", obj.title) + _el("Prompt", obj.prompt)


def _menu_items(items: tuple[MenuItem, ...]) -> str:
    return "".join(
        "<MenuItem>"
        + _el("IconIndex", i.icon_index)
        + _el("Name", i.name)
        + _el("URL", i.url)
        + "</MenuItem>"
        for i in items
    )


def _body(obj: CiscoObject) -> str:
    if isinstance(obj, Text):
        return _head(obj) + _el("Text", obj.text) + _softkeys(obj.softkeys)
    if isinstance(obj, Menu):
        return _head(obj) + _menu_items(obj.items) + _softkeys(obj.softkeys)
    if isinstance(obj, IconMenu):
        icons = "".join(
            "<IconItem>"
            + _el("Index", i.index)
            + _el("Height", i.height)
            + _el("Width", i.width)
            + _el("Depth", i.depth)
            + _el("Data", i.data)
            + "</IconItem>"
            for i in obj.icons
        )
        return _head(obj) + _menu_items(obj.items) + icons + _softkeys(obj.softkeys)
    if isinstance(obj, IconFileMenu):
        icons = "".join(f"<IconItem>{_el('URL', u)}</IconItem>" for u in obj.icons)
        return _head(obj) + _menu_items(obj.items) + icons + _softkeys(obj.softkeys)
    if isinstance(obj, Input):
        fields = "".join(
            "<InputItem>"
            + _el("DisplayName", i.display_name)
            + _el("QueryStringParam", i.query_string_param)
            + _el("DefaultValue", i.default_value)
            + _el("InputFlags", i.input_flags)
            + "</InputItem>"
            for i in obj.items
        )
        return _head(obj) + _el("URL", obj.url) + fields + _softkeys(obj.softkeys)
    if isinstance(obj, Directory):
        entries = "".join(
            "<DirectoryEntry>"
            + _el("Name", e.name)
            + _el("Telephone", e.telephone)
            + "</DirectoryEntry>"
            for e in obj.entries
        )
        return _head(obj) + entries + _softkeys(obj.softkeys)
    if isinstance(obj, Image):
        return (
            _head(obj)
            + _el("LocationX", obj.location_x)
            + _el("LocationY", obj.location_y)
            + _el("Width", obj.width)
            + _el("Height", obj.height)
            + _el("Depth", obj.depth)
            + _el("Data", obj.data)
            + _softkeys(obj.softkeys)
        )
    if isinstance(obj, ImageFile):
        return (
            _head(obj)
            + _el("LocationX", obj.location_x)
            + _el("LocationY", obj.location_y)
            + _el("URL", obj.url)
            + _softkeys(obj.softkeys)
        )
    if isinstance(obj, Status):
        return _el("Text", obj.text) + _el("Timer", obj.timer)
    if isinstance(obj, StatusFile):
        return _el("Text", obj.text) + _el("URL", obj.url)
    raise CiscoXmlError(f"{type(obj).__name__} has no element body")


def to_xml(obj: CiscoObject) -> bytes:
    """The object as phones expect it: UTF-8, declared, escaped."""
    tag = obj.TAG
    if isinstance(obj, Execute):
        items = "".join(
            f"<ExecuteItem Priority={_attr(str(i.priority))} URL={_attr(i.url)}/>"
            for i in obj.items
        )
        return (DECLARATION + f"<{tag}>{items}</{tag}>").encode("utf-8")
    if isinstance(obj, Error):
        return (DECLARATION + f'<{tag} Number="{obj.number}"/>').encode("utf-8")
    if isinstance(obj, Response):
        items = "".join(
            f"<ResponseItem Status={_attr(str(i.status))} Data={_attr(i.data)} URL={_attr(i.url)}/>"
            for i in obj.items
        )
        return (DECLARATION + f"<{tag}>{items}</{tag}>").encode("utf-8")
    return (DECLARATION + f"<{tag}>{_body(obj)}</{tag}>").encode("utf-8")


# ------------------------------------------------------------------- reading


class _Reader:
    """Reads one element's children strictly, naming paths in errors."""

    def __init__(self, el: Element, path: str, allowed: dict[str, int | None]) -> None:
        self.el = el
        self.path = path
        self.allowed = allowed
        seen: dict[str, int] = {}
        for child in el:
            tag = child.tag
            if not isinstance(tag, str) or tag not in allowed:
                raise CiscoXmlError(f"{path}: undefined element <{tag}>")
            seen[tag] = seen.get(tag, 0) + 1
            limit = allowed[tag]
            if limit is not None and seen[tag] > limit:
                raise CiscoXmlError(f"{path}: more than {limit} <{tag}>")

    def text(self, tag: str) -> str | None:
        child = self.el.find(tag)
        if child is None:
            return None
        if len(child):
            raise CiscoXmlError(f"{self.path}/{tag}: unexpected child elements")
        return child.text or ""

    def integer(self, tag: str, default: int | None = None) -> int:
        raw = self.text(tag)
        if raw is None:
            if default is None:
                raise CiscoXmlError(f"{self.path}: missing <{tag}>")
            return default
        try:
            return int(raw.strip())
        except ValueError:
            raise CiscoXmlError(f"{self.path}/{tag}: {raw[:20]!r} is not a number") from None

    def children(self, tag: str) -> list[tuple[Element, str]]:
        return [(c, f"{self.path}/{tag}[{i}]") for i, c in enumerate(self.el.findall(tag), 1)]


_HEAD = {"Title": 1, "Prompt": 1, "SoftKeyItem": None}


def _softkeys_of(r: _Reader) -> tuple[SoftKeyItem, ...]:
    keys = []
    for el, path in r.children("SoftKeyItem"):
        k = _Reader(el, path, {"Name": 1, "URL": 1, "URLDown": 1, "Position": 1})
        keys.append(
            SoftKeyItem(
                k.text("Name") or "",
                k.text("URL") or "",
                k.text("URLDown"),
                k.integer("Position", 1),
            )
        )
    return tuple(keys)


def _menu_items_of(r: _Reader) -> tuple[MenuItem, ...]:
    items = []
    for el, path in r.children("MenuItem"):
        m = _Reader(el, path, {"Name": 1, "URL": 1, "IconIndex": 1})
        index = m.text("IconIndex")
        items.append(
            MenuItem(
                m.text("Name") or "",
                m.text("URL") or "",
                None if index is None else m.integer("IconIndex"),
            )
        )
    return tuple(items)


def _read_text(el: Element, path: str) -> CiscoObject:
    r = _Reader(el, path, {**_HEAD, "Text": 1})
    return Text(r.text("Title"), r.text("Prompt"), _softkeys_of(r), r.text("Text") or "")


def _read_menu(el: Element, path: str) -> CiscoObject:
    r = _Reader(el, path, {**_HEAD, "MenuItem": None})
    return Menu(r.text("Title"), r.text("Prompt"), _softkeys_of(r), _menu_items_of(r))


def _read_icon_menu(el: Element, path: str) -> CiscoObject:
    r = _Reader(el, path, {**_HEAD, "MenuItem": None, "IconItem": None})
    icons = []
    for child, cpath in r.children("IconItem"):
        i = _Reader(child, cpath, {"Index": 1, "Height": 1, "Width": 1, "Depth": 1, "Data": 1})
        icons.append(
            IconItem(
                i.integer("Index"),
                i.integer("Width"),
                i.integer("Height"),
                i.integer("Depth"),
                (i.text("Data") or "").strip(),
            )
        )
    return IconMenu(
        r.text("Title"), r.text("Prompt"), _softkeys_of(r), _menu_items_of(r), tuple(icons)
    )


def _read_icon_file_menu(el: Element, path: str) -> CiscoObject:
    r = _Reader(el, path, {**_HEAD, "MenuItem": None, "IconItem": None})
    icons = tuple(
        _Reader(c, p, {"URL": 1, "Index": 1}).text("URL") or "" for c, p in r.children("IconItem")
    )
    return IconFileMenu(
        r.text("Title"), r.text("Prompt"), _softkeys_of(r), _menu_items_of(r), icons
    )


def _read_input(el: Element, path: str) -> CiscoObject:
    r = _Reader(el, path, {**_HEAD, "URL": 1, "InputItem": None})
    items = []
    for child, cpath in r.children("InputItem"):
        i = _Reader(
            child,
            cpath,
            {"DisplayName": 1, "QueryStringParam": 1, "DefaultValue": 1, "InputFlags": 1},
        )
        items.append(
            InputItem(
                i.text("DisplayName") or "",
                i.text("QueryStringParam") or "",
                i.text("DefaultValue") or "",
                i.text("InputFlags") or "A",
            )
        )
    return Input(
        r.text("Title"), r.text("Prompt"), _softkeys_of(r), r.text("URL") or "", tuple(items)
    )


def _read_directory(el: Element, path: str) -> CiscoObject:
    r = _Reader(el, path, {**_HEAD, "DirectoryEntry": None})
    entries = []
    for child, cpath in r.children("DirectoryEntry"):
        d = _Reader(child, cpath, {"Name": 1, "Telephone": 1})
        entries.append(DirectoryEntry(d.text("Name") or "", d.text("Telephone") or ""))
    return Directory(r.text("Title"), r.text("Prompt"), _softkeys_of(r), tuple(entries))


def _read_image(el: Element, path: str) -> CiscoObject:
    r = _Reader(
        el,
        path,
        {**_HEAD, "LocationX": 1, "LocationY": 1, "Width": 1, "Height": 1, "Depth": 1, "Data": 1},
    )
    return Image(
        r.text("Title"),
        r.text("Prompt"),
        _softkeys_of(r),
        r.integer("LocationX", 0),
        r.integer("LocationY", 0),
        r.integer("Width"),
        r.integer("Height"),
        r.integer("Depth"),
        (r.text("Data") or "").strip(),
    )


def _read_image_file(el: Element, path: str) -> CiscoObject:
    r = _Reader(el, path, {**_HEAD, "LocationX": 1, "LocationY": 1, "URL": 1})
    return ImageFile(
        r.text("Title"),
        r.text("Prompt"),
        _softkeys_of(r),
        r.integer("LocationX", 0),
        r.integer("LocationY", 0),
        r.text("URL") or "",
    )


def _read_status(el: Element, path: str) -> CiscoObject:
    r = _Reader(el, path, {"Text": 1, "Timer": 1})
    timer = r.text("Timer")
    return Status(r.text("Text") or "", None if timer is None else r.integer("Timer"))


def _read_status_file(el: Element, path: str) -> CiscoObject:
    r = _Reader(el, path, {"Text": 1, "URL": 1})
    return StatusFile(r.text("Text") or "", r.text("URL") or "")


def _read_execute(el: Element, path: str) -> CiscoObject:
    _Reader(el, path, {"ExecuteItem": None})
    items = []
    for i, child in enumerate(el.findall("ExecuteItem"), 1):
        unknown = set(child.attrib) - {"URL", "Priority"}
        if unknown or len(child):
            raise CiscoXmlError(f"{path}/ExecuteItem[{i}]: undefined attribute or element")
        url = child.get("URL")
        if not url:
            raise CiscoXmlError(f"{path}/ExecuteItem[{i}]: missing URL")
        try:
            priority = int(child.get("Priority", "0"))
        except ValueError:
            raise CiscoXmlError(f"{path}/ExecuteItem[{i}]: Priority is not a number") from None
        items.append(ExecuteItem(url, priority))
    return Execute(tuple(items))


def _read_response(el: Element, path: str) -> CiscoObject:
    _Reader(el, path, {"ResponseItem": None})
    return Response(
        tuple(
            ResponseItem(int(c.get("Status", "0")), c.get("Data", ""), c.get("URL", ""))
            for c in el.findall("ResponseItem")
        )
    )


def _read_error(el: Element, path: str) -> CiscoObject:
    try:
        return Error(int(el.get("Number", "1")))
    except ValueError:
        raise CiscoXmlError(f"{path}: Number is not a number") from None


_READERS: dict[str, Callable[[Element, str], CiscoObject]] = {
    "CiscoIPPhoneText": _read_text,
    "CiscoIPPhoneMenu": _read_menu,
    "CiscoIPPhoneIconMenu": _read_icon_menu,
    "CiscoIPPhoneIconFileMenu": _read_icon_file_menu,
    "CiscoIPPhoneInput": _read_input,
    "CiscoIPPhoneDirectory": _read_directory,
    "CiscoIPPhoneImage": _read_image,
    "CiscoIPPhoneImageFile": _read_image_file,
    "CiscoIPPhoneStatus": _read_status,
    "CiscoIPPhoneStatusFile": _read_status_file,
    "CiscoIPPhoneExecute": _read_execute,
    "CiscoIPPhoneResponse": _read_response,
    "CiscoIPPhoneError": _read_error,
}


def _bounded(root: Element, max_depth: int, max_elements: int) -> None:
    count = 0
    stack: list[tuple[Element, int]] = [(root, 1)]
    while stack:
        el, depth = stack.pop()
        count += 1
        if depth > max_depth:
            raise CiscoXmlError(f"nesting deeper than {max_depth} elements")
        if count > max_elements:
            raise CiscoXmlError(f"more than {max_elements} elements")
        stack.extend((child, depth + 1) for child in el)


def parse(
    data: bytes,
    *,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    max_elements: int = MAX_ELEMENTS,
) -> CiscoObject:
    """A Cisco IP phone object from ``data``; :class:`CiscoXmlError` otherwise."""
    if len(data) > max_bytes:
        raise CiscoXmlError(f"object of {len(data)} bytes exceeds {max_bytes}", number=2)
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise CiscoXmlError(f"refused XML: {type(exc).__name__}") from None
    except SafeET.ParseError as exc:
        raise CiscoXmlError(f"not well-formed XML: {exc}") from None
    _bounded(root, max_depth, max_elements)
    reader = _READERS.get(root.tag) if isinstance(root.tag, str) else None
    if reader is None:
        raise CiscoXmlError(f"unknown root element <{root.tag}>")
    return reader(root, str(root.tag))


def parse_execute(data: bytes, **limits: int) -> Execute:
    """A CiscoIPPhoneExecute (what an XML-Service NOTIFY body may carry)."""
    obj = parse(data, **limits)
    if not isinstance(obj, Execute):
        raise CiscoXmlError(f"expected CiscoIPPhoneExecute, got {obj.TAG}")
    return obj
