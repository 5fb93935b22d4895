"""Just enough SDP (RFC 4566 / RFC 3264) for an emulated phone to answer and offer.

The emulator carries no media, but a caller's offer/answer must complete
and the phone's SDP should say what a Cisco SPA says: an answer per offered
``m=`` line, in order, port 0 for a stream it does not take (RFC 3264 6);
the first offered codec it has plus telephone-event (RFC 4733), each with
its ``a=rtpmap`` so a dynamic payload type stays identifiable; the mirror
of the offered direction, recvonly to a hold (6.1); an ``o=`` version that
goes up by one whenever a session's SDP changes (8, :class:`Origin`).  An
offer is hostile input: :func:`parse_offer` bounds what it reads and
refuses with :class:`SdpError` (answered 488) a line it cannot read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final

#: Bounds on what :func:`parse_offer` reads.  An SPA offers one stream in
#: about a dozen lines; a WebRTC-ish offer with many candidates still fits.
MAX_LINES: Final = 512
MAX_LINE_LENGTH: Final = 1024
MAX_MEDIA: Final = 16

#: The direction attributes (RFC 3264 6.1); an offer without one means sendrecv.
DIRECTIONS: Final = ("sendrecv", "sendonly", "recvonly", "inactive")

# RFC 4566 5: ``<type>=<value>``, one lower-case letter, no control characters
# but tab in the value (CR and LF end lines; NUL is never allowed).
_LINE: Final = re.compile(r"[a-z]=[^\x00-\x08\x0a-\x1f\x7f]*")
_PORT: Final = re.compile(r"(\d{1,5})(?:/\d{1,5})?", re.ASCII)  # port[/count], 5.14
_PAYLOAD_TYPE: Final = re.compile(r"\d{1,3}", re.ASCII)
_RTPMAP: Final = re.compile(r"rtpmap:(\d{1,3}) ([^/\s]+)/(\d{1,6})(?:/(\d{1,2}))?", re.ASCII)
_FMTP: Final = re.compile(r"fmtp:(\S+) (\S.*)")
_TIMING: Final = re.compile(r"\d{1,20} \d{1,20}", re.ASCII)
#: An ``r=`` value: interval, active duration, offsets, each a number with
#: an optional unit (RFC 4566 5.10); at most 32 offsets.
_REPEAT: Final = re.compile(r"\d{1,20}[dhms]?(?: \d{1,20}[dhms]?){2,33}", re.ASCII)

#: The RTP profiles the phone answers (RFC 3551, RFC 4585): plain RTP.  A
#: secure profile (RTP/SAVP, UDP/TLS/RTP/SAVPF) needs keys the phone has
#: none of (RFC 4568 crypto, RFC 5763 fingerprint): such a stream is rejected.
_PROFILES: Final = frozenset({"RTP/AVP", "RTP/AVPF"})
#: The telephone events the phone sends and receives (RFC 4733 3.2: 0-9,
#: *, #, A-D, flash: 0-16 is the DTMF table; the SPA says 0-15).
_PHONE_EVENTS: Final = frozenset(range(16))
_EVENT_RANGE: Final = re.compile(r"(\d{1,3})(?:-(\d{1,3}))?", re.ASCII)
_ANNEXB: Final = re.compile(r"annexb=(yes|no)", re.ASCII | re.IGNORECASE)

#: How an answer turns an offered direction (RFC 3264 6.1): sending and
#: receiving swap; sendrecv and inactive stay.
_ANSWER_DIRECTION: Final = {"sendonly": "recvonly", "recvonly": "sendonly"}

#: The phone's audio codecs by static payload type (RFC 3551 6), and every
#: encoding it has, by (lower-case name, clock rate), as its rtpmap writes it.
_STATIC: Final = {"0": "PCMU/8000", "8": "PCMA/8000", "9": "G722/8000", "18": "G729/8000"}
_EVENTS: Final = "telephone-event/8000"
_ENCODINGS: Final = {
    (name.lower(), int(rate)): f"{name}/{rate}"
    for name, rate in (e.split("/") for e in (*_STATIC.values(), _EVENTS))
}


class SdpError(ValueError):
    """The offer is not SDP the phone can answer (the phone answers 488)."""


@dataclass(frozen=True, slots=True)
class Media:
    """One offered stream, ``m=<kind> <port> <proto> <formats...>``: its own
    direction attribute, else the session's, else sendrecv (RFC 3264 5.1);
    ``(format, "<encoding>/<rate>[/<channels>]")`` rtpmaps and ``(format,
    parameters)`` fmtps (RFC 4566 6), of its formats only, first one wins."""

    kind: str
    port: int
    proto: str
    formats: tuple[str, ...]
    direction: str = "sendrecv"
    rtpmaps: tuple[tuple[str, str], ...] = ()
    fmtps: tuple[tuple[str, str], ...] = ()

    def rtpmap(self, fmt: str) -> str | None:
        """The ``a=rtpmap`` encoding of ``fmt``, or None if it has none."""
        return next((enc for pt, enc in self.rtpmaps if pt == fmt), None)

    def fmtp(self, fmt: str) -> str | None:
        """The ``a=fmtp`` parameters of ``fmt``, or None if it has none."""
        return next((params for f, params in self.fmtps if f == fmt), None)


def _bad(what: str, line: str) -> SdpError:
    return SdpError(f"{what} {line[:40]!r}")


def _is_rtp(proto: str) -> bool:
    """RTP/AVP, RTP/SAVP, UDP/TLS/RTP/SAVPF...: formats are payload types."""
    return "RTP" in proto.upper().split("/")


def _lines(body: bytes) -> list[str]:
    """The non-empty lines of ``body``, each checked to be ``<type>=<value>``."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SdpError("SDP is not UTF-8") from None
    raw = text.split("\n")
    if len(raw) > MAX_LINES:
        raise SdpError(f"SDP has more than {MAX_LINES} lines")
    lines = [ln.strip() for ln in raw if ln.strip()]
    if not lines or lines[0] != "v=0":
        raise SdpError("SDP must start with v=0")
    for line in lines:
        if len(line) > MAX_LINE_LENGTH or not _LINE.fullmatch(line):
            raise _bad("bad SDP line", line)
    return lines


