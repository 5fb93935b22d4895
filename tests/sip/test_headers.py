"""Typed header values: parsing, serialising, errors that name the header."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phonecast.sip import HeaderError, SipUri, parse_uri
from phonecast.sip import _addresses as a
from phonecast.sip import headers as h
from phonecast.sip._memo import TABLE_SIZE
from tests.sip.strategies import sip_uris, tokens


def test_via_forms() -> None:
    via = h.parse_via("SIP / 2.0 / tcp  [2001:db8::1] : 5061 ; branch = z9hG4bK1;rport=5070")
    assert (via.transport, via.host, via.port) == ("TCP", "[2001:db8::1]", 5061)
    assert via.branch == "z9hG4bK1" and via.rport == 5070 and via.hostname == "2001:db8::1"
    listed = h.parse_via_list("SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/TLS b:5061;received=1.2.3.4")
    assert [v.host for v in listed] == ["a", "b"] and listed[1].received == "1.2.3.4"
    assert str(via.with_params(received="127.0.0.1")).endswith(";received=127.0.0.1")


@pytest.mark.parametrize(
    "bad",
    [
        "SIP/2.0 host",
        "SIP/2.0/UDP",
        "SIP/2.0/UDP host;;",
        "SIP/2.0/UDP host:70000",
        "SIP/2.0/UDP host;rport=x",
        "SIP/2.0/UDP host;ttl=300",
        "SIP/2.0/UDP host;received=!!",
    ],
)
def test_bad_via(bad: str) -> None:
    with pytest.raises(HeaderError) as info:
        h.parse_via(bad)
    assert info.value.header == "Via"


_VIA_PARAMS = st.one_of(
    st.sampled_from(
        [
            ";rport",
            ";rport=5060",
            ";rport=99999",
            ";received=10.0.0.2",
            ";received=[2001:db8::1]",
            ";received=host.example",
            ";received=!!",
            ";maddr=224.2.0.1",
            ";ttl=16",
            ";ttl=300",
            ";lr",
            ";branch=",
            ";Branch=z9hG4bKx",
            ';x="q"',
            " ;sp=1",
        ]
    ),
    st.builds(
        ";branch={}".format, st.sampled_from(["z9hG4bK1", "z9.hG-4_b!K~2", "a", "b:c", "x y"])
    ),
    st.builds(";{}={}".format, tokens, tokens),
)


@settings(max_examples=400)
@given(
    st.sampled_from(
        [
            "SIP/2.0/UDP 10.0.0.2:5060",
            "SIP/2.0/tcp host.example",
            "SIP/2.0/TLS [2001:db8::1]:5061",
            "SIP/2.0/UDP 10.0.0.2:70000",
            "SIP / 2.0 / UDP h",
            "SIP/2.0/UDP 1.2.3.4.5",
        ]
    ),
    st.lists(_VIA_PARAMS, max_size=4),
)
def test_usual_vias_read_as_the_full_grammar_reads_them(sent_by: str, params: list[str]) -> None:
    """The string-operation reading (and its per-peer memory, exercised by
    reading each value twice) agrees with the full grammar, and declines
    whatever the grammar refuses."""
    value = sent_by + "".join(params)
    first, again = a._simple_via(value), a._simple_via(value)
    assert first == again
    try:
        full = a._full_via(value, "Via")
    except HeaderError:
        assert first is None
        return
    if first is not None:
        assert first == full


def test_usual_vias_are_read_without_the_full_grammar() -> None:
    for value in (
        "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK776;rport",
        "SIP/2.0/UDP 10.0.0.2:5060;rport;branch=z9hG4bK776",
        "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK777;rport=5060;received=10.0.0.2",
        "SIP/2.0/TCP host.example;branch=z9hG4bK.1",
    ):
        assert a._simple_via(value) == a._full_via(value, "Via")
    # Once the rest of a peer's Via is known, only the branch is read, and
    # an empty or malformed one still goes to the full grammar.
    for branch in ("", "x y"):
        assert a._simple_via(f"SIP/2.0/UDP 10.0.0.2:5060;branch={branch};rport") is None
        with pytest.raises(HeaderError):
            h.parse_via(f"SIP/2.0/UDP 10.0.0.2:5060;branch={branch};rport")


def test_the_via_memories_are_bounded() -> None:
    for n in range(TABLE_SIZE + 10):
        h.parse_via(f"SIP/2.0/UDP 10.{n // 256}.{n % 256}.1:5060;branch=z9hG4bK{n};received=h{n}")
        h.parse_cseq(f"{n} NOTIFY")
        h.parse_name_addr(f"<sip:u{n}@10.0.0.1>;tag=t{n}", "From")
        h.parse_name_addr(f"<sip:u{n}@10.0.0.1>", "To")
        h.parse_event(f"package{n};id={n}")
        h.parse_media_type(f"text/x-{n}")
    tables = (a._SENT_BY, a._VIA_SHAPES, a._HOSTS, h._CSEQS, a._TAGGED_SHAPES)
    for table in (*tables, a._UNTAGGED, h._EVENTS, h._MEDIA_TYPES):
        assert 0 < len(table) <= TABLE_SIZE
    long_host = "h" * 200
    h.parse_via(f"SIP/2.0/UDP {long_host};branch=z9hG4bK1;received={long_host}")
    assert long_host not in a._HOSTS and all(long_host not in key for key in a._SENT_BY)


_NAME_ADDR_HEADS = st.sampled_from(
    [
        "<sip:sipp@127.0.0.1:5061>",
        '"Alice" <sip:alice@a.com;transport=tcp>',
        "Bob Smith <sip:bob@b.com;tag=inner>",  # a URI parameter named tag
        "sip:carol@c.com",
        "<sips:[2001:db8::1]:5061>",
        "<sip:a@b",
        "<tel:+15551234>",
    ]
)
_NAME_ADDR_PARAMS = st.sampled_from(
    [";q=0.5", ";expires=60", ";x", ';x="a;tag=b"', ";TAG=upper", " ;sp=1", ";tag=dup", ";a=>"]
)
_TAGS = st.sampled_from(["1sipp0", "a.b-c_d!e~f%g*h+i`j'k", "", "x y", 'q"', "7"])


@settings(max_examples=400)
@given(
    _NAME_ADDR_HEADS,
    st.lists(_NAME_ADDR_PARAMS, max_size=2),
    _TAGS,
    st.lists(_NAME_ADDR_PARAMS, max_size=2),
    _TAGS,
)
def test_tagged_name_addrs_read_as_the_full_grammar_reads_them(
    head: str, before: list[str], tag: str, after: list[str], other_tag: str
) -> None:
    """The tagged-shape reading agrees with the full grammar, the first time
    (when it learns the shape) and for the same shape with another tag (when
    it reads only the tag), and declines whatever the grammar refuses."""
    for this_tag in (tag, other_tag, tag):
        value = f"{head}{''.join(before)};tag={this_tag}{''.join(after)}"
        try:
            full = a._parse_name_addr(value, "From")
        except HeaderError:
            with pytest.raises(HeaderError):
                h.parse_name_addr(value, "From")
            continue
        assert h.parse_name_addr(value, "From") == full


def test_a_from_is_read_once_per_shape_then_only_its_tag() -> None:
    first = h.parse_name_addr("<sip:sipp@127.0.0.1:5061>;tag=1sipp1", "From")
    assert "<sip:sipp@127.0.0.1:5061>;tag=" in a._TAGGED_SHAPES
    second = h.parse_name_addr("<sip:sipp@127.0.0.1:5061>;tag=2sipp2", "From")
    assert second.tag == "2sipp2" and second.uri is first.uri  # the URI was not parsed again
    with pytest.raises(HeaderError):  # a bad tag still meets the grammar
        h.parse_name_addr("<sip:sipp@127.0.0.1:5061>;tag=a b", "From")


# A Latin letter and an Arabic-Indic digit: str.isalnum() says yes to both,
# the token grammar (ASCII only) says no.
@pytest.mark.parametrize("letter", ["\u00e9", "\u0661"])
def test_a_non_ascii_tag_or_branch_is_refused_once_its_shape_is_known(letter: str) -> None:
    """The shape tables read only the tag or branch of a known shape; that
    reading refuses what the grammar refuses, Unicode letters included."""
    h.parse_name_addr("<sip:sipp@127.0.0.1:5061>;tag=1sipp1", "From")
    with pytest.raises(HeaderError):
        h.parse_name_addr(f"<sip:sipp@127.0.0.1:5061>;tag=1sipp{letter}", "From")
    h.parse_via("SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1-1")
    with pytest.raises(HeaderError):
        h.parse_via(f"SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1-{letter}")


def test_is_token_is_the_grammar() -> None:
    from phonecast.sip import _abnf

    for text in ("z9hG4bK-1-2", "a.b!%*_+`'~", "MD5", "-"):
        assert _abnf.is_token(text)
    for text in ("", "a b", "\u00e9", "ab\u0661", "a;b", 'a"'):
        assert not _abnf.is_token(text)


@pytest.mark.parametrize(
    ("parse", "good", "bad"),
    [
        (lambda v: h.parse_name_addr(v, "To"), "<sip:1001@127.0.0.1:5070>", "<sip:1001@127.0.0.1"),
        (h.parse_event, "XML-Service;id=1", ";id=1"),
        (h.parse_media_type, "text/xml;charset=utf-8", "text"),
    ],
)  # fmt: skip
def test_repeated_values_are_read_once_and_faults_every_time(
    parse: Callable[[str], object], good: str, bad: str
) -> None:
    """The values a peer repeats in every request (a To, the Event, the
    Content-Type) come from a table the second time, the same object; a
    malformed one is refused each time it comes, never remembered."""
    assert parse(good) is parse(good)
    for _ in range(2):
        with pytest.raises(HeaderError):
            parse(bad)


def test_name_addr_forms() -> None:
    na = h.parse_name_addr('"Alice \\"A\\"" <sip:alice@a.com;transport=tcp>;tag=88;q=0.5', "From")
    assert na.display_name == 'Alice "A"' and na.tag == "88" and na.param("q") == "0.5"
    assert isinstance(na.uri, SipUri) and na.uri.transport == "tcp"
    spec = h.parse_name_addr("sip:bob@b.com;tag=9", "To")
    assert spec.tag == "9" and spec.uri == parse_uri("sip:bob@b.com")
    tokens_dn = h.parse_name_addr("Bob  Smith <sip:bob@b.com>", "To")
    assert tokens_dn.display_name == "Bob Smith"
    assert str(tokens_dn) == "Bob Smith <sip:bob@b.com>"
    assert h.parse_name_addr(str(na), "From") == na
    assert na.with_tag("new").tag == "new"


@given(
    sip_uris,
    st.one_of(st.none(), st.text(max_size=20).filter(lambda s: s.isprintable())),
    st.lists(st.tuples(tokens, st.one_of(st.none(), tokens)), max_size=3),
)
def test_name_addr_round_trip(
    uri: SipUri, display: str | None, params: list[tuple[str, str | None]]
) -> None:
    value = h.NameAddr(uri, display, tuple(params))
    assert h.parse_name_addr(str(value), "Contact") == value


def test_route_requires_angle_brackets() -> None:
    with pytest.raises(HeaderError):
        h.parse_name_addr("sip:proxy.example.com;lr", "Route", allow_addr_spec=False)


def test_cseq_and_scalars() -> None:
    assert h.parse_cseq("0009 \t INVITE") == h.CSeq(9, "INVITE")
    for bad in ("INVITE", "1", "2147483648 INVITE", "-1 INVITE"):
        with pytest.raises(HeaderError):
            h.parse_cseq(bad)
    assert h.parse_max_forwards("70") == 70
    with pytest.raises(HeaderError):
        h.parse_max_forwards("256")
    assert h.parse_delta_seconds("3600", "Expires") == 3600
    with pytest.raises(HeaderError):
        h.parse_delta_seconds(str(2**32), "Expires")
    with pytest.raises(HeaderError):
        h.parse_call_id("has space", "Call-ID")


def test_media_types_event_and_state() -> None:
    ct = h.parse_media_type('text/html; charset="ISO-8859-4"')
    assert ct.mime == "text/html" and ct.charset == "ISO-8859-4"
    assert h.parse_media_type("*/*").matches("application/sdp")
    assert not h.parse_media_type("text/*").matches("application/sdp")
    assert [m.mime for m in h.parse_accept("application/sdp, text/*;q=0.5")] == [
        "application/sdp",
        "text/*",
    ]
    ev = h.parse_event("XML-Service;id=7")
    assert ev.is_("xml-service") and ev.id == "7"
    state = h.parse_subscription_state("Terminated;reason=timeout;expires=0")
    assert (state.state, state.reason, state.expires) == ("terminated", "timeout", 0)


def test_token_lists_retry_after_and_date() -> None:
    allow = "ACK, BYE, CANCEL, INFO, INVITE, NOTIFY, OPTIONS, REFER, UPDATE"
    assert h.parse_token_list(allow, "Allow")[-1] == "UPDATE"
    with pytest.raises(HeaderError):
        h.parse_token_list("INVITE, <bad>", "Allow")
    ra = h.parse_retry_after("120 (I'm in a meeting);duration=60")
    assert (ra.seconds, ra.comment, h.param_value(ra.params, "duration")) == (
        120,
        "I'm in a meeting",
        "60",
    )
    assert h.parse_retry_after(str(ra)) == ra
    when = h.parse_date("Sat, 13 Nov 2010 23:29:00 GMT")
    assert when == dt.datetime(2010, 11, 13, 23, 29, tzinfo=dt.UTC)
    assert h.format_date(when) == "Sat, 13 Nov 2010 23:29:00 GMT"
    with pytest.raises(HeaderError):
        h.parse_date("Sat, 31 Feb 2010 23:29:00 GMT")


def test_split_commas_respects_quotes_and_brackets() -> None:
    value = '"a, b" <sip:x@y;p=1,2>;q=1, <sip:z@w>'
    assert h.split_commas(value) == ['"a, b" <sip:x@y;p=1,2>;q=1', "<sip:z@w>"]


def test_errors_never_show_authorization_values() -> None:
    err = HeaderError("Authorization", "broken", value='Digest username="u", response="abc"')
    assert "abc" not in str(err) and "Digest" in str(err)
