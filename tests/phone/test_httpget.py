"""The GET as bytes: the request a URL becomes, the response read piece by piece."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from phonecast.phone.httpget import MAX_HEADER_BYTES, Exchange, FetchResult, outcome, request_bytes

URL = "http://192.0.2.7/a.xml"


def _read(*pieces: bytes, max_bytes: int = 1024, close: bool = False) -> Exchange:
    exchange = Exchange(max_bytes)
    for piece in pieces:
        exchange.feed(piece)
    if close:
        exchange.end_of_stream()
    return exchange


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://example.test/", b"GET / HTTP/1.1\r\nHost: example.test\r\n"),
        ("http://example.test", b"GET / HTTP/1.1\r\nHost: example.test\r\n"),
        ("http://user:pw@[::1]:8080/p?q", b"GET /p?q HTTP/1.1\r\nHost: [::1]:8080\r\n"),
        ("http://b\u00fccher.test/", b"GET / HTTP/1.1\r\nHost: xn--bcher-kva.test\r\n"),
    ],
)
def test_request_bytes(url: str, expected: bytes) -> None:
    data = request_bytes(urlsplit(url), b"UA")
    assert data.startswith(expected)
    assert data.endswith(b"\r\nConnection: close\r\n\r\n")


def test_a_response_read_a_byte_at_a_time_is_the_same_response() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 4\r\n\r\n<a/>"
    whole = _read(raw)
    drip = _read(*(raw[i : i + 1] for i in range(len(raw))))
    for exchange in (whole, drip):
        assert exchange.done and exchange.error is None
        assert outcome(URL, exchange) == FetchResult(URL, True, 200, "text/xml", b"<a/>")


@pytest.mark.parametrize(
    ("pieces", "close", "error"),
    [
        ((b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n",), False,
         "body of 2000 bytes exceeds 1024"),
        ((b"HTTP/1.1 200 OK\r\n\r\n", b"x" * 600, b"x" * 600), False,
         "body exceeds 1024 bytes"),
        ((b"HTTP/1.1 200 OK\r\nX: " + b"y" * MAX_HEADER_BYTES,), False,
         f"response header block exceeds {MAX_HEADER_BYTES} bytes"),
        ((b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n<a",), True,
         "the server closed the connection before the response ended"),
        ((b"HTTP/1.1 200 OK\r\n",), True,
         "the server closed the connection before the response ended"),
        ((b"SIP/2.0 200 OK\r\n\r\n",), False, "malformed response"),
    ],
)  # fmt: skip
def test_caps_and_faults_end_the_exchange_with_their_reason(
    pieces: tuple[bytes, ...], close: bool, error: str
) -> None:
    exchange = _read(*pieces, close=close)
    assert exchange.done
    result = outcome(URL, exchange)
    assert isinstance(result, FetchResult) and not result.ok
    assert (result.error or "").startswith(error)
    exchange.feed(b"HTTP/1.1 200 OK\r\n\r\n")  # nothing is read once it is over
    assert outcome(URL, exchange) == result


def test_outcomes_redirect_status_timeout_and_silence() -> None:
    moved = _read(b"HTTP/1.1 302 Found\r\nLocation: b.xml\r\nContent-Length: 0\r\n\r\n")
    assert outcome(URL, moved) == "http://192.0.2.7/b.xml"
    missing = _read(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    assert outcome(URL, missing) == FetchResult(URL, False, 404, "", b"", "HTTP 404")
    slow = Exchange(1024)
    slow.finish(TimeoutError())
    assert outcome(URL, slow) == FetchResult(URL, False, error="timed out")
    refused = Exchange(1024)
    refused.finish(ConnectionRefusedError(111, "Connection refused"))
    assert outcome(URL, refused).error == "ConnectionRefusedError: [Errno 111] Connection refused"  # type: ignore[union-attr]
    silent = _read(close=True)
    assert outcome(URL, silent).error == (  # type: ignore[union-attr]
        "the server closed the connection before the response ended"
    )


def test_the_parser_is_made_at_the_first_bytes_and_gone_after_the_end() -> None:
    """A connection refused before any byte never makes a parser; bytes fed
    after the end change nothing."""
    refused = Exchange(1024)
    assert refused._parser is None
    refused.finish(ConnectionRefusedError(111, "Connection refused"))
    refused.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert refused._parser is None and refused.status is None
    assert isinstance(refused.error, ConnectionRefusedError)
    answered = Exchange(1024)
    answered.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert answered.done and answered.error is None and bytes(answered.body) == b"ok"
    assert answered._parser is None
    answered.feed(b"HTTP/1.1 500 Oops\r\n\r\n")
    assert answered.status == 200
