"""HTTP Digest authentication for SIP (RFC 2617, RFC 7616, RFC 8760).

Client side: :func:`authorize` answers a 401/407 with an Authorization (or
Proxy-Authorization) header; :class:`DigestClient` keeps the nonce counts.
Server side: :class:`DigestServer` issues challenges and verifies credentials
the way a careful UAS should — better than the phones it emulates:

- the nonce is ``base64url(issued || HMAC-SHA256(secret, issued || bind))``:
  nothing to store per challenge, unforgeable, bound to whatever the caller
  binds it to (the line, the source address), and its age is readable so an
  expired one is answered ``stale=true`` (the password was right; retry);
- the highest ``nc`` seen per nonce is kept in a bounded LRU: a replayed or
  decreasing ``nc`` fails, and a nonce evicted from the table is treated as
  stale, so memory stays bounded and replays never succeed;
- responses are compared with :func:`hmac.compare_digest`.

The response is always computed over the ``uri`` parameter as sent (SIPp
puts ``sip:<ip>:<port>`` there; a registrar rewrites the Request-URI), and
optionally checked against the Request-URI (``strict_uri``).

Nothing here logs or prints a password, an HA1 or a response: values holding
them hide them from ``repr``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import struct
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from phonecast.sip import _abnf
from phonecast.sip.errors import DigestError, HeaderError

if TYPE_CHECKING:
    from phonecast.sip.message import Request, Response

# --------------------------------------------------------------- algorithms


def _sha512_256(data: bytes) -> str:
    try:
        return hashlib.new("sha512_256", data).hexdigest()
    except ValueError:  # pragma: no cover - OpenSSL without SHA-512/256
        raise DigestError("this Python's OpenSSL lacks SHA-512/256") from None


_HASHES = {
    "MD5": lambda d: hashlib.md5(d, usedforsecurity=False).hexdigest(),
    "SHA-256": lambda d: hashlib.sha256(d).hexdigest(),
    "SHA-512-256": _sha512_256,
}

#: Algorithms in the order a client prefers them when asked for the strongest.
STRENGTH = ("SHA-512-256", "SHA-512-256-SESS", "SHA-256", "SHA-256-SESS", "MD5", "MD5-SESS")


def _hash_for(algorithm: str) -> tuple[object, bool]:
    name = algorithm.upper()
    sess = name.endswith("-SESS")
    base = name[:-5] if sess else name
    fn = _HASHES.get(base)
    if fn is None:
        raise DigestError(f"unsupported digest algorithm {algorithm!r}")
    return fn, sess


def supported(algorithm: str | None) -> bool:
    """True if phonecast can compute ``algorithm`` (None means MD5)."""
    return (algorithm or "MD5").upper() in STRENGTH


def _h(algorithm: str, text: str) -> str:
    fn, _ = _hash_for(algorithm)
    return fn(text.encode("utf-8"))  # type: ignore[operator, no-any-return]


def compute_ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """HA1 before any -sess step: H(username:realm:password)."""
    return _h(algorithm, f"{username}:{realm}:{password}")


def compute_response(
    *,
    algorithm: str,
    ha1: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None,
    nc: str | None = None,
    cnonce: str | None = None,
    body: bytes = b"",
) -> str:
    """The request-digest of RFC 2617 3.2.2.1 / RFC 7616 3.4.1.

    ``ha1`` is H(user:realm:password); for -sess algorithms the session key
    H(ha1:nonce:cnonce) is derived here.
    """
    _, sess = _hash_for(algorithm)
    if sess:
        ha1 = _h(algorithm, f"{ha1}:{nonce}:{cnonce or ''}")
    if qop == "auth-int":
        fn, _ = _hash_for(algorithm)
        a2 = f"{method}:{uri}:{fn(body)}"  # type: ignore[operator]
    else:
        a2 = f"{method}:{uri}"
    ha2 = _h(algorithm, a2)
    if qop in ("auth", "auth-int"):
        return _h(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _h(algorithm, f"{ha1}:{nonce}:{ha2}")


def userhash(algorithm: str, username: str, realm: str) -> str:
    """RFC 7616 3.4.4: H(username:realm)."""
    return _h(algorithm, f"{username}:{realm}")


# -------------------------------------------------------- header grammar

_PARAM_RE = re.compile(
    rf"[ \t]*({_abnf.token})[ \t]*=[ \t]*({_abnf.quoted_string}|{_abnf.token}(?:[^,\s\"]*))[ \t]*"
)
_SCHEME_RE = re.compile(rf"[ \t]*({_abnf.token})(?:[ \t]+|$)")
_NC_RE = re.compile(r"[0-9a-fA-F]{8}")
_QUOTED = frozenset({"realm", "nonce", "opaque", "domain", "username", "uri", "response", "cnonce"})


def _parse_auth(value: str, header: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Split ``scheme p=v, p=v[, scheme p=v ...]`` into schemes and params.

    Quoted values keep their quotes here; commas inside them do not split.
    A token followed by white space and then ``name=`` starts a new challenge.
    """
    out: list[tuple[str, list[tuple[str, str]]]] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and value[i] in " \t,":
            i += 1
        if i >= n:
            break
        m = _SCHEME_RE.match(value, i)
        if m is None:
            raise HeaderError(header, "expected an authentication scheme", value=value)
        scheme = m.group(1)
        i = m.end()
        params: list[tuple[str, str]] = []
        while i < n:
            pm = _PARAM_RE.match(value, i)
            if pm is None:
                # Schemes with a token68 or free-form data (RFC 4475 regaut01).
                end = value.find(",", i)
                params.append(("", value[i : n if end < 0 else end].strip()))
                i = n if end < 0 else end
            else:
                params.append((pm.group(1), pm.group(2)))
                i = pm.end()
            if i < n and value[i] == ",":
                nxt = _SCHEME_RE.match(value, i + 1)
                if (
                    nxt is not None
                    and "=" not in value[i + 1 : nxt.end()]
                    and (_PARAM_RE.match(value, nxt.end()) is not None)
                ):
                    i += 1
                    break  # a new challenge starts
                i += 1
        out.append((scheme, params))
    return out


