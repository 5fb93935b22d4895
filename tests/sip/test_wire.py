"""Parsing from bytes and framing (datagrams, streams); fuzzing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phonecast.sip import Message, ParseError, SipError, StreamFramer, parse_message, validate
from tests.conftest import CORPUS
from tests.sip.samples import NOTIFY


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_any_bytes_give_a_message_or_parse_error(data: bytes) -> None:
    try:
        msg = parse_message(data)
    except ParseError:
        return
    assert isinstance(msg, Message)


def _corpus_messages() -> list[bytes]:
    return [p.read_bytes() for p in sorted((CORPUS / "rfc4475").glob("*.dat"))]


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(_corpus_messages()),
    st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=6),
    st.integers(0, 2000),
)
def test_mutated_corpus_gives_message_or_parse_error(
    data: bytes, flips: list[tuple[int, int]], cut: int
) -> None:
    mutated = bytearray(data[: max(cut, 1)] if cut < len(data) else data)
    for pos, byte in flips:
        if mutated:
            mutated[pos % len(mutated)] = byte
    try:
        msg = parse_message(bytes(mutated))
    except ParseError:
        return
    # Validation reads every known header: it works or raises a SipError.
    with contextlib.suppress(SipError):
        validate(msg)


# ------------------------------------------------------------------- streams


def test_stream_framer_cuts_messages_at_any_split() -> None:
    two = NOTIFY + b"\r\n\r\n" + NOTIFY.replace(b"314159", b"314160")
    for split in range(0, len(two), 7):
        framer = StreamFramer()
        framer.feed(two[:split])
        got = list(framer.messages())
        framer.feed(two[split:])
        got += list(framer.messages())
        assert [m.cseq.seq for m in got] == [314159, 314160]
        assert framer.buffered == 0


def test_stream_framer_requires_content_length() -> None:
    framer = StreamFramer()
    framer.feed(NOTIFY.replace(b"Content-Length: 26\r\n", b""))
    with pytest.raises(ParseError) as info:
        list(framer.messages())
    assert info.value.kind == "content-length"


@pytest.mark.parametrize("value", [b"-1", b"abc", b"26, 27"])
def test_stream_framer_rejects_bad_content_length(value: bytes) -> None:
    framer = StreamFramer()
    framer.feed(NOTIFY.replace(b"Content-Length: 26", b"Content-Length: " + value))
    with pytest.raises(ParseError):
        list(framer.messages())


def test_stream_framer_conflicting_lengths() -> None:
    framer = StreamFramer()
    framer.feed(NOTIFY.replace(b"Content-Length: 26\r\n", b"Content-Length: 26\r\nl: 3\r\n"))
    with pytest.raises(ParseError):
        list(framer.messages())


def test_stream_framer_bounds_memory() -> None:
    framer = StreamFramer(max_size=1000)
    framer.feed(b"NOTIFY sip:a@b SIP/2.0\r\nX: " + b"y" * 2000)
    with pytest.raises(ParseError):
        list(framer.messages())
    framer2 = StreamFramer(max_size=1000)
    framer2.feed(NOTIFY.replace(b"Content-Length: 26", b"Content-Length: 5000"))
    with pytest.raises(ParseError):
        list(framer2.messages())


def test_a_lone_cr_inside_the_header_block_is_not_skipped() -> None:
    """findall would step over a stray CR and read the rest of the line as a
    header of its own; the slow path must see the line instead."""
    data = NOTIFY.replace(b"CSeq: 314159 NOTIFY\r\n", b"CSeq: 314159 NOTIFY\rX-Smuggled: yes\r\n")
    try:
        msg = parse_message(data)
    except ParseError:
        return
    assert "x-smuggled" not in msg.header_map()
