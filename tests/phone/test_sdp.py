"""The emulated phone's SDP: what it reads of an offer (RFC 4566) and how
it answers (RFC 3264)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phonecast.phone.sdp import (
    DIRECTIONS,
    MAX_MEDIA,
    Media,
    Origin,
    SdpError,
    SessionBody,
    make_answer,
    make_offer,
    parse_offer,
)


def _sdp(*lines: str) -> bytes:
    """An SDP body: v=0, an o= and s= line, then ``lines``, CRLF ended."""
    head = ("v=0", "o=caller 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0")
    return ("\r\n".join((*head, *lines)) + "\r\n").encode()


def test_parse_reads_formats_rtpmaps_fmtps_and_the_default_direction() -> None:
    offer = _sdp(
        "m=audio 4000 RTP/AVP 96 0 101",
        "a=rtpmap:96 opus/48000/2",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=rtpmap:102 PCMA/8000",  # not a format of the m= line: not kept
    )
    assert parse_offer(offer) == (
        Media(
            "audio",
            4000,
            "RTP/AVP",
            ("96", "0", "101"),
            "sendrecv",
            (("96", "opus/48000/2"), ("101", "telephone-event/8000")),
            (("101", "0-16"),),
        ),
    )


def test_parse_direction_media_level_wins_over_session_level() -> None:
    offer = _sdp(
        "a=inactive",
        "m=audio 4000 RTP/AVP 0",
        "a=sendonly",
        "m=audio 4002 RTP/AVP 0",
        "m=audio 4004 RTP/AVP 0",
        "a=recvonly",
    )
    assert [m.direction for m in parse_offer(offer)] == ["sendonly", "inactive", "recvonly"]


def test_parse_non_rtp_formats_are_tokens_and_the_port_count_is_read_past() -> None:
    offer = _sdp("m=audio 4000/2 RTP/AVP 008", "m=message 9 TCP/MSRP *", "m=image 0 udptl t38")
    assert [(m.port, m.formats) for m in parse_offer(offer)] == [
        (4000, ("8",)),
        (9, ("*",)),
        (0, ("t38",)),
    ]


def test_seventeen_media_lines_are_refused() -> None:
    streams = [f"m=audio {4000 + 2 * i} RTP/AVP 0" for i in range(MAX_MEDIA + 1)]
    assert len(parse_offer(_sdp(*streams[:MAX_MEDIA]))) == MAX_MEDIA
    with pytest.raises(SdpError, match="media lines"):
        parse_offer(_sdp(*streams))


def test_too_many_lines_and_too_long_a_line_are_refused() -> None:
    with pytest.raises(SdpError, match="lines"):
        parse_offer(_sdp("m=audio 4000 RTP/AVP 0", *["a=x"] * 600))
    with pytest.raises(SdpError, match="bad SDP line"):
        parse_offer(_sdp("m=audio 4000 RTP/AVP 0", "a=" + "x" * 2000))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("m=audio 4000 RTP/AVP 128", "bad payload type in 'm=audio 4000 RTP/AVP 128'"),
        ("m=audio 4000 RTP/AVP PCMU", "bad payload type in"),
        ("m=audio 4000 RTP/SAVPF -1", "bad payload type in"),
        ("m=audio 65536 RTP/AVP 0", "bad media line 'm=audio 65536"),
        ("m=audio 4000 RTP/AVP", "bad media line"),
        ("m=audio \uff14\uff10\uff10\uff10 RTP/AVP 0", "bad media line"),  # full-width digits
        ("m=audio 4000 RTP/AVP 0\r\nnot sdp", "bad SDP line 'not sdp'"),
        ("m=audio 4000 RTP/AVP 0\r\nM=audio 4000 RTP/AVP 0", "bad SDP line"),
        ("m=audio 4000 RTP/AVP 0\r\na=x\x00y", "bad SDP line"),
        ("a=sendrecv", "no media line"),
    ],
)
def test_bad_lines_are_refused_naming_the_line(line: str, message: str) -> None:
    with pytest.raises(SdpError, match=message):
        parse_offer(_sdp(line))


def test_bad_line_is_named_truncated() -> None:
    with pytest.raises(SdpError) as refused:
        parse_offer(_sdp("m=audio 4000 RTP/AVP " + "0 " * 100 + "999"))
    assert len(str(refused.value)) < 80


@pytest.mark.parametrize(
    "body", [b"", b"\r\n", b"v=1\r\nm=audio 4000 RTP/AVP 0\r\n", b"\xff\xfe", b"v=0\r\n"]
)
def test_not_sdp_is_refused(body: bytes) -> None:
    with pytest.raises(SdpError):
        parse_offer(body)


HOLD = SessionBody(("s=-", "c=IN IP4 192.0.2.9", "t=0 0", "m=audio 5004 RTP/AVP 0", "a=sendonly"))
RESUME = SessionBody(("s=-", "c=IN IP4 192.0.2.9", "t=0 0", "m=audio 5004 RTP/AVP 0"))


def _origin_line(sdp: bytes) -> str:
    lines = sdp.decode().split("\r\n")
    assert lines[0] == "v=0" and sdp.endswith(b"\r\n")
    return lines[1]


def test_origin_renders_v_o_then_the_body_with_crlf_line_ends() -> None:
    origin, sdp = Origin(session_id=7, version=7).render(RESUME, address="192.0.2.9")
    assert sdp == (
        b"v=0\r\no=phonecast 7 7 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\n"
        b"t=0 0\r\nm=audio 5004 RTP/AVP 0\r\n"
    )
    assert origin == Origin(7, 7, RESUME.lines, "192.0.2.9")
    _, sdp6 = Origin(7, 7).render(RESUME, address="2001:db8::9")
    assert _origin_line(sdp6) == "o=phonecast 7 7 IN IP6 2001:db8::9"


def test_origin_version_goes_up_by_one_on_a_change_and_stays_on_a_repeat() -> None:
    origin = Origin(42, 42)
    versions = []
    for body in (RESUME, RESUME, HOLD, HOLD, RESUME):
        origin, sdp = origin.render(body, address="192.0.2.9")
        versions.append(_origin_line(sdp))
    assert versions == [
        "o=phonecast 42 42 IN IP4 192.0.2.9",
        "o=phonecast 42 42 IN IP4 192.0.2.9",
        "o=phonecast 42 43 IN IP4 192.0.2.9",
        "o=phonecast 42 43 IN IP4 192.0.2.9",
        "o=phonecast 42 44 IN IP4 192.0.2.9",
    ]


def test_origin_address_stays_the_first_one_while_the_media_moves() -> None:
    origin, _ = Origin(1, 1).render(RESUME, address="192.0.2.9")
    moved = SessionBody(("s=-", "c=IN IP4 198.51.100.3", "t=0 0", "m=audio 5004 RTP/AVP 0"))
    _, sdp = origin.render(moved, address="198.51.100.3")
    assert _origin_line(sdp) == "o=phonecast 1 2 IN IP4 192.0.2.9"
    assert b"c=IN IP4 198.51.100.3\r\n" in sdp


def test_origin_and_session_body_refuse_what_cannot_be_sent() -> None:
    with pytest.raises(ValueError):
        Origin(-1, 0)
    for line in ("o=x 1 1 IN IP4 a", "v=0", "a=x\r\nm=y", "nonsense"):
        with pytest.raises(ValueError):
            SessionBody(("s=-", line))


def _answer(*lines: str, port: int = 5004) -> tuple[str, ...]:
    """The lines of the phone's answer to an offer of ``lines``."""
    return make_answer(_sdp(*lines), address="192.0.2.9", port=port).lines