def _value(raw: str) -> str:
    return _abnf.unquote(raw) if raw.startswith('"') else raw


def _q(name: str, value: str) -> str:
    return f"{name}={_abnf.quote(value)}"


@dataclass(frozen=True, slots=True)
class Challenge:
    """One WWW-Authenticate / Proxy-Authenticate challenge."""

    scheme: str
    realm: str = ""
    nonce: str = ""
    opaque: str | None = None
    algorithm: str | None = None
    qop: tuple[str, ...] = ()
    stale: bool = False
    domain: str | None = None
    userhash: bool = False
    other: tuple[tuple[str, str], ...] = ()

    @property
    def is_digest(self) -> bool:
        """True for the Digest scheme."""
        return self.scheme.lower() == "digest"

    def __str__(self) -> str:
        parts = [_q("realm", self.realm), _q("nonce", self.nonce)]
        if self.opaque is not None:
            parts.append(_q("opaque", self.opaque))
        if self.domain is not None:
            parts.append(_q("domain", self.domain))
        if self.algorithm is not None:
            parts.append(f"algorithm={self.algorithm}")
        if self.qop:
            parts.append(_q("qop", ",".join(self.qop)))
        if self.stale:
            parts.append("stale=true")
        if self.userhash:
            parts.append("userhash=true")
        parts += [f"{k}={v}" for k, v in self.other]
        return f"{self.scheme} " + ", ".join(parts)


_SIMPLE_PARAMS_RE = re.compile(
    r'[ \t]*([A-Za-z][A-Za-z0-9-]*)[ \t]*=[ \t]*("[^"\\]*"|[^", \t]+)[ \t]*(?:,|$)'
)


def _simple_params(value: str) -> list[tuple[str, str]] | None:
    """``Digest p=v, p=v`` with plain quoted strings: one findall."""
    if value[:7].lower() != "digest " or "\\" in value or value.lower().count("digest") > 1:
        return None
    rest = value[7:]
    found: list[tuple[str, str]] = _SIMPLE_PARAMS_RE.findall(rest)
    if sum(len(n) + len(v) for n, v in found) + len(found) > len(rest):
        return None
    if len(found) != rest.count("=") - sum(v.count("=") for _, v in found):
        return None
    return found