def _media_line(line: str) -> Media:
    parts = line[2:].split()
    port = _PORT.fullmatch(parts[1]) if len(parts) >= 4 else None
    if port is None or int(port[1]) > 65535:
        raise _bad("bad media line", line)
    kind, proto, formats = parts[0], parts[2], parts[3:]
    if _is_rtp(proto):
        if not all(_PAYLOAD_TYPE.fullmatch(f) and int(f) <= 127 for f in formats):
            raise _bad("bad payload type in", line)
        formats = [str(int(f)) for f in formats]
    return Media(kind, int(port[1]), proto, tuple(formats))


def _with_attributes(media: Media, attributes: list[str], session_direction: str) -> Media:
    """``media`` with what its ``a=`` lines (values without ``a=``) say."""
    direction: str | None = None
    rtpmaps: dict[str, str] = {}
    fmtps: dict[str, str] = {}
    for value in attributes:
        if value in DIRECTIONS:
            direction = direction or value
        elif value.startswith("rtpmap:"):
            rtpmap = _RTPMAP.fullmatch(value)
            if rtpmap is None or int(rtpmap[1]) > 127:
                continue  # unreadable: its format is one the phone cannot take
            encoding = "/".join(g for g in rtpmap.groups()[1:] if g is not None)
            rtpmaps.setdefault(str(int(rtpmap[1])), encoding)
        elif value.startswith("fmtp:"):
            fmtp = _FMTP.fullmatch(value)
            if fmtp is None:
                continue  # an attribute not understood is ignored (RFC 4566 5.13)
            fmt = fmtp[1]
            fmtps.setdefault(str(int(fmt)) if _PAYLOAD_TYPE.fullmatch(fmt) else fmt, fmtp[2])
    formats = dict.fromkeys(media.formats)
    return replace(
        media,
        direction=direction or session_direction,
        rtpmaps=tuple((f, rtpmaps[f]) for f in formats if f in rtpmaps),
        fmtps=tuple((f, fmtps[f]) for f in formats if f in fmtps),
    )


def parse_offer(body: bytes) -> tuple[Media, ...]:
    """The streams of an SDP offer, in order (raises :class:`SdpError`).

    At most :data:`MAX_MEDIA` ``m=`` lines and :data:`MAX_LINES` lines of at
    most :data:`MAX_LINE_LENGTH` characters are read; for RTP protos every
    format must be a payload type, 0-127 (RFC 3551 3, RFC 4566 5.14).
    """
    return _parse(body)[0]