def _media_of(answer: tuple[str, ...]) -> tuple[str, ...]:
    """``answer`` from its first m= line on."""
    return answer[next(i for i, ln in enumerate(answer) if ln.startswith("m=")) :]


def test_answer_has_session_lines_then_one_stream_with_rtpmap_and_direction() -> None:
    assert _answer("m=audio 4000 RTP/AVP 0 8") == (
        "s=-",
        "c=IN IP4 192.0.2.9",
        "t=0 0",
        "m=audio 5004 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
        "a=sendrecv",
    )


def test_opus_only_offer_is_refused_naming_why() -> None:
    with pytest.raises(SdpError, match="no common audio codec"):
        _answer("m=audio 4000 RTP/AVP 96", "a=rtpmap:96 opus/48000/2")


def test_offer_of_opus_then_pcmu_is_answered_pcmu_with_its_rtpmap() -> None:
    answer = _answer("m=audio 4000 RTP/AVP 96 0", "a=rtpmap:96 opus/48000/2")
    assert _media_of(answer) == ("m=audio 5004 RTP/AVP 0", "a=rtpmap:0 PCMU/8000", "a=sendrecv")


def test_dynamic_pcma_is_kept_with_its_rtpmap() -> None:
    answer = _answer("m=audio 4000 RTP/AVP 97 0", "a=rtpmap:97 pcma/8000/1")
    assert _media_of(answer)[:2] == ("m=audio 5004 RTP/AVP 97", "a=rtpmap:97 PCMA/8000")


