"""Messages as values: fields, typed access, copies, serialisation round-trips."""

from __future__ import annotations

import pytest
from hypothesis import given

from phonecast.sip import (
    HeaderError,
    ParseError,
    Request,
    Response,
    parse_message,
)
from tests.sip.samples import NOTIFY
from tests.sip.strategies import requests, responses


def test_parse_notify_fields() -> None:
    msg = parse_message(NOTIFY)
    assert isinstance(msg, Request)
    assert msg.method == "NOTIFY"
    assert msg.body == b"http://10.0.0.2/alert.xml!"
    assert msg.top_via.branch == "z9hG4bK776asdhds"
    assert msg.top_via.wants_rport and msg.top_via.rport is None
    assert msg.event is not None and msg.event.is_("xml-service")
    assert msg.cseq.seq == 314159
    assert msg.from_.tag == "1928301774"
    assert msg.to.tag is None
    assert msg.content_type is not None and msg.content_type.mime == "text/html"


def test_trailing_octets_after_body_are_ignored() -> None:
    msg = parse_message(NOTIFY + b"garbage after the body")
    assert msg.body == b"http://10.0.0.2/alert.xml!"


def test_compact_names_and_case_insensitive_lookup() -> None:
    data = (
        b"OPTIONS sip:a@example.com SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"f: <sip:b@example.com>;tag=1\r\nt: sip:a@example.com\r\ni: x@y\r\n"
        b"CSEQ: 1 OPTIONS\r\nk: replaces, 100rel\r\nl: 0\r\n\r\n"
    )
    msg = parse_message(data)
    assert msg.get("Call-ID") == msg.get("i") == "x@y"
    assert msg.supported == ("replaces", "100rel")
    assert msg.cseq.method == "OPTIONS"
    assert "VIA" in msg and "Route" not in msg


def test_leading_crlf_is_skipped_and_empty_refused() -> None:
    assert isinstance(parse_message(b"\r\n\r\n" + NOTIFY), Request)
    with pytest.raises(ParseError):
        parse_message(b"\r\n\r\n")


def test_without_content_length_body_runs_to_end_of_datagram() -> None:
    data = NOTIFY.replace(b"Content-Length: 26\r\n", b"")
    assert parse_message(data).body == b"http://10.0.0.2/alert.xml!"


def test_status_line_forms() -> None:
    base = b"\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n"
    resp = parse_message(b"SIP/2.0 401 Unauthorized" + base)
    assert isinstance(resp, Response) and resp.status_code == 401
    assert resp.reason == "Unauthorized"
    assert parse_message(b"SIP/2.0 100" + base).reason == ""  # type: ignore[union-attr]
    for bad in (b"SIP/2.0 42 Short", b"SIP/2.0 1000 Long", b"SIP/2.0 099 Low"):
        with pytest.raises(ParseError):
            parse_message(bad + base)


def test_lazy_headers_do_not_parse_until_read() -> None:
    data = NOTIFY.replace(b"Max-Forwards: 70", b"Max-Forwards: lots")
    msg = parse_message(data)
    assert msg.cseq.seq == 314159
    with pytest.raises(HeaderError) as info:
        _ = msg.max_forwards
    assert info.value.header == "Max-Forwards"


def test_call_id_and_cseq_are_read_once_and_named_when_missing_or_bad() -> None:
    msg = parse_message(NOTIFY)
    assert msg.call_id is msg.call_id and msg.cseq is msg.cseq
    for header, raw in (("Call-ID", b"Call-ID"), ("CSeq", b"CSeq")):
        missing = parse_message(NOTIFY.replace(raw + b":", b"X-Gone:"))
        with pytest.raises(HeaderError, match="missing") as info:
            _ = missing.call_id if header == "Call-ID" else missing.cseq
        assert info.value.header == header
    bad = parse_message(NOTIFY.replace(b"CSeq: 314159", b"CSeq: many"))
    with pytest.raises(HeaderError) as info:
        _ = bad.cseq
    assert info.value.header == "CSeq"


def test_oversized_message_refused() -> None:
    with pytest.raises(ParseError):
        parse_message(NOTIFY + b"x" * 70000)


