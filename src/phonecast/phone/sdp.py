"""Just enough SDP (RFC 4566 / RFC 3264) for an emulated phone to answer.

The emulator does not carry media; it must still produce a well-formed
answer so a caller's offer/answer state machine completes: one ``m=`` line
per offered stream, in the same order, with the first offered format (a
port of 0 rejects a stream the phone does not take: anything but audio).
"""

from __future__ import annotations

from dataclasses import dataclass


class SdpError(ValueError):
    """The offer is not SDP the phone can answer."""


@dataclass(frozen=True, slots=True)
class Media:
    """One offered stream: ``m=<kind> <port> <proto> <formats...>``."""

    kind: str
    port: int
    proto: str
    formats: tuple[str, ...]


def parse_offer(body: bytes) -> tuple[Media, ...]:
    """The media lines of an SDP offer (raises :class:`SdpError`)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SdpError("SDP is not UTF-8") from None
    lines = [ln.strip() for ln in text.replace("\r\n", "\n").split("\n") if ln.strip()]
    if not lines or not lines[0].startswith("v=0"):
        raise SdpError("SDP must start with v=0")
    media: list[Media] = []
    for line in lines:
        if line.startswith("m="):
            parts = line[2:].split()
            if len(parts) < 4 or not parts[1].split("/")[0].isdigit():
                raise SdpError(f"bad media line {line[:60]!r}")
            media.append(Media(parts[0], int(parts[1].split("/")[0]), parts[2], tuple(parts[3:])))
    if not media:
        raise SdpError("SDP offer has no media line")
    return tuple(media)


def make_answer(offer: bytes, *, address: str, port: int, session_id: int) -> bytes:
    """An answer to ``offer``: audio accepted on ``port``, other kinds rejected."""
    media = parse_offer(offer)
    family = "IP6" if ":" in address else "IP4"
    out = [
        "v=0",
        f"o=phonecast {session_id} {session_id} IN {family} {address}",
        "s=-",
        f"c=IN {family} {address}",
        "t=0 0",
    ]
    for i, m in enumerate(media):
        if m.kind == "audio" and m.port != 0:
            out.append(f"m=audio {port + 2 * i} {m.proto} {m.formats[0]}")
            out.append("a=sendrecv")
        else:
            out.append(f"m={m.kind} 0 {m.proto} {m.formats[0]}")
    return ("\r\n".join(out) + "\r\n").encode()


def make_offer(*, address: str, port: int, session_id: int) -> bytes:
    """The phone's own offer (PCMU), for INVITEs that arrive without one."""
    family = "IP6" if ":" in address else "IP4"
    return (
        f"v=0\r\no=phonecast {session_id} {session_id} IN {family} {address}\r\ns=-\r\n"
        f"c=IN {family} {address}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n"
        "a=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    ).encode()
