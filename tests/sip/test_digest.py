"""Digest: RFC vectors, header round-trips, client and server behaviour."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phonecast.sip import HeaderError, Request, Response, parse_message
from phonecast.sip.digest import (
    Challenge,
    Credentials,
    DigestClient,
    DigestError,
    DigestServer,
    authorize,
    compute_ha1,
    compute_response,
    parse_challenges,
    parse_credentials,
    replace_nc,
    userhash,
)


def test_rfc2617_vector() -> None:
    ha1 = compute_ha1("MD5", "Mufasa", "testrealm@host.com", "Circle Of Life")
    got = compute_response(
        algorithm="MD5",
        ha1=ha1,
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        method="GET",
        uri="/dir/index.html",
        qop="auth",
        nc="00000001",
        cnonce="0a4f113b",
    )
    assert got == "6629fae49393a05397450978507c4ef1"


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_391_vectors(algorithm: str, expected: str) -> None:
    ha1 = compute_ha1(algorithm, "Mufasa", "http-auth@example.org", "Circle of Life")
    got = compute_response(
        algorithm=algorithm,
        ha1=ha1,
        nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        method="GET",
        uri="/dir/index.html",
        qop="auth",
        nc="00000001",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    assert got == expected


def test_rfc7616_392_with_erratum() -> None:
    # RFC 7616 3.9.2 printed values computed with SHA-512 truncated to 256 bits,
    # not SHA-512/256 (errata); these are the values with real SHA-512/256.
    user, realm = "Jäsøn Doe", "api@example.org"
    assert userhash("SHA-512-256", user, realm) == (
        "793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b"
    )
    ha1 = compute_ha1("SHA-512-256", user, realm, "Secret, or not?")
    got = compute_response(
        algorithm="SHA-512-256",
        ha1=ha1,
        nonce="5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK",
        method="GET",
        uri="/doe.json",
        qop="auth",
        nc="00000001",
        cnonce="NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v",
    )
    assert got == "3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5"
    truncated = hashlib.sha512(f"{user}:{realm}".encode()).hexdigest()[:64]
    assert userhash("SHA-512-256", user, realm) != truncated


def test_parse_challenge_with_odd_spacing_and_quoted_commas() -> None:
    (c,) = parse_challenges(
        'Digest  realm = "a,b" ,nonce="n",  qop="auth,auth-int", algorithm=MD5, stale=TRUE'
    )
    assert (c.realm, c.nonce, c.qop, c.algorithm, c.stale) == (
        "a,b",
        "n",
        ("auth", "auth-int"),
        "MD5",
        True,
    )
    assert parse_challenges(str(c)) == (c,)


def test_several_challenges_in_one_value_and_other_schemes() -> None:
    cs = parse_challenges(
        'Digest realm="r", nonce="1", algorithm=SHA-256, Digest realm="r", nonce="2", '
        'algorithm=MD5, Basic realm="x"'
    )
    assert [(c.scheme, c.nonce, c.algorithm) for c in cs] == [
        ("Digest", "1", "SHA-256"),
        ("Digest", "2", "MD5"),
        ("Basic", "", None),
    ]
    with pytest.raises(HeaderError):
        parse_challenges('Digest realm="r"')


def test_unknown_credentials_scheme_parses() -> None:
    creds = parse_credentials("NoOneKnowsThisScheme opaque-data=here")
    assert creds.scheme == "NoOneKnowsThisScheme"
    with pytest.raises(HeaderError):
        parse_credentials(
            'Digest username="u", realm="r", nonce="n", uri="u", response="x", '
            'qop=auth, nc=1, cnonce="c"'
        )


quoted_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)


@given(
    quoted_text,
    quoted_text,
    st.sampled_from([None, "MD5", "SHA-256", "MD5-sess"]),
    st.booleans(),
    st.lists(st.sampled_from(["auth", "auth-int"]), max_size=2, unique=True),
)
def test_challenge_round_trip(
    realm: str, nonce: str, algorithm: str | None, stale: bool, qop: list[str]
) -> None:
    c = Challenge("Digest", realm, nonce, algorithm=algorithm, qop=tuple(qop), stale=stale)
    assert parse_challenges(str(c)) == (c,)


@given(quoted_text, quoted_text, quoted_text, st.integers(1, 2**32 - 1))
def test_credentials_round_trip(user: str, realm: str, uri: str, nc: int) -> None:
    c = Credentials(
        "Digest", user, realm, "nonce", uri, "abc123", "MD5", "cn", None, "auth", f"{nc:08x}"
    )
    assert parse_credentials(str(c)) == c


NOW = 1_000_000.0


def _round(
    server: DigestServer,
    *,
    algorithm: str = "MD5",
    qop: str = "auth",
    password: str = "secret",
    bind: bytes = b"line-1001",
) -> Credentials:
    challenge = server.challenge(NOW, bind=bind)
    client = DigestClient()
    return client.credentials(
        challenge,
        method="NOTIFY",
        uri="sip:1001@127.0.0.1:5070",
        username="1001",
        password=password,
        body=b"http://x",
    )


@pytest.mark.parametrize(
    "algorithm", ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess", "SHA-512-256", "SHA-512-256-sess"]
)
@pytest.mark.parametrize("qop", [("auth",), ("auth-int",)])
def test_every_algorithm_and_qop_round_trip(algorithm: str, qop: tuple[str, ...]) -> None:
    server = DigestServer("phone", algorithm=algorithm, qop=qop)
    creds = _round(server)
    assert creds.qop == qop[0] and creds.algorithm == algorithm
    kw = {"method": "NOTIFY", "now": NOW + 1, "password": "secret", "bind": b"line-1001"}
    # auth-int covers the body: another body fails; auth does not look at it.
    other_body = server.verify(creds, body=b"other", **kw)  # type: ignore[arg-type]
    assert other_body.ok is (qop == ("auth",))
    right_body = server.verify(creds, body=b"http://x", **kw)  # type: ignore[arg-type]
    assert right_body.reason == ("replay" if qop == ("auth",) else "ok")


def test_no_qop_only_when_allowed() -> None:
    server = DigestServer("phone", qop=())
    challenge = server.challenge(NOW)
    creds = DigestClient().credentials(
        challenge, method="NOTIFY", uri="sip:a@b", username="a", password="p"
    )
    assert creds.qop is None and creds.nc is None
    assert server.verify(creds, method="NOTIFY", now=NOW, password="p").reason == "bad-qop"
    lenient = DigestServer("phone", qop=(), allow_no_qop=True, secret=b"k" * 32)
    creds2 = DigestClient().credentials(
        lenient.challenge(NOW), method="NOTIFY", uri="sip:a@b", username="a", password="p"
    )
    assert lenient.verify(creds2, method="NOTIFY", now=NOW, password="p").ok


def test_server_verdicts() -> None:
    server = DigestServer("phone", lifetime=300)
    creds = _round(server)
    kw = {"method": "NOTIFY", "bind": b"line-1001"}
    assert server.verify(creds, now=NOW, password="wrong", **kw).reason == "bad-response"  # type: ignore[arg-type]
    other = DigestServer("phone")
    assert other.verify(creds, now=NOW, password="secret", **kw).reason == "bad-nonce"  # type: ignore[arg-type]
    assert (
        server.verify(creds, now=NOW, password="secret", method="NOTIFY", bind=b"line-1002").reason
        == "bad-nonce"
    )
    stale = server.verify(creds, now=NOW + 301, password="secret", **kw)  # type: ignore[arg-type]
    assert stale.reason == "stale-nonce" and stale.stale
    assert (
        server.verify(creds, now=NOW, password="secret", expected_user="1002", **kw).reason
        == "wrong-user"
    )  # type: ignore[arg-type]
    assert server.verify(creds, now=NOW, password="secret", **kw).ok  # type: ignore[arg-type]
    assert server.verify(creds, now=NOW, password="secret", **kw).reason == "replay"  # type: ignore[arg-type]
    assert server.verify(replace_nc(creds, 1), now=NOW, password="secret", **kw).reason == "replay"  # type: ignore[arg-type]
    assert (
        server.verify(replace_nc(creds, 2), now=NOW, password="secret", **kw).reason
        == "bad-response"
    )  # type: ignore[arg-type]


def test_increasing_nc_accepted_and_ha1_instead_of_password() -> None:
    server = DigestServer("phone")
    challenge = server.challenge(NOW)
    client = DigestClient()
    ha1 = compute_ha1("MD5", "1001", "phone", "secret")
    for expected_nc in ("00000001", "00000002", "00000003"):
        creds = client.credentials(
            challenge, method="NOTIFY", uri="sip:1001@h", username="1001", password="secret"
        )
        assert creds.nc == expected_nc
        assert server.verify(creds, method="NOTIFY", now=NOW, ha1=ha1).ok


def test_strict_uri() -> None:
    server = DigestServer("phone", strict_uri=True)
    creds = _round(server, bind=b"")
    verdict = server.verify(
        creds, method="NOTIFY", now=NOW, password="secret", request_uri="sip:1001@10.0.0.1"
    )
    assert verdict.reason == "uri-mismatch"
    lenient = DigestServer("phone", secret=b"s" * 32)
    creds2 = _round(lenient, bind=b"")
    assert lenient.verify(
        creds2, method="NOTIFY", now=NOW, password="secret", request_uri="sip:1001@10.0.0.1"
    ).ok


def test_nc_memory_is_bounded_and_evicted_nonces_cannot_replay() -> None:
    server = DigestServer("phone", max_nonces=8)
    first = _round(server, bind=b"")
    assert server.verify(first, method="NOTIFY", now=NOW, password="secret").ok
    client = DigestClient()
    for i in range(50):
        ch = server.challenge(NOW + 1 + i)
        creds = client.credentials(
            ch,
            method="NOTIFY",
            uri="sip:1001@127.0.0.1:5070",
            username="1001",
            password="secret",
            body=b"http://x",
        )
        assert server.verify(creds, method="NOTIFY", now=NOW + 1 + i, password="secret").ok
    assert server.tracked <= 8
    replay = server.verify(first, method="NOTIFY", now=NOW + 60, password="secret")
    assert not replay.ok and replay.reason == "stale-nonce"


def test_client_chooses_first_supported_or_strongest() -> None:
    cs = parse_challenges(
        'Digest realm="r", nonce="1", algorithm=MD5, '
        'Digest realm="r", nonce="2", algorithm=SHA-256, '
        'Digest realm="r", nonce="3", algorithm=UNKNOWN'
    )
    assert DigestClient().choose(cs).nonce == "1"
    assert DigestClient(prefer_strongest=True).choose(cs).nonce == "2"
    with pytest.raises(DigestError):
        DigestClient().choose(parse_challenges('Basic realm="x"'))


def test_authorize_from_messages_and_no_secret_leaks() -> None:
    req = parse_message(
        b"NOTIFY sip:1001@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"From: <sip:a@h>;tag=1\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: c\r\nCSeq: 1 NOTIFY\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    assert isinstance(req, Request)
    server = DigestServer("phone")
    resp = Response(401, "Unauthorized", [("WWW-Authenticate", str(server.challenge(NOW)))])
    name, value = authorize(resp, req, "1001", "hunter2")
    assert name == "Authorization" and "hunter2" not in value
    creds = parse_credentials(value)
    assert creds.uri == "sip:1001@127.0.0.1:5070"
    assert server.verify(creds, method="NOTIFY", now=NOW, password="hunter2").ok
    assert creds.response not in repr(creds)
    proxy = Response(
        407, "Proxy Authentication Required", [("Proxy-Authenticate", str(server.challenge(NOW)))]
    )
    assert authorize(proxy, req, "1001", "hunter2")[0] == "Proxy-Authorization"
    assert "hunter2" not in repr(server)


def test_message_accessors() -> None:
    resp = parse_message(
        b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b'WWW-Authenticate: Digest realm="a", nonce="1", qop="auth"\r\n'
        b'WWW-Authenticate: Digest realm="a", nonce="2", algorithm=SHA-256\r\n'
        b"Content-Length: 0\r\n\r\n"
    )
    assert [c.nonce for c in resp.www_authenticate] == ["1", "2"]
    assert resp.proxy_authenticate == () and resp.authorization is None
