"""What the emulated phone shows, and the adapter to the Cisco XML parser.

The phone's display is reduced to what a test or an operator needs to see:
the object kind, title, prompt, text and the item labels (menu items,
directory entries, soft keys).  :func:`render` draws it for a terminal.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Screen:
    """The phone's display after an object was shown."""

    kind: str = "idle"
    title: str = ""
    prompt: str = ""
    text: str = ""
    items: tuple[str, ...] = field(default=())

    def summary(self) -> dict[str, Any]:
        """Event fields describing the screen."""
        return {
            "object": self.kind,
            "title": self.title,
            "prompt": self.prompt,
            "text": self.text[:500],
            "items": list(self.items[:20]),
        }

    def render(self, width: int = 40) -> str:
        """A plain-text drawing of the display, ``width`` columns wide."""
        inner = width - 2
        lines = ["+" + "-" * inner + "+"]
        for text in (self.title, self.prompt):
            if text:
                lines.append("|" + text[:inner].ljust(inner) + "|")
        if self.title or self.prompt:
            lines.append("|" + "-" * inner + "|")
        for para in self.text.splitlines() or ([""] if not self.items else []):
            while True:
                lines.append("|" + para[:inner].ljust(inner) + "|")
                para = para[inner:]
                if not para:
                    break
        for i, item in enumerate(self.items, 1):
            lines.append("|" + f"{i}. {item}"[:inner].ljust(inner) + "|")
        lines.append("+" + "-" * inner + "+")
        return "\n".join(lines)


def parse_object(body: bytes) -> Any:
    """A Cisco IP phone XML object from ``body`` (hardened parser).

    Raises ``ValueError`` (a ``CiscoXmlError``, carrying ``number`` = the
    CiscoIPPhoneError a phone reports) for anything the phone would refuse.
    """
    from phonecast.ciscoxml import parse

    return parse(body)


def screen_for(body: bytes) -> Screen:
    """The screen ``body`` produces (raises like :func:`parse_object`).

    Memoised per body (up to 8 KiB, 256 bodies): a campaign sends every
    phone of a fleet the same object, and both the parse result and the
    screen are immutable, so phones showing the same bytes share one.
    Errors are never cached."""
    if len(body) > 8192:
        return object_to_screen(parse_object(body))
    return _screen_of_small(body)


@functools.lru_cache(maxsize=256)
def _screen_of_small(body: bytes) -> Screen:
    return object_to_screen(parse_object(body))


def _text(obj: Any, *names: str) -> str:
    for name in names:
        value = getattr(obj, name, None)
        if isinstance(value, str):
            return value
    return ""


def object_to_screen(obj: Any) -> Screen:
    """The screen a parsed object produces (by duck typing over the object kinds)."""
    kind = type(obj).__name__
    items: list[str] = []
    for attr in ("items", "menu_items", "entries", "input_items"):
        for item in getattr(obj, attr, ()) or ():
            label = _text(item, "name", "display_name", "url")
            number = _text(item, "telephone")
            items.append(f"{label} {number}".strip())
    for key in getattr(obj, "softkeys", ()) or ():
        items.append(f"[{_text(key, 'name')}]")
    return Screen(kind, _text(obj, "title"), _text(obj, "prompt"), _text(obj, "text"), tuple(items))
