"""URIs: parsing, serialising, RFC 3261 19.1.4 comparison."""

from __future__ import annotations

import pytest
from hypothesis import given

from phonecast.sip import AbsoluteUri, ParseError, SipUri, TelUri, parse_uri
from tests.sip.strategies import sip_uris, sip_uris_with_password, tel_uris


@given(sip_uris)
def test_sip_uri_round_trip(uri: SipUri) -> None:
    text = str(uri)
    again = parse_uri(text)
    assert again == uri
    assert str(again) == text


@given(sip_uris_with_password)
def test_sip_uri_with_password_round_trip(uri: SipUri) -> None:
    assert str(parse_uri(str(uri))) == str(uri)


@given(sip_uris_with_password)
def test_without_password_keeps_everything_else(uri: SipUri) -> None:
    bare = uri.without_password()
    assert bare.password is None
    assert (bare.scheme, bare.user, bare.host, bare.port, bare.params, bare.headers) == (
        uri.scheme,
        uri.user,
        uri.host,
        uri.port,
        uri.params,
        uri.headers,
    )
    assert parse_uri(str(bare)) == bare


@given(tel_uris)
def test_tel_uri_round_trip(uri: TelUri) -> None:
    assert parse_uri(str(uri)) == uri


def test_components() -> None:
    uri = parse_uri("sips:alice:pw@[2001:db8::1]:5061;transport=tls;lr?subject=hi&x=y")
    assert isinstance(uri, SipUri)
    assert (uri.scheme, uri.user, uri.password) == ("sips", "alice", "pw")
    assert (uri.host, uri.hostname, uri.port) == ("[2001:db8::1]", "2001:db8::1", 5061)
    assert uri.transport == "tls" and uri.lr and uri.secure
    assert uri.headers == (("subject", "hi"), ("x", "y"))


# RFC 3261 19.1.4: each pair is equivalent.
EQUIVALENT = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
    (
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
    ),
    (
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
    ),
    ("sip:u@[2001:db8:0:0:0:0:0:1]", "sip:u@[2001:db8::1]"),
]

# RFC 3261 19.1.4: each pair is different.
DIFFERENT = [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
    ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),
    ("sip:a%3Bb@x.com", "sip:a;b@x.com"),
]


@pytest.mark.parametrize(("a", "b"), EQUIVALENT)
def test_equivalent(a: str, b: str) -> None:
    ua, ub = parse_uri(a), parse_uri(b)
    assert ua == ub and ub == ua
    assert hash(ua) == hash(ub)


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_different(a: str, b: str) -> None:
    assert parse_uri(a) != parse_uri(b)


def test_other_schemes_are_opaque() -> None:
    assert parse_uri("isbn:2983792873") == AbsoluteUri("isbn", "2983792873")
    assert str(parse_uri("http://www.example.com/a?b")) == "http://www.example.com/a?b"


@pytest.mark.parametrize(
    "bad",
    [
        "sip:2001:db8::10",
        "sip:user@example.com; lr",
        "sip:user@exa mple.com",
        "sip:user@[2001:db8::1",
        "sip:user@[zz::1]",
        "sip:user@host:99999",
        "sip:user@host:abc",
        "sip:us er@host",
        "sip:user@256.1.1.1",
        "sip:user@host;=x",
        "sip:user@host?noequals",
        "<sip:user@host>",
        "nocolon",
        "1sip:user@host",
        "tel:",
        "http:",
    ],
)
def test_bad_uris(bad: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_uri(bad)
    assert info.value.kind == "uri"


def test_with_and_without_params() -> None:
    uri = parse_uri("sip:1001@10.0.0.5:5060;transport=udp")
    assert isinstance(uri, SipUri)
    tcp = uri.with_params(transport="tcp", lr=None)
    assert str(tcp) == "sip:1001@10.0.0.5:5060;transport=tcp;lr"
    assert str(tcp.without_params("LR", "transport")) == "sip:1001@10.0.0.5:5060"
