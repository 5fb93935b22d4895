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
