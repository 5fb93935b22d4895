"""validate.check_policy: the application-level refusals, each on its own."""

from __future__ import annotations

import pytest

from phonecast.sip import UasPolicy, ValidationError, parse_message, validate
from phonecast.sip.message import Request

POLICY = UasPolicy(body_types=frozenset({"application/sdp", "text/plain"}))


def _request(method: str = "UPDATE", uri: str = "sip:1001@127.0.0.1", extra: str = "",
             body: str = "") -> Request:  # fmt: skip
    text = (
        f"{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKpol\r\n"
        "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: pol@h\r\n"
        f"CSeq: 1 {method}\r\nMax-Forwards: 70\r\n{extra}Content-Length: {len(body)}\r\n\r\n{body}"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def _refusal(request: Request) -> tuple[int, tuple[tuple[str, str], ...]] | None:
    try:
        validate(request, POLICY)
    except ValidationError as exc:
        return exc.status_code, tuple(exc.headers)
    return None


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (_request(), None),
        (_request(uri="SIP:1001@127.0.0.1"), None),  # schemes compare case-insensitively
        (_request(uri="tel:+15551234"), (416, ())),
        (_request(extra="Require: 100rel, foo\r\n"), (420, (("Unsupported", "100rel, foo"),))),
        (_request("ACK", extra="Require: foo\r\n"), None),  # ACK and CANCEL: not checked
        (_request(extra="Content-Type: text/html\r\n", body="x"),
         (415, (("Accept", "application/sdp, text/plain"),))),
        (_request(extra="Content-Type: text/html\r\n"), None),  # no body: no body type to refuse
        (_request(extra="Content-Type: Text/Plain\r\n", body="x"), None),
        (_request(extra="Authorization: Basic QWxhZGRpbg==\r\n"), (401, ())),
        (_request(extra="Proxy-Authorization: Bearer x\r\n"), (401, ())),
        (_request(extra='Authorization: Digest username="a"\r\n'), None),
        (_request(extra="Accept: text/html\r\n"), (406, (("Accept", "application/sdp"),))),
        (_request(extra="Accept: application/*\r\n"), None),
        (_request(extra="Accept:\r\n"), None),  # empty: anything goes
        (_request("NOTIFY", extra="Event: x\r\nAccept: text/html\r\n"), None),  # answers no body
    ],
)  # fmt: skip
def test_each_policy_refusal_and_its_headers(
    request_: Request, expected: tuple[int, tuple[tuple[str, str], ...]] | None
) -> None:
    assert _refusal(request_) == expected