def test_a_codec_the_phone_has_at_another_rate_or_in_stereo_is_not_taken() -> None:
    answer = _answer(
        "m=audio 4000 RTP/AVP 96 97 98 9",
        "a=rtpmap:96 PCMU/16000",
        "a=rtpmap:97 PCMA/8000/2",
        "a=rtpmap:98 G723/8000",  # no rtpmap for 9: G.722 by its static number
    )
    assert _media_of(answer)[:2] == ("m=audio 5004 RTP/AVP 9", "a=rtpmap:9 G722/8000")


def test_a_dynamic_payload_type_without_rtpmap_is_not_guessed() -> None:
    answer = _answer("m=audio 4000 RTP/AVP 100 18")
    assert _media_of(answer)[:2] == ("m=audio 5004 RTP/AVP 18", "a=rtpmap:18 G729/8000")


def test_telephone_event_is_answered_with_its_payload_type_and_the_events_shared() -> None:
    """RFC 4733 2.4.1: the answer lists the events both sides have (the
    phone's are 0-15); none shared, and telephone-event is left out."""
    answer = _answer(
        "m=audio 4000 RTP/AVP 101 8 0",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16,32",
        "a=fmtp:8 ignored",
    )
    assert _media_of(answer) == (
        "m=audio 5004 RTP/AVP 8 101",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=sendrecv",
    )
    some = _answer(
        "m=audio 4000 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 3,5-7,10"
    )
    assert "a=fmtp:101 3,5-7,10" in _media_of(some)
    for unshared in ("32-40", "nonsense", "9-3"):
        none = _answer(
            "m=audio 4000 RTP/AVP 0 101",
            "a=rtpmap:101 telephone-event/8000",
            f"a=fmtp:101 {unshared}",
        )
        assert _media_of(none) == ("m=audio 5004 RTP/AVP 0", "a=rtpmap:0 PCMU/8000", "a=sendrecv")


def test_g729_annex_b_off_is_echoed() -> None:
    """RFC 4856 2.1.9: annexb absent means yes, so the answer says no when
    the offer did."""
    answer = _answer("m=audio 4000 RTP/AVP 18", "a=fmtp:18 annexb=no")
    assert "a=fmtp:18 annexb=no" in _media_of(answer)


def test_secure_and_non_rtp_profiles_are_rejected_stream_by_stream() -> None:
    """The phone has no SRTP keys (RFC 4568) nor DTLS fingerprint (RFC 5763):
    such a stream is rejected, port 0, and an offer of only those is 488."""
    for proto in ("RTP/SAVP", "UDP/TLS/RTP/SAVPF", "udp"):
        with pytest.raises(SdpError):
            _answer(f"m=audio 4000 {proto} 0", "a=rtpmap:0 PCMU/8000")
    answer = _answer("m=audio 4000 RTP/SAVP 0", "m=audio 4002 RTP/AVP 0")
    assert _media_of(answer)[0] == "m=audio 0 RTP/SAVP 0"
    assert _media_of(answer)[1] == "m=audio 5004 RTP/AVP 0"


