"""Cisco objects to the bytes a phone reads.

What the phones need, and why each rule is here:

* UTF-8 with the encoding declared: without a declaration the phone assumes
  its own locale and mangles anything outside ASCII.
* ``& " ' < >`` escaped everywhere, always with the five predefined
  entities: the phone's parser is not a full XML parser and is not known to
  read anything else.  Tab, LF and CR in *attributes* become character
  references, because XML turns raw ones into spaces there.
* Only the elements the object defines, in the order Cisco documents them;
  absent optional fields are left out rather than written empty.
* No control characters but CR, LF and tab.  Objects refuse them when built;
  the writer checks again so a value smuggled past a constructor still
  cannot reach a phone.

Line ends inside element text are written raw: a CR the caller puts in a
menu name reaches the phone as a CR (Cisco documents two CRs splitting a
name over three lines), although any XML parser, ours included, reads it
back as LF.
"""

from __future__ import annotations

import re

from phonecast.ciscoxml._schema import Element, FieldKind, bad_character
from phonecast.ciscoxml.errors import InvalidObjectError
from phonecast.ciscoxml.objects import OBJECT_CLASSES, CiscoObject

DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n'
CONTENT_TYPE = "text/xml; charset=utf-8"

_TEXT_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"}
_ATTR_ESCAPES = {**_TEXT_ESCAPES, "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}
_TEXT_SPECIAL = re.compile("[&<>\"']")
_ATTR_SPECIAL = re.compile("[&<>\"'\t\n\r]")
_OBJECT_TYPES = tuple(OBJECT_CLASSES.values())


def _checked(value: str, where: str, field: str) -> str:
    bad = bad_character(value)
    if bad is not None:
        raise InvalidObjectError(where, field, f"{field} contains {bad[1]} (offset {bad[0]})")
    return value


def escape_text(value: str, *, where: str = "text", field: str = "text") -> str:
    """``value`` as element content: the five specials escaped, refused if it
    holds a character the phone cannot take (``where``/``field`` name it)."""
    return _TEXT_SPECIAL.sub(lambda m: _TEXT_ESCAPES[m.group()], _checked(value, where, field))


def escape_attribute(value: str, *, where: str = "attribute", field: str = "value") -> str:
    """``value`` inside double quotes: as :func:`escape_text`, plus tab, LF
    and CR as character references so they survive attribute normalisation."""
    return _ATTR_SPECIAL.sub(lambda m: _ATTR_ESCAPES[m.group()], _checked(value, where, field))


def _write(element: Element, path: str, out: list[str]) -> None:
    attributes: list[str] = []
    children: list[str] = []
    content = ""
    has_children = False
    for spec in element.FIELDS:
        value = getattr(element, spec.attr)
        if spec.kind is FieldKind.ITEMS:
            has_children = True
            for number, child in enumerate(value, 1):
                _write(child, f"{path}/{spec.tag}[{number}]", children)
            continue
        if spec.is_leaf:
            has_children = True
        if value is None or (spec.omit_empty and value == ""):
            continue
        if spec.is_attribute:
            quoted = escape_attribute(str(value), where=path, field=spec.tag)
            attributes.append(f' {spec.tag}="{quoted}"')
        elif spec.kind is FieldKind.CONTENT:
            content = escape_text(str(value), where=path, field=spec.attr)
        else:
            escaped = escape_text(str(value), where=path, field=spec.tag)
            children.append(f"<{spec.tag}>{escaped}</{spec.tag}>")
    tag = element.TAG
    if not has_children and not content:
        out.append(f"<{tag}{''.join(attributes)}/>")
    else:
        out.append(f"<{tag}{''.join(attributes)}>{content}{''.join(children)}</{tag}>")


def to_xml(obj: CiscoObject) -> bytes:
    """``obj`` as a phone expects it: declared UTF-8, escaped, only the
    elements the object defines.  Serve it as :data:`CONTENT_TYPE`."""
    if not isinstance(obj, _OBJECT_TYPES):
        raise TypeError(f"not a Cisco IP phone object: {type(obj).__name__}")
    out = [DECLARATION]
    _write(obj, obj.TAG, out)
    return "".join(out).encode("utf-8")
