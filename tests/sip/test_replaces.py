"""The Replaces header (RFC 3891): its grammar and the rules every UAS that
supports it applies (one per INVITE, both tags, 400 otherwise)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phonecast.sip import HeaderError, Request, UasPolicy, ValidationError, parse_message
from phonecast.sip.replaces import Replaces, parse_replaces, replaces_of
from phonecast.sip.validate import check_policy

_TOKEN = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~",
    min_size=1,
    max_size=20,
)


def _request(method: str, *replaces: str) -> Request:
    fields = "".join(f"Replaces: {value}\r\n" for value in replaces)
    message = parse_message(
        (
            f"{method} sip:1001@127.0.0.1 SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKrep\r\n"
            "From: <sip:c@127.0.0.1>;tag=new\r\nTo: <sip:1001@127.0.0.1>\r\n"
            f"Call-ID: new@127.0.0.1\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n"
            f"{fields}Content-Length: 0\r\n\r\n"
        ).encode()
    )
    assert isinstance(message, Request)
    return message


def test_the_tags_name_the_recipients_dialog() -> None:
    """RFC 3891 3: to-tag is the recipient's local tag, from-tag its remote."""
    value = parse_replaces("98732@sip.example.com;from-tag=r33th4x0r;to-tag=ff87ff")
    assert value == Replaces("98732@sip.example.com", "ff87ff", "r33th4x0r")
    assert value.dialog_id == ("98732@sip.example.com", "ff87ff", "r33th4x0r")
    assert not value.early_only


def test_early_only_and_unknown_parameters() -> None:
    value = parse_replaces("a@b ; To-Tag=x ;FROM-TAG=y;early-only;future=1")
    assert value == Replaces("a@b", "x", "y", early_only=True)
    # A generic-param of that name, with a value, asks for the same.
    assert parse_replaces("a@b;to-tag=x;from-tag=y;early-only=1").early_only


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("a@b;to-tag=x", "from-tag missing"),
        ("a@b;from-tag=y", "to-tag missing"),
        ("a@b", "to-tag and from-tag missing"),
        ("a@b;to-tag=x;to-tag=z;from-tag=y", "to-tag appears twice"),
        ("a@b;to-tag=x;from-tag", "from-tag must be a token"),
        ("a@b c;to-tag=x;from-tag=y", "expected a Call-ID first"),
        (";to-tag=x;from-tag=y", "expected a Call-ID first"),
    ],
)
def test_what_is_not_a_replaces(value: str, why: str) -> None:
    with pytest.raises(HeaderError) as info:
        parse_replaces(value)
    assert why in str(info.value) and "Replaces" in str(info.value)


@given(_TOKEN, _TOKEN, _TOKEN, _TOKEN, st.booleans())
def test_what_is_written_is_read_back(
    call_id: str, host: str, to_tag: str, from_tag: str, early: bool
) -> None:
    written = f"{call_id}@{host};to-tag={to_tag};from-tag={from_tag}" + (
        ";early-only" if early else ""
    )
    assert parse_replaces(written) == Replaces(f"{call_id}@{host}", to_tag, from_tag, early)


def test_only_one_replaces_and_only_in_an_invite() -> None:
    """RFC 3891 3: both are 400."""
    good = "a@b;to-tag=x;from-tag=y"
    assert replaces_of(_request("INVITE")) is None
    assert replaces_of(_request("INVITE", good)) == Replaces("a@b", "x", "y")
    for request, why in (
        (_request("INVITE", good, good), "more than one"),
        (_request("OPTIONS", good), "in a OPTIONS"),
        (_request("INVITE", "a@b;to-tag=x"), "from-tag missing"),
    ):
        with pytest.raises(ValidationError) as info:
            replaces_of(request)
        assert info.value.status_code == 400 and why in str(info.value)


def test_a_uas_supporting_replaces_refuses_it_outside_an_invite() -> None:
    supporting = UasPolicy(extensions=frozenset({"replaces"}))
    with pytest.raises(ValidationError) as info:
        check_policy(_request("INFO", "a@b;to-tag=x;from-tag=y"), supporting)
    assert info.value.status_code == 400
    check_policy(_request("INVITE", "a@b;to-tag=x;from-tag=y"), supporting)
    # One that does not support it ignores the header, as any unknown one.
    check_policy(_request("INFO", "a@b;to-tag=x;from-tag=y"), UasPolicy())