def test_an_attribute_the_phone_cannot_read_is_ignored() -> None:
    """RFC 4566 5.13: a malformed rtpmap or fmtp (of a format the phone may
    not even take) does not make the offer unanswerable."""
    answer = _answer(
        "m=audio 4000 RTP/AVP 96 0", "a=rtpmap:96 foo", "a=fmtp:97", "a=rtpmap:200 x/8000"
    )
    assert _media_of(answer)[0] == "m=audio 5004 RTP/AVP 0"


def test_the_phones_re_offer_keeps_the_streams_where_they_were() -> None:
    """RFC 3264 8: a later offer has at least the previous SDP's m= lines,
    by position: audio stays in its slot, the rest are rejected."""
    previous = make_answer(
        _sdp("m=video 4000 RTP/AVP 31", "m=audio 4002 RTP/AVP 0"), address="192.0.2.9", port=5004
    )
    offer = make_offer(address="192.0.2.9", port=5004, previous=previous)
    slots = [ln for ln in offer.lines if ln.startswith("m=")]
    assert slots == ["m=video 0 RTP/AVP 31", "m=audio 5004 RTP/AVP 0 8 18 101"]
    none_audio = SessionBody(("s=-", "t=0 0", "m=video 0 RTP/AVP 31"))
    appended = [
        ln
        for ln in make_offer(address="192.0.2.9", port=5004, previous=none_audio).lines
        if ln.startswith("m=")
    ]
    assert appended == ["m=video 0 RTP/AVP 31", "m=audio 5004 RTP/AVP 0 8 18 101"]


def test_telephone_event_alone_is_no_common_codec() -> None:
    with pytest.raises(SdpError, match="no common audio codec"):
        _answer("m=audio 4000 RTP/AVP 101", "a=rtpmap:101 telephone-event/8000")


@pytest.mark.parametrize(
    ("offered", "answered"),
    [
        ("a=sendonly", "a=recvonly"),
        ("a=recvonly", "a=sendonly"),
        ("a=inactive", "a=inactive"),
        ("a=sendrecv", "a=sendrecv"),
    ],
)
def test_direction_is_answered_by_its_inverse(offered: str, answered: str) -> None:
    assert _answer("m=audio 4000 RTP/AVP 0", offered)[-1] == answered


def test_hold_with_sendonly_is_answered_recvonly() -> None:
    assert "a=recvonly" in _answer("m=audio 4000 RTP/AVP 0", "a=sendonly")


def test_session_level_inactive_is_answered_inactive() -> None:
    answer = _answer("a=inactive", "m=audio 4000 RTP/AVP 0", "m=audio 4002 RTP/AVP 8")
    assert [ln for ln in answer if ln.startswith("a=") and "rtpmap" not in ln] == [
        "a=inactive",
        "a=inactive",
    ]


def test_every_offered_stream_is_answered_in_order_rejected_ones_with_port_0() -> None:
    answer = _answer(
        "m=video 4000 RTP/AVP 31 34",
        "a=sendonly",
        "m=audio 4002 RTP/AVP 0",
        "m=audio 0 RTP/AVP 8",
        "m=audio 4006 RTP/AVP 96",
        "a=rtpmap:96 opus/48000/2",
        "m=image 4008 udptl t38",
        "m=audio 4010 RTP/AVP 8",
    )
    assert _media_of(answer) == (
        "m=video 0 RTP/AVP 31 34",
        "m=audio 5004 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
        "a=sendrecv",
        "m=audio 0 RTP/AVP 8",
        "m=audio 0 RTP/AVP 96",
        "m=image 0 udptl t38",
        "m=audio 5006 RTP/AVP 8",
        "a=rtpmap:8 PCMA/8000",
        "a=sendrecv",
    )


