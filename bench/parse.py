"""Parse and serialise benchmark: phonecast.sip vs the ``sipmessage`` package.

Workloads, each on one core in one process, best of several rounds:
  notify  - parse a typical XML-Service NOTIFY and read top Via branch, CSeq,
            Call-ID (what a phone needs to match and answer it)
  401     - parse a 401 and read Via, CSeq, Call-ID and the digest challenge
            (what a pusher needs to answer it)
  build   - build a NOTIFY from its parts and serialise it to bytes

The parse workloads cycle through 1,000 variants of each message that differ
where real traffic differs (Via branch, From tag, Call-ID, nonce, digest
response), so that neither library is measured on one repeated text (the
phonecast parser memoises values that do repeat between peers: URIs, To,
CSeq, Content-Type, Event).  Prints messages per second for both libraries
and the ratio.
Run: ``.venv/bin/python bench/parse.py`` (``make bench`` runs it).
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable

import sipmessage

from phonecast.sip import Request, SipUri, parse_message

NOTIFY = (
    b"NOTIFY sip:1001@10.0.0.5:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:phonecast@10.0.0.2>;tag=1928301774\r\n"
    b"To: <sip:1001@10.0.0.5:5060>\r\n"
    b"Call-ID: a84b4c76e66710@10.0.0.2\r\n"
    b"CSeq: 2 NOTIFY\r\n"
    b"Contact: <sip:phonecast@10.0.0.2:5060>\r\n"
    b"Event: XML-Service\r\n"
    b"User-Agent: phonecast/0.1\r\n"
    b'Authorization: Digest username="1001", realm="phone", nonce="ZGVhZGJlZWYxMjM0",'
    b' uri="sip:1001@10.0.0.5:5060", response="6629fae49393a05397450978507c4ef1",'
    b' algorithm=MD5, cnonce="0a4f113b", qop=auth, nc=00000001\r\n'
    b"Content-Type: text/html\r\n"
    b"Content-Length: 25\r\n"
    b"\r\n"
    b"http://10.0.0.2/alert.xml"
)

CHALLENGE = (
    b"SIP/2.0 401 Unauthorized\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK776asdhds;rport=5060;received=10.0.0.2\r\n"
    b"From: <sip:phonecast@10.0.0.2>;tag=1928301774\r\n"
    b"To: <sip:1001@10.0.0.5:5060>;tag=8321234356\r\n"
    b"Call-ID: a84b4c76e66710@10.0.0.2\r\n"
    b"CSeq: 1 NOTIFY\r\n"
    b'WWW-Authenticate: Digest realm="phone", nonce="ZGVhZGJlZWYxMjM0", qop="auth",'
    b" algorithm=MD5\r\n"
    b"Server: Cisco/SPA504G-7.6.2\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


def variants(message: bytes, count: int = 1000) -> itertools.cycle[bytes]:
    """``message`` with per-call fields made unique (same lengths)."""
    out = []
    for n in range(count):
        tag = f"{n:06d}".encode()
        out.append(
            message.replace(b"776asdhds", b"776" + tag)
            .replace(b"1928301774", b"1928" + tag)
            .replace(b"a84b4c76e66710", b"a84b4c76" + tag)
            .replace(b"ZGVhZGJlZWYxMjM0", b"ZGVhZGJl" + tag + b"M0")
            .replace(b"6629fae49393a05397450978507c4ef1", b"6629fae49393a05397450978507" + tag[:5])
        )
    return itertools.cycle(out)


NOTIFIES = variants(NOTIFY)
CHALLENGES = variants(CHALLENGE)


def ours_notify() -> None:
    m = parse_message(next(NOTIFIES))
    m.top_via.branch  # noqa: B018
    m.cseq  # noqa: B018
    m.call_id  # noqa: B018


def theirs_notify() -> None:
    m = sipmessage.Message.parse(next(NOTIFIES))
    m.via[0].parameters["branch"]
    m.cseq  # noqa: B018
    m.call_id  # noqa: B018


def ours_401() -> None:
    m = parse_message(next(CHALLENGES))
    m.top_via.branch  # noqa: B018
    m.cseq  # noqa: B018
    m.call_id  # noqa: B018
    m.www_authenticate[0].nonce  # noqa: B018


def theirs_401() -> None:
    m = sipmessage.Message.parse(next(CHALLENGES))
    m.via[0].parameters["branch"]
    m.cseq  # noqa: B018
    m.call_id  # noqa: B018
    challenge = m.www_authenticate
    assert challenge is not None
    challenge.parameters["nonce"]


def ours_build() -> None:
    req = Request(
        "NOTIFY",
        SipUri("10.0.0.5", "1001", port=5060),
        [
            ("Via", "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK776asdhds;rport"),
            ("Max-Forwards", "70"),
            ("From", "<sip:phonecast@10.0.0.2>;tag=1928301774"),
            ("To", "<sip:1001@10.0.0.5:5060>"),
            ("Call-ID", "a84b4c76e66710@10.0.0.2"),
            ("CSeq", "1 NOTIFY"),
            ("Event", "XML-Service"),
            ("Content-Type", "text/html"),
            ("Content-Length", "25"),
        ],
        b"http://10.0.0.2/alert.xml",
    )
    bytes(req)


def theirs_build() -> None:
    req = sipmessage.Request("NOTIFY", sipmessage.URI.parse("sip:1001@10.0.0.5:5060"))
    req.headers.add("Via", "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK776asdhds;rport")
    req.headers.add("Max-Forwards", "70")
    req.headers.add("From", "<sip:phonecast@10.0.0.2>;tag=1928301774")
    req.headers.add("To", "<sip:1001@10.0.0.5:5060>")
    req.headers.add("Call-ID", "a84b4c76e66710@10.0.0.2")
    req.headers.add("CSeq", "1 NOTIFY")
    req.headers.add("Event", "XML-Service")
    req.headers.add("Content-Type", "text/html")
    req.headers.add("Content-Length", "25")
    req.body = b"http://10.0.0.2/alert.xml"
    bytes(req)


def rate(fn: Callable[[], None], seconds: float, rounds: int) -> float:
    """Best messages-per-second over ``rounds`` rounds of about ``seconds`` each."""
    best = 0.0
    for _ in range(rounds):
        n = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(200):
                fn()
            n += 200
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per workload (best counts)")
    args = parser.parse_args()
    print(f"{'workload':<8} {'phonecast/s':>12} {'sipmessage/s':>13} {'ratio':>7}")
    for name, ours, theirs in (
        ("notify", ours_notify, theirs_notify),
        ("401", ours_401, theirs_401),
        ("build", ours_build, theirs_build),
    ):
        a = rate(ours, args.seconds, args.rounds)
        b = rate(theirs, args.seconds, args.rounds)
        print(f"{name:<8} {a:>12,.0f} {b:>13,.0f} {a / b:>6.1f}x", flush=True)


if __name__ == "__main__":
    main()
