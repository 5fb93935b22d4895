"""What a phone shows for an object, and the per-body memo behind it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phonecast.ciscoxml import Text, to_xml
from phonecast.phone.screen import screen_for


def test_same_body_same_screen_object() -> None:
    body = to_xml(Text("Facilities", None, (), "Fire drill at 10:00"))
    first = screen_for(body)
    assert first.title == "Facilities" and "Fire drill" in first.render()
    assert screen_for(bytes(body)) is first  # equal bytes: shared, immutable


def test_refused_bodies_raise_every_time() -> None:
    for _ in range(2):
        with pytest.raises(ValueError):
            screen_for(b"<CiscoIPPhoneText><Title>unterminated")


def test_large_bodies_are_not_kept() -> None:
    body = to_xml(Text("T", None, (), "x" * 3000)) + b" " * 6000  # over 8 KiB
    assert len(body) > 8192
    assert screen_for(body) is not screen_for(body)


def test_the_box_stays_straight_with_wide_characters_tabs_and_controls() -> None:
    from rich.cells import cell_len

    from phonecast.phone.screen import Screen

    screen = Screen(
        "Text",
        "Ti\ttle",
        "全角",
        "全角文字の長いテキストです" * 3 + "\nend\x1b[2J\ra",
        ("a\u0301b",),
    )
    drawing = screen.render()
    assert {cell_len(row) for row in drawing.splitlines()} == {40}
    assert "\t" not in drawing and "\x1b" not in drawing and "\r" not in drawing
    assert "|Ti      tle" in drawing and "全角文字の長いテキストです" in drawing.replace("|\n|", "")


@given(st.text(alphabet=st.sampled_from(["a", "中", "\u2764", "\ufe0f", "\u0301", "\t", "😀"])))
def test_every_row_is_exactly_the_box_s_width(text: str) -> None:
    """Measured char by char, "❤️" (U+2764 U+FE0F, two cells in rich's
    reckoning as a pair) counted one: the row ran 43 cells in a 40 box."""
    from rich.cells import cell_len

    from phonecast.phone.screen import Screen

    drawing = Screen("Text", "t", None, text, ()).render()
    assert {cell_len(row) for row in drawing.splitlines()} == {40}, drawing
