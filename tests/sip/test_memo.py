"""Memoised header parsers: same object for a repeated value, bounded, and
never a cached error."""

from __future__ import annotations

import pytest

from phonecast.sip import HeaderError
from phonecast.sip._memo import memoize
from phonecast.sip.headers import parse_cseq, parse_name_addr
from phonecast.sip.uri import parse_uri


def test_repeated_values_share_one_parsed_object() -> None:
    value = "<sip:1001@127.0.0.1:5070>"
    assert parse_name_addr(value, "To") is parse_name_addr(value, "To")
    assert parse_uri("sip:1001@127.0.0.1") is parse_uri("sip:1001@127.0.0.1")
    assert parse_cseq("2 NOTIFY") is parse_cseq("2 NOTIFY")


def test_long_values_are_not_cached() -> None:
    value = "<sip:" + "a" * 300 + "@example.com>"
    first, second = parse_name_addr(value, "To"), parse_name_addr(value, "To")
    assert first == second and first is not second


def test_errors_are_raised_every_time() -> None:
    calls: list[str] = []

    @memoize(maxsize=4)
    def parse(value: str) -> str:
        calls.append(value)
        if value == "bad":
            raise HeaderError("X", "bad value")
        return value.upper()

    for _ in range(2):
        with pytest.raises(HeaderError):
            parse("bad")
    assert calls == ["bad", "bad"]
    assert parse("ok") == "OK" and parse("ok") == "OK"
    assert calls == ["bad", "bad", "ok"]


def test_cache_is_bounded() -> None:
    calls: list[str] = []

    @memoize(maxsize=2)
    def parse(value: str) -> str:
        calls.append(value)
        return value

    for value in ("a", "b", "c", "a"):
        parse(value)
    assert calls == ["a", "b", "c", "a"]  # "a" was evicted by "c"
