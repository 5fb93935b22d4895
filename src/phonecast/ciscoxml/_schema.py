"""The shared vocabulary of the objects, the writer and the parser.

Each object class declares its XML shape once, as a tuple of
:class:`XmlField` (attribute name, XML name, kind), and the writer and the
parser both read that table.  One declaration means the two can never drift:
whatever :func:`~phonecast.ciscoxml.to_xml` emits, the parser accepts, and
the parser accepts nothing the writer could not emit.

The field checks live here too, so every object phrases its refusals the
same way: ``<object>: <field> <what is wrong>, <the limit>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

from phonecast.ciscoxml.errors import InvalidObjectError
from phonecast.ciscoxml.uris import InternalUri, check_uri


class FieldKind(Enum):
    """How a field is spelled in XML."""

    TEXT = "text"  # <Tag>text</Tag>
    INT = "int"  # <Tag>42</Tag>
    HEX = "hex"  # <Tag>packed pixels</Tag>, surrounding blanks ignored on reading
    ITEMS = "items"  # repeated child elements of another class
    ATTR = "attr"  # Tag="text" on the element itself
    INT_ATTR = "int_attr"  # Tag="42"
    CONTENT = "content"  # the element's own text (CiscoIPPhoneError's message)


@dataclass(frozen=True, slots=True)
class XmlField:
    """One field of an object: dataclass attribute ``attr`` is XML ``tag``.

    ``required`` fields must be present when parsing (the dataclass may still
    give them a default so objects can be built with keywords).  A field whose
    value is ``None`` is omitted when writing, and so is ``""`` when
    ``omit_empty`` (URL fields, where empty means "no URL" and an empty
    element would only puzzle a phone); ``item`` is the class of the child
    elements of an ``ITEMS`` field."""

    attr: str
    tag: str
    kind: FieldKind
    item: type[Element] | None = None
    required: bool = False
    omit_empty: bool = False

    @property
    def is_leaf(self) -> bool:
        """A child element holding text (as opposed to items or attributes)."""
        return self.kind in (FieldKind.TEXT, FieldKind.INT, FieldKind.HEX)

    @property
    def is_attribute(self) -> bool:
        """Spelled as an XML attribute of the element itself."""
        return self.kind in (FieldKind.ATTR, FieldKind.INT_ATTR)


class Element:
    """Base of every object and item: its XML name and its fields.

    Empty ``__slots__`` so the slotted dataclasses below stay dict-free."""

    __slots__ = ()
    TAG: ClassVar[str] = ""
    FIELDS: ClassVar[tuple[XmlField, ...]] = ()


def text_field(attr: str, tag: str, *, required: bool = False) -> XmlField:
    """A text child element."""
    return XmlField(attr, tag, FieldKind.TEXT, required=required)


def url_field(attr: str, tag: str = "URL", *, required: bool = False) -> XmlField:
    """A URL child element, left out when empty."""
    return XmlField(attr, tag, FieldKind.TEXT, required=required, omit_empty=True)


def hex_field(attr: str, tag: str, *, required: bool = False) -> XmlField:
    """Packed pixel data."""
    return XmlField(attr, tag, FieldKind.HEX, required=required)


def attr_field(attr: str, tag: str, *, required: bool = False, number: bool = False) -> XmlField:
    """An XML attribute of the element itself (text or integer)."""
    kind = FieldKind.INT_ATTR if number else FieldKind.ATTR
    return XmlField(attr, tag, kind, required=required)


def int_field(attr: str, tag: str, *, required: bool = False) -> XmlField:
    """An integer child element."""
    return XmlField(attr, tag, FieldKind.INT, required=required)


def items_field(attr: str, tag: str, item: type[Element]) -> XmlField:
    """Repeated child elements of class ``item``."""
    return XmlField(attr, tag, FieldKind.ITEMS, item)


# ------------------------------------------------------------------- checks

#: Characters the phones cannot show or XML cannot carry: C0 controls but
#: tab, LF and CR; DEL and the C1 controls; lone surrogates; U+FFFE/U+FFFF.
_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_HEX = re.compile(r"[0-9A-Fa-f]*")


def bad_character(value: str) -> tuple[int, str] | None:
    """``(offset, reason)`` of the first character ``value`` may not carry."""
    found = _BAD_CHARS.search(value)
    if found is None:
        return None
    code = ord(found.group())
    if code < 0xA0:
        reason = f"control character U+{code:04X}; only CR, LF and tab are allowed"
    else:
        reason = f"U+{code:04X}, which is not a character XML can carry"
    return found.start(), reason


def check_text(
    owner: str, field: str, value: object, *, limit: int | None = None, required: bool = False
) -> None:
    """Refuse non-text, characters the phone cannot show, and overlong text
    (``None`` means "absent" and passes unless ``required``)."""
    if value is None:
        if required:
            raise InvalidObjectError(owner, field, f"{field} is required")
        return
    if not isinstance(value, str):
        raise InvalidObjectError(owner, field, f"{field} must be text, not {type(value).__name__}")
    bad = bad_character(value)
    if bad is not None:
        raise InvalidObjectError(owner, field, f"{field} contains {bad[1]} (offset {bad[0]})")
    if limit is not None and len(value) > limit:
        raise InvalidObjectError(
            owner, field, f"{field} has {len(value)} characters, at most {limit} allowed"
        )


def check_int(owner: str, field: str, value: object, low: int, high: int | None = None) -> None:
    """Refuse non-integers (``bool`` included) and values outside the range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidObjectError(
            owner, field, f"{field} must be an integer, not {type(value).__name__}"
        )
    if high is None and value < low:
        raise InvalidObjectError(owner, field, f"{field} {value}, at least {low} required")
    if high is not None and not low <= value <= high:
        raise InvalidObjectError(owner, field, f"{field} {value} outside {low}..{high}")


