"""What the emulated phone shows, and the adapter to the Cisco XML parser.

The phone's display is reduced to what a test or an operator needs to see:
the object kind, title, prompt, text and the item labels (menu items,
directory entries, soft keys).  :func:`render` draws it for a terminal.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from rich.cells import cell_len


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
        """A plain-text drawing of the display, ``width`` columns wide.

        Text is measured in terminal cells, not characters: a CJK character
        takes two, a combining mark none, and a tab is expanded first, so
        that every row of the box is ``width`` cells and its right edge
        stays straight.  Other control characters are drawn as U+FFFD: a
        pushed page must not move the cursor or send escape sequences to
        the operator's terminal."""
        inner = width - 2
        lines = ["+" + "-" * inner + "+"]
        for text in (self.title, self.prompt):
            if text:
                lines.append("|" + _rows(text, inner)[0] + "|")
        if self.title or self.prompt:
            lines.append("|" + "-" * inner + "|")
        for para in self.text.splitlines() or ([""] if not self.items else []):
            lines.extend("|" + row + "|" for row in _rows(para, inner))
        for i, item in enumerate(self.items, 1):
            lines.append("|" + _rows(f"{i}. {item}", inner)[0] + "|")
        lines.append("+" + "-" * inner + "+")
        return "\n".join(lines)


#: Characters before the next one that its width is measured with: more
#: than any cluster a row of a phone's screen holds.
_LOOKBACK = 16

#: Tab stops every 8 cells, as a terminal's.
TAB_SIZE = 8


def _rows(text: str, inner: int) -> list[str]:
    """``text`` cut into rows of exactly ``inner`` terminal cells (padded
    with spaces; a wide character that would straddle the edge starts the
    next row), at least one row."""
    shown = "".join(
        "\ufffd" if unicodedata.category(char) == "Cc" else char
        for char in text.expandtabs(TAB_SIZE)
    )
    rows: list[str] = []
    row = ""
    used = 0
    last = ""
    for char in shown:
        # What the character adds to the row, measured with the few before
        # it: a variation selector (U+FE0F after U+2764) makes a pair two
        # cells wide, a combining mark adds none.  (Measuring the whole row
        # each time was quadratic: 8,000 combining marks took 6 s.)
        cells = cell_len(last + char) - cell_len(last)
        last = (last + char)[-_LOOKBACK:]
        if used + cells > inner and row:
            rows.append(row + " " * max(0, inner - used))
            row, used, cells = "", 0, cell_len(char)
        row += char
        used += cells
    rows.append(row + " " * max(0, inner - used))
    return rows


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
