"""Parsing from bytes and framing (datagrams, streams); fuzzing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from phonecast.sip import Message, ParseError, SipError, StreamFramer, parse_message, validate
from phonecast.sip.message import index_fields
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


@given(
    runs=st.lists(st.integers(0, 5), min_size=1, max_size=5),
    cuts=st.lists(st.integers(0, 5000), max_size=8),
)
@example(runs=[2], cuts=[1, 3])  # a ping split inside a CRLF and between them
@example(runs=[1, 1, 1], cuts=[])  # padding CRLFs around messages: no ping
def test_stream_framer_counts_crlf_pings_however_the_stream_is_cut(
    runs: list[int], cuts: list[int]
) -> None:
    """RFC 5626 4.4.1: each double CRLF between messages is a ping owed one
    pong; CRLFs do not pair up across a message, and the count does not
    depend on where the reads happen to end."""
    stream = b""
    for i, run in enumerate(runs):
        if i:
            stream += NOTIFY
        stream += b"\r\n" * run
    framer = StreamFramer()
    pings = messages = 0
    last = 0
    for cut in [*sorted(c % (len(stream) + 1) for c in cuts), len(stream)]:
        framer.feed(stream[last:cut])
        last = max(last, cut)
        messages += len(list(framer.messages()))
        pings += framer.take_pings()
    assert messages == len(runs) - 1
    assert pings == sum(run // 2 for run in runs)
    assert framer.take_pings() == 0


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


_NAMES = st.sampled_from(
    ["Via", "v", "From", "f", "To", "Call-ID", "CSeq", "Content-Length", "l", "X-A.b_c~1", "e"]
)
_VALUE = st.text(alphabet=st.sampled_from([*"abcXYZ019;=:,<>@\"' \t", "\u00e9"]), max_size=30)


@st.composite
def _header_blocks(draw: st.DrawFn) -> str:
    """Header sections as peers write them, with the odd fault: folded
    lines, trailing white space, a line without a name, a stray CR or LF."""
    lines = ["NOTIFY sip:a@b SIP/2.0"]
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["field", "field", "field", "fold", "junk", "cr", "lf"]))
        if kind == "field" or not lines[1:]:
            sep = draw(st.sampled_from([":", ": ", " : ", "\t:"]))
            lines.append(f"{draw(_NAMES)}{sep}{draw(_VALUE)}")
        elif kind == "fold":
            lines.append(draw(st.sampled_from([" ", "\t", "  "])) + draw(_VALUE))
        elif kind == "junk":
            lines.append(draw(st.sampled_from(["no colon here", ": no name", "Bad Name: x", ""])))
        else:
            lines[-1] += ("\r" if kind == "cr" else "\n") + draw(_VALUE)
    return "\r\n".join(lines)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(_header_blocks())
@example("NOTIFY sip:a@b SIP/2.0\r\nVia:\r\n \r\n\r\n ")  # a fold after an empty line
def test_fast_split_agrees_with_the_line_by_line_reading(head: str) -> None:
    """Whenever the one-pass split takes a header section, it reads exactly
    what the line-by-line parser reads; anything else it leaves to that
    parser (which then parses it or names the faulty line)."""
    from phonecast.sip.wire import _fast_split, _parse_lines

    fast = _fast_split(head)
    try:
        slow = _parse_lines(head, "\r\n")
    except ParseError:
        assert fast is None  # never accepts what the careful reading refuses
        return
    if fast is not None:
        assert (fast[0], fast[1]) == (slow[0], slow[1])
        assert fast[2] == index_fields(fast[1])


@pytest.mark.parametrize(
    "head",
    [
        "NOTIFY sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nv:x\r\nX-A.b_c~1:\t y ",
        "SIP/2.0 200 OK\r\nCall-ID: a@b\r\nSubject:\r\ni: c",
        "NOTIFY sip:a@b SIP/2.0\r\nSubject: one\r\n  two\r\nCSeq: 1 NOTIFY",
    ],
)
def test_fast_split_takes_the_usual_header_sections(head: str) -> None:
    """The fast path must not quietly hand everything to the slow one."""
    from phonecast.sip.wire import _fast_split, _parse_lines

    fast = _fast_split(head)
    assert fast is not None
    assert (fast[0], fast[1]) == _parse_lines(head, "\r\n")[:2]


@pytest.mark.parametrize(
    "head",
    ["A sip:a@b SIP/2.0\r\nVia : x", "A sip:a@b SIP/2.0\r\nBad Name: x", "A s SIP/2.0\r\n: x"],
)
def test_fast_split_leaves_the_unusual_to_the_careful_reader(head: str) -> None:
    from phonecast.sip.wire import _fast_split

    assert _fast_split(head) is None


def test_recurring_lines_are_read_once_and_the_tables_stay_bounded() -> None:
    from phonecast.sip import wire
    from phonecast.sip._memo import TABLE_SIZE

    def notify(n: int, agent: str) -> bytes:
        return (
            f"NOTIFY sip:{n}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK{n}\r\n"
            f"To: <sip:{n}@127.0.0.1>\r\nTo: <sip:x@y>;tag={n}\r\n"
            f"User-Agent: {agent}\r\nContent-Length: 0\r\n\r\n"
        ).encode()

    first, second = parse_message(notify(1, "ua")), parse_message(notify(2, "ua"))
    assert first.headers[3] is second.headers[3]  # the same User-Agent line, one object
    assert "To: <sip:x@y>;tag=2" not in wire._LINES  # a dialog's tag does not recur
    for n in range(wire._TABLE_SIZE + 10):
        parse_message(notify(n, f"ua{n}"))
    assert 0 < len(wire._LINES) <= wire._TABLE_SIZE
    assert 0 < len(wire._REQUEST_LINES) <= TABLE_SIZE
    parse_message(notify(1, "u" * 200))
    assert all(len(line) <= wire._MAX_LINE for line in wire._LINES)
