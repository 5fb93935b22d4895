"""Just enough SDP (RFC 4566 / RFC 3264) for an emulated phone to answer.

The emulator does not carry media; it must still produce a well-formed
answer so a caller's offer/answer state machine completes: one ``m=`` line
per offered stream, in the same order, with the first offered format (a
port of 0 rejects a stream the phone does not take: anything but audio).

An offer is hostile input: :func:`parse_offer` bounds how many lines and
streams it reads and refuses, with :class:`SdpError`, any line it cannot
read, rather than guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
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


class SdpError(ValueError):
    """The offer is not SDP the phone can answer (the phone answers 488)."""


@dataclass(frozen=True, slots=True)
class Media:
    """One offered stream: ``m=<kind> <port> <proto> <formats...>`` and what
    its attributes say about it.

    ``direction`` is the stream's own direction attribute, else the
    session's, else sendrecv (RFC 3264 5.1).  ``rtpmaps`` pairs a payload
    type with its ``<encoding>/<clock rate>[/<channels>]`` and ``fmtps`` a
    format with its parameters (RFC 4566 6), each for formats of the
    ``m=`` line only, the first attribute for a format winning.
    """

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
                raise _bad("bad rtpmap", value)
            encoding = "/".join(g for g in rtpmap.groups()[1:] if g is not None)
            rtpmaps.setdefault(str(int(rtpmap[1])), encoding)
        elif value.startswith("fmtp:"):
            fmtp = _FMTP.fullmatch(value)
            if fmtp is None:
                raise _bad("bad fmtp", value)
            fmt = fmtp[1]
            fmtps.setdefault(str(int(fmt)) if _PAYLOAD_TYPE.fullmatch(fmt) else fmt, fmtp[2])
    return Media(
        media.kind,
        media.port,
        media.proto,
        media.formats,
        direction or session_direction,
        tuple((f, rtpmaps[f]) for f in dict.fromkeys(media.formats) if f in rtpmaps),
        tuple((f, fmtps[f]) for f in dict.fromkeys(media.formats) if f in fmtps),
    )


def parse_offer(body: bytes) -> tuple[Media, ...]:
    """The streams of an SDP offer, in order (raises :class:`SdpError`).

    At most :data:`MAX_MEDIA` ``m=`` lines and :data:`MAX_LINES` lines of at
    most :data:`MAX_LINE_LENGTH` characters are read; for RTP protos every
    format must be a payload type, 0-127 (RFC 3551 3, RFC 4566 5.14).
    """
    lines = _lines(body)
    session: list[str] = []
    sections: list[tuple[Media, list[str]]] = []
    for line in lines[1:]:
        if line.startswith("m="):
            if len(sections) == MAX_MEDIA:
                raise SdpError(f"SDP has more than {MAX_MEDIA} media lines")
            sections.append((_media_line(line), []))
        elif line.startswith("a="):
            (sections[-1][1] if sections else session).append(line[2:])
    if not sections:
        raise SdpError("SDP offer has no media line")
    session_direction = next((a for a in session if a in DIRECTIONS), "sendrecv")
    return tuple(_with_attributes(m, attrs, session_direction) for m, attrs in sections)


def _family(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


@dataclass(frozen=True, slots=True)
class SessionBody:
    """What an SDP says after its ``o=`` line: ``s=``, ``c=``, ``t=``, ``m=``,
    ``a=``... lines, without line ends.

    Kept apart from ``v=`` and ``o=`` so that :class:`Origin` can tell
    whether the SDP of a session changed since it last sent one.
    """

    lines: tuple[str, ...]

    def __post_init__(self) -> None:
        for line in self.lines:
            if not _LINE.fullmatch(line) or line[0] in "vo":
                raise ValueError(f"not a session body line: {line[:40]!r}")


@dataclass(frozen=True, slots=True)
class Origin:
    """The ``o=`` line of one session (one dialog), as the phone last sent it.

    RFC 3264 8: every SDP the phone sends in a session keeps the origin's
    username, session id and address; its version goes up by exactly one
    when the SDP differs from the one sent before, and stays when it is the
    same (RFC 4566 5.2).  ``Origin(session_id=n, version=n)`` starts a
    session; :meth:`render` gives the SDP to send and the Origin to keep
    for the next.  ``last`` holds the body lines last sent (None before the
    first) and ``address`` the origin's address, fixed by the first render.
    """

    session_id: int
    version: int
    last: tuple[str, ...] | None = None
    address: str | None = None

    def __post_init__(self) -> None:
        if self.session_id < 0 or self.version < 0:
            raise ValueError("SDP session id and version are non-negative")

    def render(self, body: SessionBody, *, address: str) -> tuple[Origin, bytes]:
        """The full SDP of ``body`` (``v=0``, ``o=``, its lines, CRLF ends)
        and the Origin that follows it.

        ``address`` is the origin's on the first render only: the ``o=``
        line names where the session was created and must not change later
        (the media address is the body's ``c=`` line).
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


def make_answer(offer: bytes, *, address: str, port: int) -> SessionBody:
    """An answer to ``offer``: audio accepted on ``port``, other kinds rejected."""
    media = parse_offer(offer)
    family = _family(address)
    out = ["s=-", f"c=IN {family} {address}", "t=0 0"]
    for i, m in enumerate(media):
        if m.kind == "audio" and m.port != 0:
            out.append(f"m=audio {port + 2 * i} {m.proto} {m.formats[0]}")
            out.append("a=sendrecv")
        else:
            out.append(f"m={m.kind} 0 {m.proto} {m.formats[0]}")
    return SessionBody(tuple(out))


def make_offer(*, address: str, port: int) -> SessionBody:
    """The phone's own offer (PCMU), for INVITEs that arrive without one."""
    family = _family(address)
    return SessionBody(
        (
            "s=-",
            f"c=IN {family} {address}",
            "t=0 0",
            f"m=audio {port} RTP/AVP 0",
            "a=rtpmap:0 PCMU/8000",
            "a=sendrecv",
        )
    )
