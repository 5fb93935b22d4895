"""The readers of ``phonecast phone`` and ``fleet`` options, on their own
(the commands' refusals are tested in tests/phone/test_phone_cli.py)."""

from __future__ import annotations

import pytest

from phonecast.cli import phone_options


@pytest.mark.parametrize(
    ("text", "meant"),
    [
        ("127.0.0.1", "127.0.0.1:5060"),
        ("127.0.0.1:5070", "127.0.0.1:5070"),
        ("[::1]", "[::1]:5060"),
        ("[0:0::1]:5070", "[::1]:5070"),
    ],
)
def test_a_registrar_without_a_port_is_at_5060(text: str, meant: str) -> None:
    assert phone_options.parse_registrar(text) == meant


@pytest.mark.parametrize(
    ("text", "spelt"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("0:0::1", "::1"),
        ("FE80:0::1", "fe80::1"),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1"),
    ],
)
def test_a_restrict_source_is_spelt_as_a_socket_spells_a_source(text: str, spelt: str) -> None:
    assert phone_options.parse_source_address(text) == spelt


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("/x:secret@27012", "not empty"),
        ("1001/:secret@27012", "not empty"),
        ("10 01>x:secret@27012", "USER '10 01>x'"),
        ("1001@x:secret@27012", "USER '1001@x'"),
        ('1001/a"b:secret@27012', "AUTHID 'a\"b'"),
        ("1001/a\rb:secret@27012", "AUTHID"),
    ],
)
def test_a_line_s_user_and_auth_id_follow_the_sip_user_grammar(
    spec: str, named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        phone_options.parse_line(spec)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert named in err and "secret" not in err and ":***@27012" in err
    line = phone_options.parse_line("1001%20x/auth.id-1:secret@27012")
    assert (line.user, line.auth_id, line.port) == ("1001%20x", "auth.id-1", 27012)


@pytest.mark.parametrize("realm", ["a\r\nb", "a\nb", 'a"b', "a\\b", "a\x00", " "])
def test_a_realm_that_would_break_the_challenge_is_refused(realm: str) -> None:
    with pytest.raises(ValueError, match="realm"):
        phone_options.parse_realm(realm)


def test_addresses_per_phone_keep_the_family_of_the_first() -> None:
    assert phone_options.fleet_addresses("::1", 3) == ["::1", "::2", "::3"]
    assert phone_options.fleet_addresses("127.0.0.254", 3) == [
        "127.0.0.254",
        "127.0.0.255",
        "127.0.1.0",
    ]


@pytest.mark.parametrize("port", ["9" * 4400, "065535x", "\u0662\u0665\u0660", "0", "65536"])
def test_a_line_s_port_is_one_to_65535_in_ascii_digits(
    port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 4,400-digit port made int() raise (a traceback, exit 1)."""
    with pytest.raises(SystemExit) as exit_:
        phone_options.parse_line(f"1001:secret@{port}")
    assert exit_.value.code == 2
    assert "bad --line" in capsys.readouterr().err


def test_notify_types_are_media_types_compared_without_case() -> None:
    assert phone_options.parse_notify_types(" Text/Plain, application/xml ,") == frozenset(
        {"text/plain", "application/xml"}
    )


@pytest.mark.parametrize(
    ("text", "why"),
    [(",", "at least one"), ("text", "'text' is not a media type"), ("text/plain;x=1", "not a")],
)
def test_notify_types_that_are_not_media_types_are_refused(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        phone_options.parse_notify_types(text)