def test_no_audio_or_only_disabled_audio_is_refused_naming_why() -> None:
    with pytest.raises(SdpError, match="no audio stream"):
        _answer("m=video 4000 RTP/AVP 31")
    with pytest.raises(SdpError, match="disabled"):
        _answer("m=audio 0 RTP/AVP 0", "m=video 4000 RTP/AVP 31")


def test_answer_keeps_the_offers_timing_and_speaks_ipv6() -> None:
    offer = b"v=0\r\no=c 1 1 IN IP6 ::1\r\ns=-\r\nt=3034423619 3042462419\r\n"
    offer += b"m=audio 4000 RTP/AVP 0\r\n"
    answer = make_answer(offer, address="2001:db8::9", port=5004).lines
    assert answer[1:3] == ("c=IN IP6 2001:db8::9", "t=3034423619 3042462419")


def test_answer_repeats_every_timing_of_the_offer_and_leaves_out_unreadable_ones() -> None:
    offer = b"v=0\r\no=c 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
    offer += b"t=3034423619 3042462419\r\nr=7d 1h 0 25h\r\nt=3034423620 0\r\nr=1x 2 3\r\n"
    offer += b"t=soon never\r\nr=1d 1h 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    answer = make_answer(offer, address="192.0.2.9", port=5004).lines
    assert answer[2:5] == ("t=3034423619 3042462419", "r=7d 1h 0 25h", "t=3034423620 0")
    assert answer[5].startswith("m=audio 5004 ")


def test_answer_to_an_offer_without_a_readable_timing_is_unbounded() -> None:
    offer = b"v=0\r\no=c 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=later 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    assert make_answer(offer, address="192.0.2.9", port=5004).lines[2] == "t=0 0"


def test_offer_is_what_an_spa_offers() -> None:
    assert make_offer(address="192.0.2.9", port=5004).lines == (
        "s=-",
        "c=IN IP4 192.0.2.9",
        "t=0 0",
        "m=audio 5004 RTP/AVP 0 8 18 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:18 G729/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=sendrecv",
    )


def test_the_phones_own_offer_is_one_it_answers_pcmu_with_events() -> None:
    _, offer = Origin(3, 3).render(make_offer(address="192.0.2.9", port=5004), address="192.0.2.9")
    assert _media_of(make_answer(offer, address="192.0.2.1", port=4000).lines) == (
        "m=audio 4000 RTP/AVP 0 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=sendrecv",
    )


def test_a_media_port_out_of_range_is_a_caller_error() -> None:
    with pytest.raises(ValueError):
        make_offer(address="192.0.2.9", port=0)
    with pytest.raises(ValueError):
        make_answer(_sdp("m=audio 4000 RTP/AVP 0"), address="192.0.2.9", port=65536)


# Offers generated for the invariants.  Each offered format is drawn with
# what the phone should make of it: the payload type, its rtpmap (or none),
# and "codec", "events" or None (not the phone's).
Format = tuple[str, str | None, str | None]
STATIC: list[Format] = [("0", None, "codec"), ("8", None, "codec"), ("9", None, "codec")]
STATIC += [("18", None, "codec"), ("3", None, None), ("4", None, None), ("31", None, None)]
DYNAMIC: list[tuple[str | None, str | None]] = [
    ("opus/48000/2", None),
    ("PCMA/8000", "codec"),
    ("pcmu/8000/1", "codec"),
    ("g722/8000", "codec"),
    ("G729/8000", "codec"),
    ("PCMU/8000/2", None),
    ("PCMA/16000", None),
    ("speex/16000", None),
    ("telephone-event/8000", "events"),
    ("TELEPHONE-EVENT/8000", "events"),
    ("telephone-event/48000", None),
    (None, None),  # a dynamic payload type without rtpmap: unknown
]


def _dynamic(pt: int, encoding: tuple[str | None, str | None]) -> Format:
    return (str(pt), *encoding)