def _parse(body: bytes) -> tuple[tuple[Media, ...], tuple[str, ...]]:
    """The streams of an offer and its session's timing lines, in order.

    A session may be active at several times, one ``t=`` line each, with
    ``r=`` repeat lines after it (RFC 4566 5.9, 5.10); the answer repeats
    them all, since its timing must be the offer's (RFC 3264 6).
    Unreadable ones are left out (an ``r=`` with its ``t=``); none readable
    is ``t=0 0``, an unbounded session.
    """
    lines = _lines(body)
    session: list[str] = []
    timings: list[str] = []
    timed = False
    sections: list[tuple[Media, list[str]]] = []
    for line in lines[1:]:
        if line.startswith("t=") and not sections:
            timed = _TIMING.fullmatch(line[2:]) is not None
            if timed:
                timings.append(line)
        elif line.startswith("r=") and not sections:
            if timed and _REPEAT.fullmatch(line[2:]):
                timings.append(line)
        elif line.startswith("m="):
            if len(sections) == MAX_MEDIA:
                raise SdpError(f"SDP has more than {MAX_MEDIA} media lines")
            sections.append((_media_line(line), []))
        elif line.startswith("a="):
            (sections[-1][1] if sections else session).append(line[2:])
    if not sections:
        raise SdpError("SDP offer has no media line")
    session_direction = next((a for a in session if a in DIRECTIONS), "sendrecv")
    media = tuple(_with_attributes(m, attrs, session_direction) for m, attrs in sections)
    return media, tuple(timings) or ("t=0 0",)


