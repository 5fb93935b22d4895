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


@pytest.mark.parametrize(
    "framing",
    [b"1;" + b"e" * 4096, b"0" * 4096],  # an endless chunk extension, endless size digits
)
def test_chunk_framing_without_end_is_cut_off_by_the_bytes_received(framing: bytes) -> None:
    """The header and body caps count neither; the bytes received in all
    do, so a server that frames nothing for ever cannot keep the fetch
    reading (each read would look like progress to the read timeout)."""
    exchange = _read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", max_bytes=1024)
    fed = 0
    while not exchange.done and fed < 10_000_000:  # bounded, whatever happens
        exchange.feed(framing)
        fed += len(framing)
    result = outcome(URL, exchange)
    assert isinstance(result, FetchResult) and not result.ok
    assert result.error == f"response exceeds {MAX_HEADER_BYTES + 2048} bytes with its framing"
    assert fed <= MAX_HEADER_BYTES + 2048 + len(framing)


def test_small_chunks_within_the_caps_are_still_read() -> None:
    """The framing may add as much again as the body cap: a page sent a
    byte a chunk, each with a short extension, is read whole."""
    body = b"<CiscoIPPhoneText/>"
    chunks = b"".join(b"1;n=v\r\n" + body[i : i + 1] + b"\r\n" for i in range(len(body)))
    exchange = _read(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n",
        chunks,
        b"0\r\n\r\n",
        max_bytes=64,
    )
    assert outcome(URL, exchange) == FetchResult(URL, True, 200, "text/xml", body)


@pytest.mark.parametrize(
    "after",
    [b"5", b"HTTP/1.1 500 Oops\r\nContent-Type: text/html\r\nContent-Length: 0\r\n\r\n"],
)
def test_bytes_after_the_response_change_nothing(after: bytes) -> None:
    """llhttp reads on past a complete response within one feed: a second
    response behind the first (or stray bytes) must not replace its
    headers, status or body."""
    page = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 4\r\n\r\n<a/>"
    exchange = _read(page + after)
    assert outcome(URL, exchange) == FetchResult(URL, True, 200, "text/xml", b"<a/>")


def test_a_switch_of_protocols_is_a_bad_response_even_with_a_page_behind_it() -> None:
    """A 101 with Upgrade is not an HttpParserError in httptools: it used
    to escape the exchange; and the 200 behind it must not count."""
    exchange = _read(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 4\r\n\r\n<a/>"
    )
    result = outcome(URL, exchange)
    assert isinstance(result, FetchResult) and not result.ok
    assert result.error == "the server switched protocols (HTTP 101)"


@pytest.mark.parametrize(
    ("coding", "ok", "error"),
    [
        (b"identity", True, None),  # no coding: the body runs to the close
        (b"gzip", False, "unsupported transfer coding 'gzip'"),
        (b"gzip, chunked", False, "unsupported transfer coding 'gzip'"),
    ],
)
def test_transfer_codings_other_than_chunked(coding: bytes, ok: bool, error: str | None) -> None:
    """RFC 9112 6.3: without chunked last, the body runs to the close; a
    coding the phone cannot undo is refused by name rather than handed to
    the XML parser still coded."""
    exchange = _read(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: " + coding + b"\r\n\r\n",
        b"<a/>",
        close=True,
    )
    result = outcome(URL, exchange)
    assert isinstance(result, FetchResult) and result.ok is ok and result.error == error
    if ok:
        assert result.body == b"<a/>"


def test_transfer_encoding_fields_are_read_together() -> None:
    """Two Transfer-Encoding fields name one list of codings: a gzip in
    the first is not hidden by a chunked in the second."""
    exchange = _read(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\n<a/>\r\n0\r\n\r\n"
    )
    result = outcome(URL, exchange)
    assert isinstance(result, FetchResult) and not result.ok
    assert result.error == "unsupported transfer coding 'gzip'"


_CHUNKED_200 = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (_CHUNKED_200 + b"4\r\n<a/>\r\n0\r\nContent-Type: text/xml\r\n\r\n",
         FetchResult(URL, True, 200, "text/html", b"<a/>")),
        (b"HTTP/1.1 302 Found\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"0\r\nLocation: http://198.51.100.9/x.xml\r\n\r\n",
         FetchResult(URL, False, 302, "", b"", "HTTP 302")),
    ],
    ids=["content-type", "location"],
)  # fmt: skip
def test_trailer_fields_are_not_header_fields(raw: bytes, expected: FetchResult) -> None:
    """llhttp hands trailers to on_header as it does header fields: a
    trailer made a page of text/html one of text/xml, and a 302 without a
    Location followed one sent after its body (RFC 9110 6.5: a trailer is
    not to be merged into the header section)."""
    assert outcome(URL, _read(raw)) == expected


