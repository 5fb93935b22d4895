"""Hypothesis strategies for SIP values, shared by the core's tests."""

from __future__ import annotations

from hypothesis import strategies as st

from phonecast.sip import Request, Response, SipUri
from phonecast.sip.uri import TelUri

TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
UNRESERVED = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()"

tokens = st.text(TOKEN_CHARS, min_size=1, max_size=12)
labels = st.from_regex(r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
hostnames = (
    st.lists(labels, min_size=1, max_size=3)
    .map(".".join)
    .filter(lambda h: h.split(".")[-1][0].isalpha())
)
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6 = st.ip_addresses(v=6).map(lambda a: f"[{a.compressed}]")
hosts = st.one_of(hostnames, ipv4, ipv6)
escapes = st.integers(0, 255).map(lambda b: f"%{b:02X}")
users = st.lists(
    st.one_of(st.sampled_from(list(UNRESERVED + "&=+$,;?/")), escapes), min_size=1, max_size=10
).map("".join)
passwords = st.lists(
    st.one_of(st.sampled_from(list(UNRESERVED + "&=+$,")), escapes), max_size=8
).map("".join)
pnames = st.text(UNRESERVED + "[]/:&+$", min_size=1, max_size=8)
pvalues = st.one_of(st.none(), st.text(UNRESERVED + "[]/:&+$", max_size=8))
hvals = st.text(UNRESERVED + "[]/?:+$", max_size=8)

sip_uris = st.builds(
    SipUri,
    host=hosts,
    user=st.one_of(st.none(), users),
    password=st.none(),
    port=st.one_of(st.none(), st.integers(0, 65535)),
    params=st.lists(st.tuples(pnames, pvalues), max_size=3).map(tuple),
    headers=st.lists(st.tuples(st.text(UNRESERVED, min_size=1, max_size=6), hvals), max_size=2).map(
        tuple
    ),
    scheme=st.sampled_from(["sip", "sips"]),
)
sip_uris_with_password = st.builds(
    lambda u, pw: SipUri(u.host, u.user or "u", pw, u.port, u.params, u.headers, u.scheme),
    sip_uris,
    passwords,
)
tel_uris = st.builds(
    TelUri,
    number=st.from_regex(r"\+?[0-9][0-9-]{0,12}", fullmatch=True),
    params=st.lists(st.tuples(pnames, pvalues), max_size=2).map(tuple),
)

header_values = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from("\t€ü"),
    max_size=40,
).map(lambda s: s.strip(" \t"))


#: Header names other than Content-Length (which frames the body).
header_names = tokens.filter(lambda t: t.lower() not in ("l", "content-length"))


def _headers() -> st.SearchStrategy[list[tuple[str, str]]]:
    return st.lists(st.tuples(header_names, header_values), max_size=8)


requests = st.builds(
    lambda method, uri, headers, body: Request(method, uri, headers).with_body(body),
    tokens,
    sip_uris,
    _headers(),
    st.binary(max_size=64),
)
responses = st.builds(
    lambda code, reason, headers, body: Response(code, reason, headers).with_body(body),
    st.integers(100, 699),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20),
    _headers(),
    st.binary(max_size=64),
)
