"""A parser for Cisco IP phone objects that trusts nothing it is given.

An emulated phone parses whatever an HTTP server or a NOTIFY body hands it,
so this parser is built to refuse, early and cheaply:

1. **Size first.**  A body over ``max_bytes`` (64 KiB by default, far above
   any real object: 100 menu items are about 10 KiB) is refused by its
   length, before one byte is parsed.  A 10 MB body costs nothing.
2. **No DTD, no entities, no external references** (defusedxml): the XXE
   and billion-laughs attacks need a DTD, and no Cisco object has one.
3. **Only what the object defines, checked per start tag.**  The objects
   are built by our own parser target, which checks each start tag against
   the object's declared fields (the same table the writer uses): an
   unknown root, an undefined child, an undefined attribute or stray text is
   refused with the tag and its element path (``CiscoIPPhoneMenu/MenuItem[3]``).
   A 10,000-deep nest is refused at its first undefined element.
4. **Bounded while building.**  The same target counts elements and nesting
   depth on every start tag and stops at the first one over the bound
   (``max_elements``, ``max_depth``).  Raising from the target stops expat
   where it stands, so the rest of the body is never scanned: a 10 MB body
   let in by a generous ``max_bytes`` is still refused in milliseconds.
5. **The phones' rules.**  The values are built into the immutable objects,
   whose constructors enforce every limit; a broken rule is reported with
   its path.

Every refusal is a :class:`~phonecast.ciscoxml.errors.CiscoXmlError`
subclass whose ``number`` is the ``CiscoIPPhoneError`` a phone reports
(1: the phone could not parse the object).  Nothing else escapes, whatever
the bytes: that is tested with arbitrary input.

Text without an encoding declaration is read as UTF-8 (the XML default);
expat also reads declared UTF-16, ISO-8859-1 and US-ASCII.  CR LF and lone
CR in text are read as LF, as in any XML parser.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden
from defusedxml.ElementTree import DefusedXMLParser

from phonecast.ciscoxml._schema import Element, FieldKind, XmlField
from phonecast.ciscoxml.errors import (
    CiscoXmlError,
    ForbiddenXmlError,
    InvalidObjectError,
    UndefinedElementError,
    XmlLimitError,
    XmlSyntaxError,
)
from phonecast.ciscoxml.objects import OBJECT_CLASSES, CiscoObject, Execute

MAX_BYTES = 64 * 1024
MAX_DEPTH = 8
MAX_ELEMENTS = 1000

_OBJECT_TYPES = tuple(OBJECT_CLASSES.values())
_INTEGER = re.compile(r"\s*([+-]?[0-9]{1,10})\s*")


@dataclass(slots=True)
class _Node:
    """An element being read: the class it builds (``None`` for a text
    leaf), the parent field it fills, where it is, and what it holds."""

    cls: type[Element] | None
    spec: XmlField | None
    owner: str
    path: str
    attrib: dict[str, str]
    text: list[str] = field(default_factory=list)
    values: dict[str, object] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def _children_of(cls: type[Element]) -> dict[str, XmlField]:
    return {s.tag: s for s in cls.FIELDS if s.is_leaf or s.kind is FieldKind.ITEMS}


def _attributes_of(cls: type[Element]) -> dict[str, XmlField]:
    return {s.tag: s for s in cls.FIELDS if s.is_attribute}


def _integer(text: str, owner: str, tag: str, path: str) -> int:
    match = _INTEGER.fullmatch(text)
    if match is None:
        raise InvalidObjectError(owner, tag, f"{tag} {text[:20]!r} is not an integer", path=path)
    return int(match.group(1))


class _Builder:
    """The parser's target: checks every event against the schema and the
    bounds as it arrives, and builds the objects bottom-up on end tags."""

    def __init__(
        self, roots: Mapping[str, type[Element]], max_depth: int, max_elements: int
    ) -> None:
        self._roots = roots
        self._max_depth = max_depth
        self._max_elements = max_elements
        self._stack: list[_Node] = []
        self._count = 0
        self._result: object = None

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        node = self._open(tag, attrib)  # refuses an undefined tag first: the better message
        self._count += 1
        if self._count > self._max_elements:
            raise XmlLimitError(f"more than {self._max_elements} elements", path=node.path)
        if len(self._stack) >= self._max_depth:
            raise XmlLimitError(f"elements nested deeper than {self._max_depth}", path=node.path)
        allowed = _attributes_of(node.cls) if node.cls is not None else {}
        for name in attrib:
            if name not in allowed:
                raise UndefinedElementError(
                    f"undefined attribute {name}= on <{tag}>", tag=name, path=node.path
                )
        self._stack.append(node)

    def _open(self, tag: str, attrib: dict[str, str]) -> _Node:
        if not self._stack:
            root = self._roots.get(tag)
            if root is None:
                expected = ", ".join(sorted(self._roots))
                raise UndefinedElementError(
                    f"unknown root element <{tag}>; expected {expected}", tag=tag
                )
            return _Node(root, None, tag, tag, attrib)
        parent = self._stack[-1]
        spec = _children_of(parent.cls).get(tag) if parent.cls is not None else None
        if spec is None:
            raise UndefinedElementError(f"undefined element <{tag}>", tag=tag, path=parent.path)
        count = parent.counts.get(tag, 0) + 1
        parent.counts[tag] = count
        if spec.kind is FieldKind.ITEMS and spec.item is not None:
            path = f"{parent.path}/{tag}[{count}]"
            return _Node(spec.item, spec, spec.item.TAG, path, attrib)
        if count > 1:
            raise InvalidObjectError(
                parent.owner,
                tag,
                f"<{tag}> appears {count} times, at most once allowed",
                path=parent.path,
            )
        return _Node(None, spec, parent.owner, f"{parent.path}/{tag}", attrib)

    def data(self, text: str) -> None:
        node = self._stack[-1]
        if node.cls is not None and text.strip() and not _has_content(node.cls):
            raise UndefinedElementError(
                f"undefined text {text.strip()[:20]!r} in <{node.cls.TAG}>",
                tag="#text",
                path=node.path,
            )
        node.text.append(text)

    def end(self, tag: str) -> None:
        node = self._stack.pop()
        value = self._finish(node)
        if not self._stack:
            self._result = value
            return
        parent = self._stack[-1]
        assert node.spec is not None
        if node.spec.kind is FieldKind.ITEMS:
            collected = parent.values.setdefault(node.spec.attr, [])
            assert isinstance(collected, list)
            collected.append(value)
        else:
            parent.values[node.spec.attr] = value

    def _finish(self, node: _Node) -> object:
        text = "".join(node.text)
        if node.cls is None:
            assert node.spec is not None
            if node.spec.kind is FieldKind.INT:
                return _integer(text, node.owner, node.spec.tag, node.path)
            return text.strip() if node.spec.kind is FieldKind.HEX else text
        cls = node.cls
        values = dict(node.values)
        for spec in cls.FIELDS:
            if spec.is_attribute and spec.tag in node.attrib:
                raw = node.attrib[spec.tag]
                if spec.kind is FieldKind.INT_ATTR:
                    values[spec.attr] = _integer(raw, cls.TAG, spec.tag, node.path)
                else:
                    values[spec.attr] = raw
            elif spec.kind is FieldKind.CONTENT:
                values[spec.attr] = text
            elif spec.kind is FieldKind.ITEMS and spec.attr in values:
                collected = values[spec.attr]
                assert isinstance(collected, list)
                values[spec.attr] = tuple(collected)
            if spec.required and spec.attr not in values:
                what = "attribute" if spec.is_attribute else "element"
                raise InvalidObjectError(
                    cls.TAG, spec.tag, f"missing {what} {spec.tag}", path=node.path
                )
        factory: Callable[..., object] = cls
        try:
            return factory(**values)
        except InvalidObjectError as exc:
            raise exc.at(node.path) from None

    def close(self) -> object:
        return self._result


def _has_content(cls: type[Element]) -> bool:
    return any(s.kind is FieldKind.CONTENT for s in cls.FIELDS)


def _forbidden(exc: DefusedXmlException) -> ForbiddenXmlError:
    if isinstance(exc, DTDForbidden):
        what = "a DTD (<!DOCTYPE>)"
    elif isinstance(exc, EntitiesForbidden):
        what = "an entity declaration"
    else:
        what = "an external reference"
    return ForbiddenXmlError(
        f"refused {what}: Cisco objects have none, and DTDs carry XXE and entity-expansion attacks"
    )


def _parse(
    data: bytes | bytearray | memoryview,
    roots: Mapping[str, type[Element]],
    max_bytes: int,
    max_depth: int,
    max_elements: int,
) -> object:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"parse() takes bytes, not {type(data).__name__}")
    size = len(data)
    if size > max_bytes:
        raise XmlLimitError(f"object of {size} bytes, at most {max_bytes} allowed")
    builder = _Builder(roots, max_depth, max_elements)
    parser = DefusedXMLParser(
        target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        parser.feed(bytes(data))
        result = parser.close()
    except CiscoXmlError:
        raise
    except DefusedXmlException as exc:
        raise _forbidden(exc) from None
    except ParseError as exc:
        raise XmlSyntaxError(f"not well-formed XML: {exc}") from None
    except (ValueError, LookupError) as exc:
        # pyexpat refuses a declared multi-byte encoding other than UTF-8/16
        # with a ValueError, an unknown codec name with a LookupError.
        raise XmlSyntaxError(f"unreadable encoding: {exc}") from None
    if result is None:  # pragma: no cover - expat reports "no element found" first
        raise XmlSyntaxError("no root element")
    return result


def parse(
    data: bytes | bytearray | memoryview,
    *,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    max_elements: int = MAX_ELEMENTS,
) -> CiscoObject:
    """The Cisco IP phone object in ``data``, or a
    :class:`~phonecast.ciscoxml.errors.CiscoXmlError` saying why not.

    ``max_bytes`` bounds the input, ``max_depth`` the nesting (the deepest
    real object, a soft key's name, is at depth 3) and ``max_elements`` the
    element count (a full 100-item menu with 16 soft keys has about 400)."""
    result = _parse(data, OBJECT_CLASSES, max_bytes, max_depth, max_elements)
    assert isinstance(result, _OBJECT_TYPES)  # the builder only builds the roots it is given
    return result


def parse_execute(
    data: bytes | bytearray | memoryview,
    *,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    max_elements: int = MAX_ELEMENTS,
) -> Execute:
    """The CiscoIPPhoneExecute in an XML-Service NOTIFY body (what the phone
    emulator runs).  Any other root is refused at its start tag."""
    result = _parse(data, {Execute.TAG: Execute}, max_bytes, max_depth, max_elements)
    assert isinstance(result, Execute)
    return result