def test_trailer_fields_count_toward_the_header_cap() -> None:
    exchange = _read(_CHUNKED_200 + b"0\r\nX-T: " + b"t" * MAX_HEADER_BYTES + b"\r\n\r\n")
    result = outcome(URL, exchange)
    assert isinstance(result, FetchResult) and not result.ok
    assert result.error == f"response header block exceeds {MAX_HEADER_BYTES} bytes"


_PAGE_200 = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 4\r\n\r\n<a/>"


@pytest.mark.parametrize(
    "interim",
    [
        b"HTTP/1.1 199 Odd\r\nContent-Length: 5\r\n\r\nJUNK!",
        b"HTTP/1.1 150 Odd\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nABC\r\n0\r\n\r\n",
        b"HTTP/1.1 103 Early Hints\r\nContent-Length: 5\r\n\r\nJUNK!",
    ],
    ids=["199-length", "150-chunked", "103-length"],
)
def test_an_interim_response_with_content_is_refused(interim: bytes) -> None:
    """A 1xx ends with its header section (RFC 9110 15.2): llhttp reads the
    content of one other than 100-103 anyway, and it was put in front of
    the page's body."""
    result = outcome(URL, _read(interim + _PAGE_200))
    assert result == FetchResult(URL, False, error="an interim (1xx) response with content")


def test_interim_responses_without_content_are_skipped() -> None:
    raw = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 199 Odd\r\n\r\n" + _PAGE_200
    assert outcome(URL, _read(raw)) == FetchResult(URL, True, 200, "text/xml", b"<a/>")


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (b"", None),
        (b"Content-Encoding: identity\r\n", None),
        (b"Content-Encoding: gzip\r\n", "unsupported content coding 'gzip'"),
        (b"Content-Encoding: identity\r\nContent-Encoding: GZip\r\n",
         "unsupported content coding 'gzip'"),
    ],
)  # fmt: skip
def test_a_page_in_a_content_coding_is_refused_by_name(fields: bytes, error: str | None) -> None:
    """A gzipped page (sent unasked: the GET has no Accept-Encoding) went
    to the XML parser still coded, and the phone reported bad XML."""
    raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n" + fields + b"Content-Length: 4\r\n\r\n"
    result = outcome(URL, _read(raw + b"<a/>"))
    assert isinstance(result, FetchResult) and result.ok is (error is None)
    assert result.error == error and result.status == 200


def test_a_content_coding_does_not_stop_a_redirect() -> None:
    """Only a page's content is shown; a redirect's is not."""
    raw = b"HTTP/1.1 302 Found\r\nLocation: b.xml\r\nContent-Encoding: gzip\r\n"
    exchange = _read(raw + b"Content-Length: 0\r\n\r\n")
    assert exchange.done and outcome(URL, exchange) == "http://192.0.2.7/b.xml"


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        (b"text/xml", FetchResult(URL, True, 200, "text/xml", b"<a/>")),
        (b"text/html", FetchResult(URL, False, error="two different Content-Type fields")),
    ],
)
def test_content_type_is_a_singleton(second: bytes, expected: FetchResult) -> None:
    """RFC 9110 5.3: a repeat saying the same is harmless; two that differ
    left the last one to decide how the page was taken."""
    raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Type: " + second
    assert outcome(URL, _read(raw + b"\r\nContent-Length: 4\r\n\r\n<a/>")) == expected


def test_no_content_and_an_unasked_part_are_not_pages() -> None:
    """A 204 came back as a fetched page, empty; a 206 answers a Range the
    phone never sent, and its body is a part of something."""
    empty = _read(b"HTTP/1.1 204 No Content\r\nContent-Type: text/xml\r\n\r\n")
    assert outcome(URL, empty) == FetchResult(
        URL, False, 204, "text/xml", error="204 No Content: no page"
    )
    part = _read(
        b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-3/9\r\n"
        b"Content-Type: text/xml\r\nContent-Length: 4\r\n\r\n<a/>"
    )
    assert outcome(URL, part) == FetchResult(
        URL, False, 206, error="206 Partial Content, not asked for"
    )