def check_count(owner: str, tag: str, values: tuple[object, ...], limit: int) -> None:
    """Refuse more than ``limit`` child elements named ``tag``."""
    if len(values) > limit:
        raise InvalidObjectError(
            owner, tag, f"{len(values)} {tag} elements, at most {limit} allowed"
        )


def check_url(
    owner: str,
    field: str,
    value: object,
    *,
    required: bool = False,
    http_only: bool = False,
    in_execute: bool = False,
) -> InternalUri | None:
    """A URL field: text, then http(s) or a well-formed internal URI.

    ``""`` stands for "no URL" unless ``required``; ``http_only`` for fields
    the phone fetches (a PNG, a form target), where an internal URI means
    nothing.  Returns the parsed internal URI, ``None`` for http(s) or empty.
    """
    check_text(owner, field, value)
    if not isinstance(value, str) or value == "":  # None or empty: no URL
        if required:
            raise InvalidObjectError(owner, field, f"{field} is required")
        return None
    uri = check_uri(value, in_execute=in_execute, owner=owner, field=field)
    if uri is not None and http_only:
        raise InvalidObjectError(
            owner, field, f"{field} {value!r} must be an http(s) URL the phone can fetch"
        )
    return uri


def tuple_of(owner: str, tag: str, value: object, item: type[object]) -> tuple[object, ...]:
    """``value`` as a tuple of ``item`` (lists are accepted and frozen), so a
    frozen object never holds a mutable list someone else still owns."""
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise InvalidObjectError(owner, tag, f"{tag} must be a sequence of {item.__name__}")
    frozen = tuple(value)
    for index, element in enumerate(frozen, 1):
        if not isinstance(element, item):
            raise InvalidObjectError(
                owner,
                tag,
                f"{tag}[{index}] must be a {item.__name__}, not {type(element).__name__}",
            )
    return frozen


def check_pixels(
    owner: str, width: int, height: int, depth: int, data: object, max_w: int, max_h: int
) -> None:
    """Packed pixel data: size within the pane, depth 1 or 2, and exactly
    ``ceil(width * height * depth / 8)`` bytes as hex digits (the phone packs
    pixels contiguously and pads only the last byte with zero pixels)."""
    check_int(owner, "Width", width, 1, max_w)
    check_int(owner, "Height", height, 1, max_h)
    check_int(owner, "Depth", depth, 1)
    if depth > 2:
        raise InvalidObjectError(owner, "Depth", f"Depth {depth}, at most 2 allowed")
    check_text(owner, "Data", data)
    if not isinstance(data, str):
        raise InvalidObjectError(owner, "Data", "Data is required")
    if _HEX.fullmatch(data) is None:
        raise InvalidObjectError(owner, "Data", "Data must be hex digits only")
    expected = (width * height * depth + 7) // 8 * 2
    if len(data) != expected:
        raise InvalidObjectError(
            owner,
            "Data",
            f"Data has {len(data)} hex digits; Width*Height*Depth = "
            f"{width}*{height}*{depth} bits needs exactly {expected}",
        )


def pack_pixels(pixels: list[int] | tuple[int, ...], depth: int) -> str:
    """Pixels (0..2**depth-1, row after row) as the phones' packed hex.

    Cisco packs the first pixel of each byte into its *least* significant
    bits: pixels 1, 3, 2, 0 at depth 2 make the byte 0b00_10_11_01 = ``2D``.
    The last byte is padded with zero pixels."""
    if depth not in (1, 2):
        raise InvalidObjectError("pixels", "Depth", f"Depth {depth}, at most 2 allowed")
    per_byte = 8 // depth
    top = (1 << depth) - 1
    out: list[str] = []
    for start in range(0, len(pixels), per_byte):
        byte = 0
        for shift, value in enumerate(pixels[start : start + per_byte]):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
                raise InvalidObjectError(
                    "pixels", "Data", f"pixel {value!r} outside 0..{top} for Depth {depth}"
                )
            byte |= value << (shift * depth)
        out.append(f"{byte:02X}")
    return "".join(out)


def unpack_pixels(data: str, count: int, depth: int) -> tuple[int, ...]:
    """The first ``count`` pixels of packed hex ``data`` (inverse of
    :func:`pack_pixels`), e.g. for an emulated phone drawing an image."""
    per_byte = 8 // depth
    mask = (1 << depth) - 1
    raw = bytes.fromhex(data)
    pixels = [(byte >> (shift * depth)) & mask for byte in raw for shift in range(per_byte)]
    return tuple(pixels[:count])