def parse_challenges(value: str, header: str = "WWW-Authenticate") -> tuple[Challenge, ...]:
    """Every challenge in one header value."""
    out: list[Challenge] = []
    simple = _simple_params(value)
    parsed = [("Digest", simple)] if simple is not None else _parse_auth(value, header)
    for scheme, params in parsed:
        fields: dict[str, str] = {}
        other: list[tuple[str, str]] = []
        for name, raw in params:
            key = name.lower()
            if (
                key
                in ("realm", "nonce", "opaque", "algorithm", "qop", "stale", "domain", "userhash")
                and key not in fields
            ):
                fields[key] = _value(raw)
            else:
                other.append((name, raw))
        qop = tuple(q.strip() for q in fields.get("qop", "").split(",") if q.strip())
        out.append(
            Challenge(
                scheme,
                fields.get("realm", ""),
                fields.get("nonce", ""),
                fields.get("opaque"),
                fields.get("algorithm"),
                qop,
                fields.get("stale", "").lower() == "true",
                fields.get("domain"),
                fields.get("userhash", "").lower() == "true",
                tuple(other),
            )
        )
        if scheme.lower() == "digest" and ("realm" not in fields or "nonce" not in fields):
            raise HeaderError(header, "a Digest challenge needs realm and nonce", value=value)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Credentials:
    """One Authorization / Proxy-Authorization value."""

    scheme: str
    username: str = ""
    realm: str = ""
    nonce: str = ""
    uri: str = ""
    response: str = field(default="", repr=False)
    algorithm: str | None = None
    cnonce: str | None = None
    opaque: str | None = None
    qop: str | None = None
    nc: str | None = None
    userhash: bool = False
    other: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        if self.scheme.lower() != "digest":
            return f"{self.scheme} " + ", ".join(f"{k}={v}" if k else v for k, v in self.other)
        parts = [
            _q("username", self.username),
            _q("realm", self.realm),
            _q("nonce", self.nonce),
            _q("uri", self.uri),
            _q("response", self.response),
        ]
        if self.algorithm is not None:
            parts.append(f"algorithm={self.algorithm}")
        if self.cnonce is not None:
            parts.append(_q("cnonce", self.cnonce))
        if self.opaque is not None:
            parts.append(_q("opaque", self.opaque))
        if self.qop is not None:
            parts.append(f"qop={self.qop}")
        if self.nc is not None:
            parts.append(f"nc={self.nc}")
        if self.userhash:
            parts.append("userhash=true")
        parts += [f"{k}={v}" for k, v in self.other]
        return "Digest " + ", ".join(parts)


def parse_credentials(value: str, header: str = "Authorization") -> Credentials:
    """The credentials in one header value."""
    parsed = _parse_auth(value, header)
    if not parsed:
        raise HeaderError(header, "empty credentials", value=value)
    scheme, params = parsed[0]
    if scheme.lower() != "digest":
        return Credentials(scheme, other=tuple(params))
    fields: dict[str, str] = {}
    other: list[tuple[str, str]] = []
    for name, raw in params:
        key = name.lower()
        if (
            key
            in (
                "username",
                "realm",
                "nonce",
                "uri",
                "response",
                "algorithm",
                "cnonce",
                "opaque",
                "qop",
                "nc",
                "userhash",
            )
            and key not in fields
        ):
            fields[key] = _value(raw)
        else:
            other.append((name, raw))
    nc = fields.get("nc")
    if nc is not None and _NC_RE.fullmatch(nc) is None:
        raise HeaderError(header, "nc must be 8 hex digits", value=value)
    for required in ("username", "realm", "nonce", "uri", "response"):
        if required not in fields:
            raise HeaderError(header, f"Digest credentials lack {required}", value=value)
    return Credentials(
        scheme,
        fields["username"],
        fields["realm"],
        fields["nonce"],
        fields["uri"],
        fields["response"],
        fields.get("algorithm"),
        fields.get("cnonce"),
        fields.get("opaque"),
        fields.get("qop"),
        nc.lower() if nc else None,
        fields.get("userhash", "").lower() == "true",
        tuple(other),
    )


# ---------------------------------------------------------------- client