_formats = st.lists(
    st.sampled_from(STATIC) | st.builds(_dynamic, st.integers(96, 127), st.sampled_from(DYNAMIC)),
    min_size=1,
    max_size=6,
    unique_by=lambda f: f[0],
)
_directions = st.none() | st.sampled_from(DIRECTIONS)


@dataclass(frozen=True)
class Stream:
    kind: str
    port: int
    proto: str
    formats: list[Format]
    direction: str | None

    def lines(self) -> list[str]:
        pts = " ".join(pt for pt, _, _ in self.formats)
        out = [f"m={self.kind} {self.port} {self.proto} {pts}"]
        out += [f"a=rtpmap:{pt} {enc}" for pt, enc, _ in self.formats if enc is not None]
        out += [f"a=fmtp:{pt} 0-15" for pt, _, use in self.formats if use == "events"]
        return out + ([f"a={self.direction}"] if self.direction else [])

    def expected(self) -> list[str] | None:
        """The formats the phone should answer with, None to reject."""
        if self.kind != "audio" or self.port == 0 or self.proto != "RTP/AVP":
            return None  # secure profiles need keys the phone has none of
        codecs = [pt for pt, _, use in self.formats if use == "codec"]
        events = [pt for pt, _, use in self.formats if use == "events"]
        return [codecs[0], *events[:1]] if codecs else None


_streams = st.builds(
    Stream,
    st.sampled_from(["audio", "audio", "audio", "video", "application"]),
    st.sampled_from([0, 4000, 30000, 65534]),
    st.sampled_from(["RTP/AVP", "RTP/SAVP"]),
    _formats,
    _directions,
)
INVERSE = {"sendonly": "recvonly", "recvonly": "sendonly"}


@given(st.lists(_streams, min_size=1, max_size=5), _directions)
def test_any_offer_is_answered_stream_for_stream_in_order(
    streams: list[Stream], session_direction: str | None
) -> None:
    lines = [f"a={session_direction}"] if session_direction else []
    offer = _sdp(*lines, *(ln for stream in streams for ln in stream.lines()))
    if all(stream.expected() is None for stream in streams):
        with pytest.raises(SdpError):
            make_answer(offer, address="192.0.2.9", port=5004)
        return
    body = make_answer(offer, address="192.0.2.9", port=5004)
    answer = parse_offer(Origin(1, 1).render(body, address="192.0.2.9")[1])
    offered = parse_offer(offer)
    assert [m.kind for m in answer] == [s.kind for s in streams]
    accepted = 0
    for stream, m, o in zip(streams, answer, offered, strict=True):
        expected = stream.expected()
        assert set(m.formats) <= {pt for pt, _, _ in stream.formats}
        if expected is None:
            assert (m.port, m.formats, m.rtpmaps) == (0, o.formats, ())
            continue
        assert (m.port, list(m.formats), m.proto) == (5004 + 2 * accepted, expected, o.proto)
        assert [pt for pt, _ in m.rtpmaps] == expected
        offered_direction = stream.direction or session_direction or "sendrecv"
        assert m.direction == INVERSE.get(offered_direction, offered_direction)
        accepted += 1


_bodies = st.sampled_from([HOLD, RESUME, SessionBody(("s=-", "t=0 0", "m=audio 9 RTP/AVP 8"))])


@given(st.integers(0, 2**62), st.lists(_bodies, min_size=1, max_size=12))
def test_origin_keeps_its_id_and_counts_one_version_per_change(
    session_id: int, bodies: list[SessionBody]
) -> None:
    origin = Origin(session_id, session_id)
    expected_version = session_id
    previous: SessionBody | None = None
    for body in bodies:
        origin, sdp = origin.render(body, address="192.0.2.9")
        if previous is not None and body != previous:
            expected_version += 1
        username, sess_id, version, *rest = _origin_line(sdp)[2:].split()
        assert (username, int(sess_id), int(version)) == ("phonecast", session_id, expected_version)
        assert rest == ["IN", "IP4", "192.0.2.9"]
        assert sdp.decode().split("\r\n")[2:-1] == list(body.lines)
        previous = body
