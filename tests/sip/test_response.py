"""Responses to requests, and salvaged 400s for requests that did not parse."""

from __future__ import annotations

import pytest

from phonecast.sip import ParseError, Request, UasPolicy, ValidationError, parse_message, validate
from phonecast.sip.response import (
    error_response,
    make_response,
    salvage_error_response,
    stateless_tag,
)
from tests.conftest import CORPUS

R = CORPUS / "rfc4475"


def test_make_response_echoes_and_tags() -> None:
    req = parse_message((R / "esc01.dat").read_bytes())
    assert isinstance(req, Request)
    resp = make_response(req, 200, to_tag="abc", headers=[("Allow", "INVITE")])
    assert (resp.status_code, resp.reason) == (200, "OK")
    assert resp.to.tag == "abc" and resp.call_id == req.call_id
    assert [str(v) for v in resp.via] == [str(v) for v in req.via]
    assert resp.cseq == req.cseq and resp.get("Allow") == "INVITE"
    assert resp.get("Content-Length") == "0"
    trying = make_response(req, 100, to_tag="abc")
    assert trying.to.tag is None  # no tag on 100 Trying


def test_a_stateless_tag_is_the_same_for_every_copy_of_a_request() -> None:
    """RFC 3261 8.2.7: the To tag of a stateless answer is the same for the
    same request, differs when anything that tells requests apart differs
    (branch, From tag, Call-ID, CSeq), and depends on the UAS's key."""
    req = parse_message((R / "esc01.dat").read_bytes())
    assert isinstance(req, Request)
    key = b"k" * 16
    tag = stateless_tag(req, key)
    assert len(tag) == 12 and int(tag, 16) >= 0
    copy = parse_message(bytes(req))
    assert isinstance(copy, Request) and stateless_tag(copy, key) == tag
    assert stateless_tag(req, b"j" * 16) != tag
    top = req.get("Via") or ""
    for name, value in [
        ("Via", top.replace("branch=", "branch=x")),
        ("From", (req.get("From") or "") + "x"),
        ("Call-ID", "other"),
        ("CSeq", "99 OPTIONS"),
    ]:
        changed = req.with_header_replaced(name, value)
        assert stateless_tag(changed, key) != tag, name


@pytest.mark.parametrize("read_first", [True, False])
def test_a_response_adopts_the_parsed_headers_it_echoes(read_first: bool) -> None:
    req = parse_message((R / "esc01.dat").read_bytes())
    assert isinstance(req, Request)
    if read_first:  # the request's parsed values are handed over, not parsed again
        parsed = (req.cseq, req.call_id, req.from_, req.via, req.top_via)
    resp = make_response(req, 401, to_tag="t")
    if read_first:
        assert (resp.cseq, resp.call_id, resp.from_, resp.via, resp.top_via) == parsed
        assert resp.cseq is parsed[0] and resp.via is parsed[3]
    # Either way they are what the response's own text says.
    again = parse_message(bytes(resp))
    assert (again.cseq, again.call_id, again.from_) == (resp.cseq, resp.call_id, resp.from_)
    assert [str(v) for v in again.via] == [str(v) for v in resp.via]
    assert resp.to.tag == "t" and again.to == resp.to  # To is not adopted: it gained a tag


def test_existing_to_tag_is_kept() -> None:
    req = parse_message((R / "badbranch.dat").read_bytes())
    assert isinstance(req, Request)
    tagged = req.with_header_replaced("To", "<sip:user@example.com>;tag=keep")
    assert make_response(tagged, 200, to_tag="new").to.tag == "keep"


def test_error_response_carries_code_reason_and_headers() -> None:
    req = parse_message((R / "bext01.dat").read_bytes())
    assert isinstance(req, Request)
    with pytest.raises(ValidationError) as info:
        validate(req, UasPolicy())
    resp = error_response(req, info.value, to_tag="t")
    assert (resp.status_code, resp.reason) == (420, "Bad Extension")
    assert resp.unsupported == ("nothingSupportsThis", "nothingSupportsThisEither")


@pytest.mark.parametrize("name", ["clerr", "ncl", "ltgtruri", "lwsruri", "lwsstart", "trws"])
def test_salvaged_400_for_parse_failures(name: str) -> None:
    data = (R / f"{name}.dat").read_bytes()
    with pytest.raises(ParseError):
        parse_message(data)
    resp = salvage_error_response(data)
    assert resp is not None and resp.status_code == 400
    again = parse_message(bytes(resp))
    assert again.to.tag and again.cseq.method


def test_no_response_to_a_broken_response_or_headerless_request() -> None:
    assert salvage_error_response((R / "bigcode.dat").read_bytes()) is None
    assert salvage_error_response(b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\n\r\n") is None
    assert salvage_error_response(b"\x00\x01garbage") is None
