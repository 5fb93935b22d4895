"""Inventory: formats, validation with line numbers, duplicates, selection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phonecast.campaign.inventory import (
    InventoryError,
    load_inventory,
    select,
    write_inventory_csv,
)

GOOD = """name,target,user,password,proxy,transport,vendor,tags
lobby-1,sip:1001@127.0.0.1:5070,,pw1,,udp,cisco-spa,building=B lobby
lobby-2,sip:1002@127.0.0.1:5071,auth2,pw2,,,,building=B
office-1,sips:2001@127.0.0.1:5072,,pw3,,tls,yealink,building=A;floor=2
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_csv(tmp_path: Path) -> None:
    inv = load_inventory(_write(tmp_path, "phones.csv", GOOD))
    assert inv.ok and [p.name for p in inv.phones] == ["lobby-1", "lobby-2", "office-1"]
    first, second, third = inv.phones
    assert first.user == "1001" and second.user == "auth2"
    assert first.password.reveal() == "pw1" and "pw1" not in repr(first)
    assert first.has_tag("lobby") and first.tag_value("building") == "B"
    assert third.transport == "tls" and third.tag_value("floor") == "2"
    assert (first.line, second.line, third.line) == (2, 3, 4)


def test_bad_rows_are_reported_with_lines_and_columns(tmp_path: Path) -> None:
    text = (
        "name,target,user,password,transport,vendor\n"
        "ok,sip:1@127.0.0.1,,pw,,\n"
        ",sip:2@127.0.0.1,,pw,,\n"
        "badtarget,sip:3@exa mple.com,,pw,,\n"
        "tel,tel:+123,,pw,,\n"
        "nouser,sip:127.0.0.1,,pw,,\n"
        "badtransport,sip:4@127.0.0.1,,pw,sctp,\n"
        "badvendor,sip:5@127.0.0.1,,pw,,nokia\n"
        "nopw,sip:6@127.0.0.1,,,,\n"
        "ok,sip:7@127.0.0.1,,pw,,\n"
        "dup-target,sip:1@127.0.0.1,,pw,,\n"
        "envpw,sip:8@127.0.0.1,,env:PHONECAST_SURELY_UNSET_VAR,,\n"
    )
    inv = load_inventory(_write(tmp_path, "bad.csv", text))
    assert not inv.ok and [p.name for p in inv.phones] == ["ok"]
    by_line = {p.line: p for p in inv.problems}
    assert by_line[3].column == "name"
    assert by_line[4].column == "target" and "not a SIP URI" in by_line[4].message
    assert "tel" in by_line[5].message
    assert by_line[6].column == "user"
    assert by_line[7].column == "transport"
    assert by_line[8].column == "vendor" and "nokia" in by_line[8].message
    assert by_line[9].column == "password"
    assert "duplicate name" in by_line[10].message and "line 2" in by_line[10].message
    assert "duplicate target" in by_line[11].message
    assert "PHONECAST_SURELY_UNSET_VAR" in by_line[12].message
    assert str(by_line[4]).startswith(f"{tmp_path / 'bad.csv'}:4: [target]")


def test_missing_header_column_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="password"):
        load_inventory(_write(tmp_path, "h.csv", "name,target\na,sip:1@h\n"))
    with pytest.raises(InventoryError, match="cannot read"):
        load_inventory(tmp_path / "absent.csv")