class DigestClient:
    """Answers challenges; counts nc per nonce (bounded)."""

    def __init__(self, *, prefer_strongest: bool = False, max_nonces: int = 1024) -> None:
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._max = max_nonces
        self.prefer_strongest = prefer_strongest

    def choose(self, challenges: tuple[Challenge, ...]) -> Challenge:
        """RFC 8760: the first Digest challenge we support (or the strongest)."""
        usable = [c for c in challenges if c.is_digest and supported(c.algorithm)]
        if not usable:
            offered = ", ".join(f"{c.scheme} {c.algorithm or ''}".strip() for c in challenges)
            raise DigestError(f"no supported digest challenge (offered: {offered or 'none'})")
        if self.prefer_strongest:
            return min(usable, key=lambda c: STRENGTH.index((c.algorithm or "MD5").upper()))
        return usable[0]

    def next_nc(self, nonce: str) -> str:
        """The next nonce count for ``nonce``, 8 lowercase hex digits."""
        count = self._counts.pop(nonce, 0) + 1
        self._counts[nonce] = count
        while len(self._counts) > self._max:
            self._counts.popitem(last=False)
        return f"{count:08x}"

    def credentials(
        self,
        challenge: Challenge,
        *,
        method: str,
        uri: str,
        username: str,
        password: str,
        body: bytes = b"",
        cnonce: str | None = None,
    ) -> Credentials:
        """Credentials answering ``challenge`` for one request."""
        algorithm = challenge.algorithm or "MD5"
        qop: str | None = None
        if challenge.qop:
            if "auth" in challenge.qop:
                qop = "auth"
            elif "auth-int" in challenge.qop:
                qop = "auth-int"
            else:
                raise DigestError(f"unsupported qop {','.join(challenge.qop)!r}")
        nc = self.next_nc(challenge.nonce) if qop else None
        cn = (cnonce or secrets.token_hex(8)) if qop else None
        ha1 = compute_ha1(algorithm, username, challenge.realm, password)
        response = compute_response(
            algorithm=algorithm,
            ha1=ha1,
            nonce=challenge.nonce,
            method=method,
            uri=uri,
            qop=qop,
            nc=nc,
            cnonce=cn,
            body=body,
        )
        shown_user = (
            userhash(algorithm, username, challenge.realm) if challenge.userhash else username
        )
        return Credentials(
            "Digest",
            shown_user,
            challenge.realm,
            challenge.nonce,
            uri,
            response,
            challenge.algorithm,
            cn,
            challenge.opaque,
            qop,
            nc,
            challenge.userhash,
        )


_DEFAULT_CLIENT = DigestClient()


def authorize(
    response: Response,
    request: Request,
    username: str,
    password: str,
    *,
    client: DigestClient | None = None,
) -> tuple[str, str]:
    """The header answering a 401 (Authorization) or 407 (Proxy-Authorization)."""
    proxy = response.status_code == 407
    name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
    challenges: tuple[Challenge, ...] = ()
    for value in response.get_all(name):
        challenges += parse_challenges(value, name)
    chosen = (client or _DEFAULT_CLIENT).choose(challenges)
    creds = (client or _DEFAULT_CLIENT).credentials(
        chosen,
        method=request.method,
        uri=str(request.uri),
        username=username,
        password=password,
        body=request.body,
    )
    return ("Proxy-Authorization" if proxy else "Authorization", str(creds))


# ---------------------------------------------------------------- server


@dataclass(frozen=True, slots=True)
class Verdict:
    """The result of checking credentials; ``reason`` says why (never secrets)."""

    ok: bool
    reason: str
    stale: bool = False
    username: str | None = None


_NONCE_TIME = struct.Struct(">d")