def _family(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


@dataclass(frozen=True, slots=True)
class SessionBody:
    """The lines of an SDP after ``o=`` (``s=``, ``c=``, ``t=``, ``m=``, ``a=``...),
    apart so that :class:`Origin` can tell whether a session's SDP changed."""

    lines: tuple[str, ...]

    def __post_init__(self) -> None:
        for line in self.lines:
            if not _LINE.fullmatch(line) or line[0] in "vo":
                raise ValueError(f"not a session body line: {line[:40]!r}")


@dataclass(frozen=True, slots=True)
class Origin:
    """The ``o=`` line of one session (one dialog), as the phone last sent it.

    RFC 3264 8: every SDP sent in a session keeps the origin's username,
    session id and address, and its version goes up by exactly one when the
    SDP differs from the one sent before (RFC 4566 5.2), not otherwise.
    ``Origin(n, n)`` starts a session.  ``last``: the body lines last sent
    (None before the first); ``address``: fixed by the first render.
    """

    session_id: int
    version: int
    last: tuple[str, ...] | None = None
    address: str | None = None

    def __post_init__(self) -> None:
        if self.session_id < 0 or self.version < 0:
            raise ValueError("SDP session id and version are non-negative")

    def render(self, body: SessionBody, *, address: str) -> tuple[Origin, bytes]:
        """The Origin to keep and the SDP to send: ``v=0``, ``o=``, ``body``, CRLFs.

        ``address`` counts on the first render only: the ``o=`` line names
        where the session began (the media's address is the body's ``c=``).
        """
        if self.last is None or self.address is None:
            version, origin_address = self.version, address
        else:
            same = body.lines == self.last
            version, origin_address = self.version if same else self.version + 1, self.address
        family = _family(origin_address)
        o_line = f"o=phonecast {self.session_id} {version} IN {family} {origin_address}"
        text = "\r\n".join(("v=0", o_line, *body.lines)) + "\r\n"
        return Origin(self.session_id, version, body.lines, origin_address), text.encode()


def _encoding(media: Media, fmt: str) -> str | None:
    """The phone's spelling of ``fmt``'s encoding if the phone has it, else None:
    by rtpmap name (any case), clock rate and mono, or by static number."""
    rtpmap = media.rtpmap(fmt)
    if rtpmap is None:
        return _STATIC.get(fmt) if _is_rtp(media.proto) else None
    name, rate, *channels = rtpmap.split("/")
    return None if channels not in ([], ["1"]) else _ENCODINGS.get((name.lower(), int(rate)))


def _choose(media: Media) -> list[tuple[str, str]] | None:
    """The (payload type, encoding) pairs the phone answers ``media`` with:
    its first offered codec the phone has, then telephone-event if offered;
    None if the phone takes no codec of it, or it is not audio."""
    if media.kind != "audio" or media.port == 0 or media.proto.upper() not in _PROFILES:
        return None
    known = [(fmt, enc) for fmt in media.formats if (enc := _encoding(media, fmt)) is not None]
    codec = next((pair for pair in known if pair[1] != _EVENTS), None)
    events = [pair for pair in known if pair[1] == _EVENTS][:1]
    return None if codec is None else [codec, *events]


def _events_fmtp(params: str | None) -> str | None:
    """The answer's fmtp for telephone-event offered with ``params``: the
    events both sides have (RFC 4733 2.4.1), as ranges; ``""`` when none
    are shared or the list cannot be read (then no telephone-event).  No
    fmtp offered means 0-15 (RFC 4733 2.4.1), which the answer need not say."""
    if params is None:
        return None
    offered: set[int] = set()
    for item in params.replace(" ", "").split(","):
        m = _EVENT_RANGE.fullmatch(item)
        if m is None or int(m[2] or m[1]) > 255 or int(m[2] or m[1]) < int(m[1]):
            return ""
        offered.update(range(int(m[1]), int(m[2] or m[1]) + 1))
    shared = sorted(offered & _PHONE_EVENTS)
    ranges: list[str] = []
    for event in shared:
        if ranges and int(ranges[-1].split("-")[-1]) == event - 1:
            ranges[-1] = f"{ranges[-1].split('-')[0]}-{event}"
        else:
            ranges.append(str(event))
    return ",".join(ranges)


def _answered_fmtp(media: Media, fmt: str, encoding: str) -> str | None:
    """The ``a=fmtp`` parameters the answer gives ``fmt``, if any: the
    shared telephone events, or G.729's Annex B as offered (RFC 4856 2.1.9:
    absent means yes, so a ``no`` must be echoed)."""
    params = media.fmtp(fmt)
    if encoding == _EVENTS:
        return _events_fmtp(params)
    if encoding == "G729/8000" and params is not None:
        annexb = _ANNEXB.search(params)
        return None if annexb is None else f"annexb={annexb[1].lower()}"
    return None


def _refusal(media: tuple[Media, ...]) -> str:
    """Why no stream of an offer could be accepted, for the 488."""
    audio = [m for m in media if m.kind == "audio"]
    if not audio:
        return "no audio stream offered"
    if all(m.port == 0 for m in audio):
        return "every audio stream offered is disabled"
    return "no common audio codec (PCMU PCMA G722 G729)"


def make_answer(offer: bytes, *, address: str, port: int) -> SessionBody:
    """The phone's answer to ``offer`` (RFC 3264 6), media on ``address``.

    One ``m=`` line per offered stream, in order, the ``t=`` lines as offered.  The
    i-th accepted stream (0-based) is on ``port + 2*i``, offered proto,
    formats of :func:`_choose` with rtpmaps (telephone-event's fmtp if
    offered), direction answering the offered one (6.1).  Any other stream
    is rejected: port 0, the offered formats, no attributes.  Raises
    :class:`SdpError`, naming why, if no stream is accepted.
    """
    if not 0 < port <= 65535:
        raise ValueError(f"media port {port} out of range")
    media, timings = _parse(offer)
    out = ["s=-", f"c=IN {_family(address)} {address}", *timings]
    accepted = 0
    for m in media:
        chosen = _choose(m)
        if chosen is None or port + 2 * accepted > 65535:
            out.append(f"m={m.kind} 0 {m.proto} {' '.join(m.formats)}")
            continue
        fmtps = [(fmt, _answered_fmtp(m, fmt, enc)) for fmt, enc in chosen]
        # Telephone events with none in common are left out of the answer.
        chosen = [pair for pair, (_, params) in zip(chosen, fmtps, strict=True) if params != ""]
        out.append(f"m=audio {port + 2 * accepted} {m.proto} {' '.join(f for f, _ in chosen)}")
        out.extend(f"a=rtpmap:{fmt} {enc}" for fmt, enc in chosen)
        out.extend(f"a=fmtp:{fmt} {params}" for fmt, params in fmtps if params)
        out.append(f"a={_ANSWER_DIRECTION.get(m.direction, m.direction)}")
        accepted += 1
    if not accepted:
        raise SdpError(_refusal(media))
    return SessionBody(tuple(out))


def make_offer(*, address: str, port: int, previous: SessionBody | None = None) -> SessionBody:
    """The phone's own offer, for an INVITE that arrives without one: what an
    SPA offers, PCMU, PCMA, G729 and telephone-event 101 for DTMF (RFC 4733),
    each with its rtpmap (RFC 4566 6), sendrecv.

    In a session that had an SDP already (``previous``, the last one the
    phone sent), the offer keeps its ``m=`` lines where they were (RFC 3264
    8: at least as many, matched by position): audio in the first slot
    that carried it, every other slot rejected (port 0, its formats)."""
    if not 0 < port <= 65535:
        raise ValueError(f"media port {port} out of range")
    rtpmaps = ("0 PCMU/8000", "8 PCMA/8000", "18 G729/8000", f"101 {_EVENTS}")
    session = ("s=-", f"c=IN {_family(address)} {address}", "t=0 0")
    audio = (
        f"m=audio {port} RTP/AVP 0 8 18 101",
        *(f"a=rtpmap:{r}" for r in rtpmaps),
        "a=fmtp:101 0-15",
        "a=sendrecv",
    )
    slots = [ln[2:].split() for ln in (previous.lines if previous else ()) if ln.startswith("m=")]
    out = list(session)
    placed = False
    for kind, slot_port, proto, *formats in (s for s in slots if len(s) >= 3):
        if not placed and kind == "audio" and slot_port != "0":
            out.extend(audio)
            placed = True
        else:
            out.append(f"m={kind} 0 {proto} {' '.join(formats)}".rstrip())
    if not placed:
        out.extend(audio)
    return SessionBody(tuple(out))