def test_with_body_sets_length_and_type() -> None:
    req = Request("NOTIFY", parse_message(NOTIFY).uri, [("Via", "SIP/2.0/UDP h")])  # type: ignore[attr-defined]
    with_body = req.with_body(b"http://x/y", "text/html")
    assert with_body.get("Content-Length") == "10"
    assert with_body.get("Content-Type") == "text/html"
    assert req.get("Content-Length") is None  # the original is unchanged


def test_header_edits_return_copies() -> None:
    msg = parse_message(NOTIFY)
    top = msg.with_header_first("Via", "SIP/2.0/TCP proxy;branch=z9hG4bKp")
    assert top.top_via.host == "proxy" and len(top.via) == 2
    assert msg.top_via.host == "127.0.0.1"
    assert top.without_header("via").get("Via") is None
    replaced = msg.with_header_replaced("CSeq", "2 NOTIFY")
    assert replaced.cseq.seq == 2 and replaced.count("cseq") == 1


@given(requests)
def test_request_round_trip(req: Request) -> None:
    again = parse_message(bytes(req))
    assert again == req
    assert bytes(again) == bytes(req)


@given(responses)
def test_response_round_trip(resp: Response) -> None:
    again = parse_message(bytes(resp))
    assert again == resp


def test_first_header_replaced_keeps_other_fields() -> None:
    msg = parse_message(NOTIFY).with_header("Via", "SIP/2.0/UDP second;branch=z9hG4bK2")
    stamped = msg.with_first_header_replaced("Via", "SIP/2.0/UDP first;branch=z9hG4bK1")
    assert [v.host for v in stamped.via] == ["first", "second"]
    assert stamped.count("Via") == 2


# -- the index and what stamping and building keep

_STAMPABLE = (
    b"NOTIFY sip:1001@127.0.0.1:5070 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKone;rport,"
    b" SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKtwo\r\n"
    b"Via: SIP/2.0/TCP 10.0.0.8;branch=z9hG4bKthree\r\n"
    b"f: <sip:pc@10.0.0.2>;tag=a\r\n"
    b"t: <sip:1001@127.0.0.1:5070>\r\n"
    b"i: c1@10.0.0.2\r\n"
    b"CSeq: 1 NOTIFY\r\n"
    b"l: 0\r\n\r\n"
)


def test_header_map_folds_compact_names_and_keeps_order() -> None:
    msg = parse_message(_STAMPABLE)
    fields = msg.header_map()
    assert fields["from"] == ["<sip:pc@10.0.0.2>;tag=a"]
    assert len(fields["via"]) == 2 and fields["content-length"] == ["0"]
    assert msg.get("F") == msg.get("from") and msg.count("v") == 2


def test_with_top_via_replaces_only_the_first_value_and_keeps_what_is_known() -> None:
    msg = parse_message(_STAMPABLE)
    from_ = msg.from_
    stamped = msg.with_top_via(msg.top_via.with_params(received="192.0.2.7", rport="5999"))
    assert stamped.top_via.received == "192.0.2.7" and stamped.top_via.rport == 5999
    assert [v.branch for v in stamped.via] == ["z9hG4bKone", "z9hG4bKtwo", "z9hG4bKthree"]
    assert stamped.from_ is from_  # parsed values carried over, not re-parsed
    assert msg.top_via.received is None  # the original is unchanged
    reparsed = parse_message(bytes(stamped))
    assert reparsed.top_via == stamped.top_via and reparsed.get("from") == msg.get("from")


def test_prime_top_via_is_ignored_when_the_text_disagrees() -> None:
    msg = parse_message(_STAMPABLE)
    built = Request(msg.method, msg.uri, msg.headers, msg.body)
    other = msg.top_via.with_params(branch="z9hG4bKelse")
    assert built.prime_top_via(other).top_via.branch == "z9hG4bKone"
    same = Request(msg.method, msg.uri, msg.headers, msg.body)
    primed = msg.top_via.with_params()  # equal value, a distinct object
    assert same.prime_top_via(primed).top_via is primed
