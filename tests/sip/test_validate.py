"""validate.check_policy: the application-level refusals, each on its own."""

from __future__ import annotations

import pytest

from phonecast.sip import UasPolicy, ValidationError, parse_message, validate
from phonecast.sip.message import Request
from phonecast.sip.validate import _check_headers_in_order, _check_headers_quickly

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


def _outcome(check: object, data: bytes) -> str:
    """What one of validate's header checks makes of a fresh parse of ``data``."""
    from phonecast.sip import SipError

    message = parse_message(data)
    try:
        result = check(message, message._values_index())  # type: ignore[operator]
    except SipError as exc:
        return f"raised {type(exc).__name__}: {exc}"
    return "ok" if result in (None, True) else "declined"


def _corpus_messages() -> list[bytes]:
    from phonecast.sip import ParseError
    from tests.conftest import CORPUS

    out = []
    for path in sorted((CORPUS / "rfc4475").glob("*.dat")):
        try:
            parse_message(path.read_bytes())
        except ParseError:
            continue
        out.append(path.read_bytes())
    return out


_FAULTS = [
    "Max-Forwards: x\r\nEvent: \r\n",  # two malformed headers: the first in the fixed order counts
    "Event: \r\nMax-Forwards: x\r\n",
    "Call-ID: second@h\r\n",  # a single header twice
    "Content-Length: 0\r\n",  # a second, equal Content-Length is allowed
    "Content-Length: 5\r\n",  # a conflicting one is not
    "Expires: soon\r\nContent-Type: text\r\n",
    "Contact: <sip:a@127.0.0.1\r\nRetry-After: x\r\n",
]


@pytest.mark.parametrize("data", _corpus_messages())
def test_the_quick_header_checks_agree_with_the_ordered_ones(data: bytes) -> None:
    """The quick pass over the headers present passes exactly the messages
    the checks in fixed order pass; whatever it declines or fails, the
    ordered checks then judge (and name the fault they always name)."""
    ordered = _outcome(_check_headers_in_order, data)
    quick = _outcome(_check_headers_quickly, data)
    assert (quick == "ok") == (ordered == "ok"), (quick, ordered)


@pytest.mark.parametrize("extra", _FAULTS)
def test_of_several_faults_the_same_one_is_reported(extra: str) -> None:
    from phonecast.sip import SipError

    text = (
        "NOTIFY sip:1001@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKf\r\n"
        "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: f@h\r\n"
        f"CSeq: 1 NOTIFY\r\n{extra}Content-Length: 0\r\n\r\n"
    ).encode()
    ordered = _outcome(_check_headers_in_order, text)
    try:
        validate(parse_message(text), POLICY)
        whole = "ok"
    except SipError as exc:
        whole = f"raised {type(exc).__name__}: {exc}"
    assert whole == ordered
    if extra != "Content-Length: 0\r\n":
        assert whole.startswith("raised")