def test_yaml_and_toml(tmp_path: Path) -> None:
    yaml_text = (
        "phones:\n"
        "  - name: a\n    target: sip:1@127.0.0.1:5070\n    password: x\n"
        "    tags: [lobby, building=B]\n"
        "  - name: b\n    target: nonsense\n    password: y\n"
    )
    inv = load_inventory(_write(tmp_path, "p.yaml", yaml_text))
    assert [p.name for p in inv.phones] == ["a"] and inv.phones[0].has_tag("lobby")
    assert inv.problems[0].line == 6  # the "- name: b" line
    toml_text = (
        '[[phones]]\nname = "a"\ntarget = "sip:1@127.0.0.1"\npassword = "x"\n\n'
        '[[phones]]\nname = "b"\ntarget = "sip:2@127.0.0.1"\n'
    )
    inv2 = load_inventory(_write(tmp_path, "p.toml", toml_text))
    assert [p.name for p in inv2.phones] == ["a"]
    assert inv2.problems[0].line == 6 and inv2.problems[0].column == "password"
    with pytest.raises(InventoryError, match="invalid YAML"):
        load_inventory(_write(tmp_path, "broken.yaml", "phones: [\n"))


def test_select_and_write_round_trip(tmp_path: Path) -> None:
    inv = load_inventory(_write(tmp_path, "phones.csv", GOOD))
    assert [p.name for p in select(inv.phones, where=["building=B"])] == ["lobby-1", "lobby-2"]
    assert [p.name for p in select(inv.phones, tags=["lobby"])] == ["lobby-1"]
    assert select(inv.phones, where=["building=B"], tags=["floor"]) == []
    with pytest.raises(ValueError, match="key=value"):
        select(inv.phones, where=["building"])
    out = tmp_path / "out.csv"
    write_inventory_csv(out, inv.phones)
    again = load_inventory(out)
    assert again.ok
    assert [(p.name, str(p.target), p.user, p.password.reveal(), p.tags) for p in again.phones] == [
        (p.name, str(p.target), p.user, p.password.reveal(), p.tags) for p in inv.phones
    ]


def test_an_unclosed_quote_is_an_error_naming_its_line(tmp_path: Path) -> None:
    """Parsed leniently, the quote swallowed every later row into one field."""
    text = (
        "name,target,user,password\n"
        "a,sip:1@127.0.0.1:5070,,pw\n"
        'b,sip:2@127.0.0.1:5071,,"pw\n'
        "c,sip:3@127.0.0.1:5072,,pw\n"
        "d,sip:4@127.0.0.1:5073,,pw\n"
    )
    path = _write(tmp_path, "phones.csv", text)
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert str(caught.value).startswith(f"{path}:3: malformed CSV: ")
    assert "quoted field never closed" in str(caught.value)


def test_a_yaml_error_gives_line_and_column_but_never_the_source(tmp_path: Path) -> None:
    """The YAML error's text quoted the offending line: here a password."""
    text = "phones:\n  - name: a\n    password: s3cr3t: oops\n"
    path = _write(tmp_path, "phones.yaml", text)
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    said = str(caught.value)
    assert said.startswith(f"{path}:3:") and "invalid YAML: " in said
    assert "s3cr3t" not in said and "\n" not in said


_PASSWORDS = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
).filter(lambda pw: pw.strip() != "") | st.sampled_from(
    ["env:HOME1", "file:pw.txt", "literal:x", "pw  ", "  pw", " env:X", "a\nb", 'q"uote,']
)


@settings(max_examples=300, deadline=None)
@given(password=_PASSWORDS)
def test_a_written_inventory_reads_back_every_password(password: str) -> None:
    """``fleet --inventory-out`` wrote passwords as they were: 'env:HOME1'
    read back as an environment reference, trailing spaces were trimmed."""
    import tempfile

    from phonecast.campaign.inventory import Phone
    from phonecast.credentials import Secret
    from phonecast.sip import SipUri

    phone = Phone("a", SipUri("127.0.0.1", "1001", port=5070), "1001", Secret(password))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "phones.csv"
        write_inventory_csv(path, [phone])
        inv = load_inventory(path)
    assert inv.ok, inv.problems
    assert inv.phones[0].password.reveal() == password