class DigestServer:
    """Issues and verifies digest challenges (see the module docstring)."""

    def __init__(
        self,
        realm: str,
        *,
        secret: bytes | None = None,
        lifetime: float = 300.0,
        algorithm: str = "MD5",
        qop: tuple[str, ...] = ("auth",),
        allow_no_qop: bool = False,
        strict_uri: bool = False,
        max_nonces: int = 65536,
    ) -> None:
        _hash_for(algorithm)
        self.realm = realm
        self._secret = secret or secrets.token_bytes(32)
        self.lifetime = lifetime
        self.algorithm = algorithm
        self.qop = qop
        self.allow_no_qop = allow_no_qop
        self.strict_uri = strict_uri
        #: nonce -> (highest nc seen, issue time), least recently used first.
        self._seen: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._max = max_nonces
        #: Issue time of the newest nonce ever evicted from ``_seen``.
        self._evicted_floor = float("-inf")

    def __repr__(self) -> str:
        return f"DigestServer(realm={self.realm!r}, algorithm={self.algorithm!r})"

    @property
    def tracked(self) -> int:
        """Nonces whose highest nc is remembered (bounded by ``max_nonces``)."""
        return len(self._seen)

    def _mac(self, issued: bytes, bind: bytes) -> bytes:
        return hmac.new(self._secret, issued + bind, hashlib.sha256).digest()[:16]

    def make_nonce(self, now: float, bind: bytes = b"") -> str:
        """A fresh nonce: issue time and a keyed MAC over it and ``bind``."""
        issued = _NONCE_TIME.pack(now)
        return base64.urlsafe_b64encode(issued + self._mac(issued, bind)).decode().rstrip("=")

    def challenge(self, now: float, *, bind: bytes = b"", stale: bool = False) -> Challenge:
        """A challenge to send in a 401 (``stale=True`` after an expired nonce)."""
        return Challenge(
            "Digest",
            self.realm,
            self.make_nonce(now, bind),
            algorithm=self.algorithm,
            qop=self.qop,
            stale=stale,
        )

    def _nonce_time(self, nonce: str, bind: bytes) -> float | None:
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (ValueError, TypeError):
            return None
        if len(raw) != 24:
            return None
        issued, mac = raw[:8], raw[8:]
        if not hmac.compare_digest(mac, self._mac(issued, bind)):
            return None
        return float(_NONCE_TIME.unpack(issued)[0])

    def verify(
        self,
        credentials: Credentials,
        *,
        method: str,
        now: float,
        password: str | None = None,
        ha1: str | None = None,
        expected_user: str | None = None,
        bind: bytes = b"",
        body: bytes = b"",
        request_uri: str | None = None,
    ) -> Verdict:
        """Check ``credentials`` for a request; give ``password`` or its ``ha1``."""
        if credentials.scheme.lower() != "digest":
            return Verdict(False, "unknown-scheme")
        user = credentials.username
        if expected_user is not None and user != expected_user:
            return Verdict(False, "wrong-user", username=user)
        if credentials.realm != self.realm:
            return Verdict(False, "wrong-realm", username=user)
        algorithm = credentials.algorithm or "MD5"
        if algorithm.upper() != self.algorithm.upper():
            return Verdict(False, "unsupported-algorithm", username=user)
        issued = self._nonce_time(credentials.nonce, bind)
        if issued is None:
            return Verdict(False, "bad-nonce", username=user)
        if now - issued > self.lifetime or issued - now > 1.0:
            return Verdict(False, "stale-nonce", stale=True, username=user)
        qop = credentials.qop
        if qop is None:
            if not self.allow_no_qop:
                return Verdict(False, "bad-qop", username=user)
        elif qop not in self.qop or credentials.nc is None or credentials.cnonce is None:
            return Verdict(False, "bad-qop", username=user)
        if self.strict_uri and request_uri is not None and credentials.uri != request_uri:
            return Verdict(False, "uri-mismatch", username=user)
        if ha1 is None:
            if password is None:
                raise DigestError("verify needs the password or its HA1")
            ha1 = compute_ha1(algorithm, user, self.realm, password)
        expected = compute_response(
            algorithm=algorithm,
            ha1=ha1,
            nonce=credentials.nonce,
            method=method,
            uri=credentials.uri,
            qop=qop,
            nc=credentials.nc,
            cnonce=credentials.cnonce,
            body=body,
        )
        if not hmac.compare_digest(expected.encode(), credentials.response.lower().encode()):
            return Verdict(False, "bad-response", username=user)
        if qop is not None:
            assert credentials.nc is not None
            count = int(credentials.nc, 16)
            seen = self._seen.get(credentials.nonce)
            if seen is None and issued <= self._evicted_floor:
                # It may have been evicted with its nc history: refuse as stale
                # (the client retries with a fresh nonce) rather than trust it.
                return Verdict(False, "stale-nonce", stale=True, username=user)
            if seen is not None and count <= seen[0]:
                return Verdict(False, "replay", username=user)
            self._seen[credentials.nonce] = (count, issued)
            self._seen.move_to_end(credentials.nonce)
            while len(self._seen) > self._max:
                _, (_, old_issued) = self._seen.popitem(last=False)
                self._evicted_floor = max(self._evicted_floor, old_issued)
        return Verdict(True, "ok", username=user)


def replace_nc(credentials: Credentials, nc: int) -> Credentials:
    """A copy with another nc (for tests of replay handling)."""
    return replace(credentials, nc=f"{nc:08x}")