_SAME_IN_EACH_FORMAT = {
    "p.csv": "name,target,password\na,sip:1@127.0.0.1:5070,x\nb,sip:2@127.0.0.1,\n",
    "p.yaml": (
        "phones:\n"
        "  - name: a\n    target: sip:1@127.0.0.1:5070\n    password: x\n"
        "  - name: b\n    target: sip:2@127.0.0.1\n"
    ),
    "p.toml": (
        '[[phones]]\nname = "a"\ntarget = "sip:1@127.0.0.1:5070"\npassword = "x"\n\n'
        '[[phones]]\nname = "b"\ntarget = "sip:2@127.0.0.1"\n'
    ),
}
#: Where phone b (no password: a problem) starts in each file.
_B_LINE = {"p.csv": 3, "p.yaml": 5, "p.toml": 6}


@pytest.mark.parametrize("name", sorted(_SAME_IN_EACH_FORMAT))
@pytest.mark.parametrize(
    ("form", "encode"),
    [
        ("LF", lambda t: t.encode()),
        ("CRLF", lambda t: t.replace("\n", "\r\n").encode()),
        # Excel's "CSV UTF-8" and Notepad write a byte order mark first.
        ("BOM", lambda t: b"\xef\xbb\xbf" + t.encode()),
        ("BOM+CRLF", lambda t: b"\xef\xbb\xbf" + t.replace("\n", "\r\n").encode()),
    ],
)
def test_line_endings_and_a_byte_order_mark_change_nothing(
    tmp_path: Path, name: str, form: str, encode: Any
) -> None:
    path = tmp_path / name
    path.write_bytes(encode(_SAME_IN_EACH_FORMAT[name]))
    inv = load_inventory(path)
    assert [p.name for p in inv.phones] == ["a"], (form, inv.problems)
    assert inv.phones[0].password.reveal() == "x"
    assert str(inv.phones[0].target) == "sip:1@127.0.0.1:5070"
    assert [(p.line, p.column) for p in inv.problems] == [(_B_LINE[name], "password")]


def test_toml_lines_are_counted_at_newlines_only(tmp_path: Path) -> None:
    """A TOML string may hold U+2028 or U+0085 as they are; the line of
    each [[phones]] is counted as TOML counts, at LF."""
    text = (
        '[[phones]]\nname = "a"\ntarget = "sip:1@127.0.0.1"\npassword = "x\u2028y\x85z"\n\n'
        '[[phones]]\nname = "b"\ntarget = "sip:2@127.0.0.1"\n'
    )
    inv = load_inventory(_write(tmp_path, "p.toml", text))
    assert inv.phones[0].password.reveal() == "x\u2028y\x85z"
    assert [p.line for p in inv.problems if p.column == "password"] == [6]


def test_a_target_with_a_password_is_a_bad_row_that_never_shows_it(tmp_path: Path) -> None:
    """It would be stored, reported and printed with the target."""
    text = "name,target,password\na,sip:1001:TOPSECRET@127.0.0.1:5070,pw\n"
    inv = load_inventory(_write(tmp_path, "p.csv", text))
    assert not inv.phones and len(inv.problems) == 1
    problem = inv.problems[0]
    assert (problem.line, problem.column) == (2, "target")
    assert "password column" in problem.message and "TOPSECRET" not in str(problem)


def test_extra_fields_are_counted_not_echoed(tmp_path: Path) -> None:
    """An unquoted comma in a password spills its tail into extra fields."""
    text = "name,target,password\na,sip:1001@127.0.0.1:5070,Sec,retPart\n"
    inv = load_inventory(_write(tmp_path, "p.csv", text))
    assert len(inv.problems) == 1 and "retPart" not in str(inv.problems[0])
    assert "1 field(s) more" in inv.problems[0].message


def test_a_target_with_a_transport_we_do_not_speak_is_a_bad_row(tmp_path: Path) -> None:
    text = "name,target,password\na,sip:1001@127.0.0.1:5070;transport=sctp,pw\n"
    inv = load_inventory(_write(tmp_path, "p.csv", text))
    assert not inv.phones and [(p.line, p.column) for p in inv.problems] == [(2, "target")]
    assert "transport=sctp" in inv.problems[0].message
