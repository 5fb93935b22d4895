"""Digest values and the hash arithmetic, shared by client and server.

Part of :mod:`phonecast.sip.digest`, which re-exports it; kept apart (with
:mod:`._digest_parse` and :mod:`._digest_server`) so that no module grows past
a readable size and the server needs no import cycle.

Parameters of the Digest scheme that the RFCs name are typed fields; any
other parameter is kept in ``params`` in wire form (a quoted value keeps its
quotes), so ``parse(str(x)) == x`` holds for every value.  Challenges and
credentials of other schemes (``Basic``, RFC 4475's ``NoOneKnowsThisScheme``)
keep *all* their parameters in ``params``: a UAS must still be able to read
them, if only to answer 401.  Constructors validate, so a value that exists
can always be serialised (no CR/LF to inject headers with, tokens where the
grammar wants tokens).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from phonecast.sip import _abnf
from phonecast.sip.errors import DigestError

#: Extension parameters in wire form: ``(name, value)``, quoted values keep quotes.
Params = tuple[tuple[str, str], ...]

# token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
TOKEN68_RE: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_NC_RE: Final = re.compile(r"[0-9A-Fa-f]{8}")
# Characters that qdtext does not admit and must travel as quoted-pairs (CR
# and LF cannot travel at all, RFC 3261 25.1: see _check_text).
_NEEDS_ESCAPE_RE: Final = re.compile(r'["\\\x00-\x08\x0a-\x1f\x7f]')
# quoted-string (RFC 3261 25.1) as an "unrolled loop": runs of qdtext with
# quoted-pairs between them.  Same language as _abnf.quoted_string, but the
# regex engine consumes each run in one step instead of trying an alternation
# per character, which makes header parsing several times faster.  qdtext
# (HTAB / SP / %x21 / %x23-5B / %x5D-7E / non-ASCII) is written as its
# complement: the same set of code points, but compiled in well under a
# millisecond instead of ten (every CLI start pays for it).
_QDTEXT: Final = r'[^\x00-\x08\x0a-\x1f"\\\x7f]'
_QPAIR: Final = r"\\[\x00-\x09\x0b\x0c\x0e-\x7f]"
QUOTED_STRING_RE: Final = re.compile(rf'"{_QDTEXT}*(?:{_QPAIR}{_QDTEXT}*)*"')
_TOKEN_LIST_RE: Final = re.compile(rf"{_abnf.token}(?:,{_abnf.token})*")


# ------------------------------------------------------------------ algorithms


@dataclass(frozen=True, slots=True)
class Algorithm:
    """One registered digest algorithm (RFC 7616 section 6.1 / RFC 8760 2.6).

    ``strength`` orders hash families only: a ``-sess`` variant is as strong
    as its base, so ``prefer_strongest`` keeps the server's order between them.
    """

    name: str
    hash_name: str
    session: bool
    strength: int


_ALGORITHM_LIST: Final = (
    Algorithm("SHA-512-256", "sha512_256", False, 3),
    Algorithm("SHA-512-256-sess", "sha512_256", True, 3),
    Algorithm("SHA-256", "sha256", False, 2),
    Algorithm("SHA-256-sess", "sha256", True, 2),
    Algorithm("MD5", "md5", False, 1),
    Algorithm("MD5-sess", "md5", True, 1),
)
ALGORITHMS: Final[dict[str, Algorithm]] = {a.name.lower(): a for a in _ALGORITHM_LIST}
#: Every algorithm this module implements, strongest first.
SUPPORTED_ALGORITHMS: Final[tuple[str, ...]] = tuple(a.name for a in _ALGORITHM_LIST)


@functools.cache
def _hash_available(hash_name: str) -> bool:
    try:
        hashlib.new(hash_name)
    except ValueError:
        return False
    return True


def algorithm_available(name: str | None) -> bool:
    """True if ``name`` is implemented *and* this platform's hashlib has it.

    SHA-512/256 comes from OpenSSL and is missing on some builds; MD5 is
    refused by FIPS-mode builds.  Either way the algorithm is then treated as
    unsupported instead of failing halfway through an exchange.
    """
    alg = ALGORITHMS.get((name or "MD5").lower())
    return alg is not None and _hash_available(alg.hash_name)


def canonical_algorithm(name: str | None) -> str:
    """The registered spelling of ``name`` (``md5-sess`` -> ``MD5-sess``),
    available on this platform or not.  Raises :class:`DigestError`."""
    alg = ALGORITHMS.get((name or "MD5").lower())
    if alg is None:
        raise DigestError(f"unsupported digest algorithm {name!r}")
    return alg.name


def get_algorithm(name: str | None) -> Algorithm:
    """The algorithm named ``name`` (absent means MD5, RFC 2617 3.2.1).

    Raises :class:`DigestError` if it is unknown or the platform lacks it.
    """
    alg = ALGORITHMS.get((name or "MD5").lower())
    if alg is None:
        raise DigestError(f"unsupported digest algorithm {name!r}")
    if not _hash_available(alg.hash_name):
        raise DigestError(
            f"digest algorithm {alg.name} needs hashlib {alg.hash_name!r}, "
            "which this Python/OpenSSL build does not provide"
        )
    return alg


@functools.cache
def _constructor(hash_name: str) -> Callable[[bytes], Any]:
    # hashlib.md5 and friends skip hashlib.new's name lookup, which costs
    # more than hashing a SIP-sized string; sha512_256 has no such attribute.
    # For MD5, CPython's own module if it has one: it needs no OpenSSL
    # context set up per hash (~200 ns a digest here, hashlib.md5 ~460 ns).
    if hash_name == "md5":
        try:
            builtin = getattr(importlib.import_module("_md5"), "md5", None)
        except ImportError:
            builtin = None
        if callable(builtin):
            return builtin  # type: ignore[no-any-return]
    direct = getattr(hashlib, hash_name, None)
    return direct if callable(direct) else functools.partial(hashlib.new, hash_name)


def _h(alg: Algorithm, data: str | bytes) -> str:
    # Strings that came off the wire were decoded with surrogateescape; encoding
    # the same way hashes exactly the bytes the peer sent.
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape")
    return str(_constructor(alg.hash_name)(raw).hexdigest())


def compute_ha1(algorithm: str | None, username: str, realm: str, password: str) -> str:
    """``H(username ":" realm ":" password)``: what a UAS may store instead of
    the password.  It depends on the hash family only; the ``-sess`` step is
    applied per nonce by :func:`compute_response`."""
    return _h(get_algorithm(algorithm), f"{username}:{realm}:{password}")


def compute_userhash(algorithm: str | None, username: str, realm: str) -> str:
    """``H(username ":" realm)``, sent instead of the user name when the
    server offers ``userhash=true`` (RFC 7616 section 3.4.4)."""
    return _h(get_algorithm(algorithm), f"{username}:{realm}")


def compute_response(
    *,
    algorithm: str | None,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
    body: bytes = b"",
    password: str | None = None,
    ha1: str | None = None,
    username: str | None = None,
    realm: str | None = None,
) -> str:
    """The ``response`` value of RFC 2617 3.2.2.1 / RFC 7616 3.4.1.

    Pure, so the client and the server compute it the same way.  Give either
    the ``password`` (with ``username`` and ``realm``; the real user name even
    when a userhash is sent) or the precomputed base ``ha1`` from
    :func:`compute_ha1`; the ``-sess`` step is applied here.  ``qop`` None is
    the RFC 2069 form; ``auth-int`` hashes ``body``.  ``uri`` is the
    digest-uri *as sent*, which need not be the Request-URI.
    """
    if (password is None) == (ha1 is None):
        raise TypeError("compute_response needs exactly one of password and ha1")
    alg = get_algorithm(algorithm)
    if ha1 is not None:
        base = ha1.lower()
    elif username is None or realm is None:
        raise TypeError("compute_response needs username and realm with a password")
    else:
        base = _h(alg, f"{username}:{realm}:{password}")
    if alg.session:
        if not cnonce:
            raise DigestError(f"{alg.name} needs a cnonce")
        base = _h(alg, f"{base}:{nonce}:{cnonce}")
    mode = qop.lower() if qop is not None else None
    if mode == "auth":
        ha2 = _h(alg, f"{method}:{uri}")
    elif mode == "auth-int":
        ha2 = _h(alg, f"{method}:{uri}:{_h(alg, body)}")
    elif mode is None:
        return _h(alg, f"{base}:{nonce}:{_h(alg, f'{method}:{uri}')}")
    else:
        raise DigestError(f"unsupported qop {qop!r}")
    if nc is None or not cnonce:
        raise DigestError(f"qop={mode} needs nc and cnonce")
    # qop (like nc) enters the hash as the client wrote it.
    return _h(alg, f"{base}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


# ------------------------------------------------------------------ values


def _quote(text: str) -> str:
    """A quoted-string carrying ``text`` exactly (controls as quoted-pairs)."""
    # Printable text without quote or backslash needs no escape: three C-level
    # checks settle a realm or a nonce before the expression would run.
    if ('"' not in text and "\\" not in text and text.isprintable()) or (
        _NEEDS_ESCAPE_RE.search(text) is None
    ):
        return f'"{text}"'
    return '"' + _NEEDS_ESCAPE_RE.sub(lambda m: "\\" + m.group(0), text) + '"'


def _token_or_quoted(text: str) -> str:
    return text if _abnf.is_token(text) else _quote(text)


def _has_crlf(texts: tuple[str | None, ...]) -> bool:
    """Whether any of ``texts`` holds a CR or LF (None is skipped)."""
    # any() over a generator compiles to a plain loop.
    return any(text is not None and ("\r" in text or "\n" in text) for text in texts)


def _check_text(what: str, text: str | None) -> None:
    if text is not None and ("\r" in text or "\n" in text):
        raise DigestError(f"{what} cannot contain CR or LF")


def _check_common(scheme: str, params: Params, token68: str | None, known: frozenset[str]) -> None:
    if not _abnf.is_token(scheme):
        raise DigestError("authentication scheme must be a token")
    digest = scheme.lower() == "digest"
    for name, value in params:
        if not _abnf.is_token(name):
            raise DigestError(f"parameter name {name!r} is not a token")
        if digest and name.lower() in known:
            raise DigestError(f"{name} is a typed field, not an extension parameter")
        if not (_abnf.is_token(value) or QUOTED_STRING_RE.fullmatch(value)):
            raise DigestError(f"parameter {name} must be a token or a quoted-string")
    if token68 is not None:
        if digest:
            raise DigestError("the Digest scheme takes parameters, not a token68")
        if not TOKEN68_RE.fullmatch(token68):
            raise DigestError("malformed token68")


def _extension(params: Params, name: str) -> str | None:
    low = name.lower()
    for key, value in params:
        if key.lower() == low:
            return _abnf.unquote(value) if value.startswith('"') else value
    return None


def _join(scheme: str, token68: str | None, parts: list[str]) -> str:
    if token68 is not None:
        parts = [token68, *parts]
    return f"{scheme} {', '.join(parts)}" if parts else scheme


CHALLENGE_FIELDS: Final = frozenset(
    {"realm", "domain", "nonce", "opaque", "stale", "algorithm", "qop", "userhash"}
)
CREDENTIAL_FIELDS: Final = frozenset(
    {
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
    }
)
#: qop offers that need no token check.
_PLAIN_QOPS: Final = frozenset({(), ("auth",), ("auth-int",), ("auth", "auth-int")})
_CREDENTIAL_REQUIRED: Final = ("username", "realm", "nonce", "uri", "response")
_CREDENTIAL_TEXTS: Final = (*_CREDENTIAL_REQUIRED, "algorithm", "cnonce", "opaque", "qop")


@dataclass(frozen=True, slots=True, kw_only=True, init=False)
class Challenge:
    """One WWW-Authenticate / Proxy-Authenticate challenge.

    ``algorithm`` None means the parameter was absent (MD5 is then assumed,
    RFC 2617 3.2.1); it is kept apart from an explicit ``MD5`` so that a
    value serialises back the way it was received.  For schemes other than
    Digest the typed fields stay empty and everything is in ``params``.
    """

    scheme: str = "Digest"
    realm: str | None = None
    nonce: str | None = None
    opaque: str | None = None
    algorithm: str | None = None
    qop: tuple[str, ...] = ()
    stale: bool = False
    domain: str | None = None
    userhash: bool = False
    params: Params = ()
    token68: str | None = None

    # Written out, not generated: compiled, it is ~15x cheaper (see
    # headers.Via.__init__); tests/sip/test_values.py keeps it in step.
    def __init__(
        self,
        *,
        scheme: str = "Digest",
        realm: str | None = None,
        nonce: str | None = None,
        opaque: str | None = None,
        algorithm: str | None = None,
        qop: tuple[str, ...] = (),
        stale: bool = False,
        domain: str | None = None,
        userhash: bool = False,
        params: Params = (),
        token68: str | None = None,
    ) -> None:
        object.__setattr__(self, "scheme", scheme)
        object.__setattr__(self, "realm", realm)
        object.__setattr__(self, "nonce", nonce)
        object.__setattr__(self, "opaque", opaque)
        object.__setattr__(self, "algorithm", algorithm)
        object.__setattr__(self, "qop", qop)
        object.__setattr__(self, "stale", stale)
        object.__setattr__(self, "domain", domain)
        object.__setattr__(self, "userhash", userhash)
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "token68", token68)
        self._check()

    def _check(self) -> None:
        typed = (self.realm, self.nonce, self.opaque, self.algorithm, self.domain)
        if (
            self.scheme == "Digest"
            and not self.params
            and self.token68 is None
            and not _has_crlf(typed)
            and self.qop in _PLAIN_QOPS
        ):
            return  # what a server issues: checked in a few C-level steps
        _check_common(self.scheme, self.params, self.token68, CHALLENGE_FIELDS)
        if not self.is_digest:
            if typed != (None,) * 5 or self.qop or self.stale or self.userhash:
                raise DigestError(f"a {self.scheme} challenge keeps its parameters in params")
            return
        for text in typed:
            if text is not None and ("\r" in text or "\n" in text):
                raise DigestError("challenge parameters cannot contain CR or LF")
        if self.qop and not _TOKEN_LIST_RE.fullmatch(",".join(self.qop)):
            raise DigestError("each qop option must be a token")

    @property
    def is_digest(self) -> bool:
        """True for the Digest scheme (scheme names are case-insensitive)."""
        return self.scheme.lower() == "digest"

    def param(self, name: str) -> str | None:
        """Plain value of an extension parameter (``charset``...), or None."""
        return _extension(self.params, name)

    def __str__(self) -> str:
        parts: list[str] = []
        if self.realm is not None:
            parts.append(f"realm={_quote(self.realm)}")
        if self.domain is not None:
            parts.append(f"domain={_quote(self.domain)}")
        if self.nonce is not None:
            parts.append(f"nonce={_quote(self.nonce)}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.stale:
            parts.append("stale=true")
        if self.algorithm is not None:
            parts.append(f"algorithm={_token_or_quoted(self.algorithm)}")
        if self.qop:
            parts.append(f'qop="{",".join(self.qop)}"')
        if self.userhash:
            parts.append("userhash=true")
        parts.extend(f"{name}={value}" for name, value in self.params)
        return _join(self.scheme, self.token68, parts)


@dataclass(frozen=True, slots=True, kw_only=True, init=False)
class Credentials:
    """One Authorization / Proxy-Authorization value.

    ``response`` is kept out of ``repr`` (it is a password-equivalent for
    offline guessing), and so are ``token68`` and other schemes' ``params``
    (Basic's token68 is the password itself, base64-encoded).  ``nc`` is
    kept exactly as received, because the response was hashed over that
    spelling; :class:`DigestClient` always writes it as 8 lowercase hex
    digits.  ``username`` holds the userhash when ``userhash`` is true.
    """

    scheme: str = "Digest"
    username: str | None = None
    realm: str | None = None
    nonce: str | None = None
    uri: str | None = None
    response: str | None = field(default=None, repr=False)
    algorithm: str | None = None
    cnonce: str | None = None
    opaque: str | None = None
    qop: str | None = None
    nc: str | None = None
    userhash: bool = False
    params: Params = field(default=(), repr=False)
    token68: str | None = field(default=None, repr=False)

    def __init__(  # written out: see Challenge.__init__
        self,
        *,
        scheme: str = "Digest",
        username: str | None = None,
        realm: str | None = None,
        nonce: str | None = None,
        uri: str | None = None,
        response: str | None = None,
        algorithm: str | None = None,
        cnonce: str | None = None,
        opaque: str | None = None,
        qop: str | None = None,
        nc: str | None = None,
        userhash: bool = False,
        params: Params = (),
        token68: str | None = None,
    ) -> None:
        object.__setattr__(self, "scheme", scheme)
        object.__setattr__(self, "username", username)
        object.__setattr__(self, "realm", realm)
        object.__setattr__(self, "nonce", nonce)
        object.__setattr__(self, "uri", uri)
        object.__setattr__(self, "response", response)
        object.__setattr__(self, "algorithm", algorithm)
        object.__setattr__(self, "cnonce", cnonce)
        object.__setattr__(self, "opaque", opaque)
        object.__setattr__(self, "qop", qop)
        object.__setattr__(self, "nc", nc)
        object.__setattr__(self, "userhash", userhash)
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "token68", token68)
        self._check()

    def _check(self) -> None:
        user, realm, nonce, uri, response = (
            self.username,
            self.realm,
            self.nonce,
            self.uri,
            self.response,
        )
        if (
            self.scheme == "Digest"
            and not self.params
            and self.token68 is None
            # Each "is not None" is a pointer test ("None in" compares each).
            and user is not None
            and realm is not None
            and nonce is not None
            and uri is not None
            and response is not None
            and not _has_crlf(
                (
                    user,
                    realm,
                    nonce,
                    uri,
                    response,
                    self.algorithm,
                    self.cnonce,
                    self.opaque,
                    self.qop,
                )
            )
            and (self.nc is None or _NC_RE.fullmatch(self.nc))
        ):
            return  # the common case, checked in a few C-level steps
        _check_common(self.scheme, self.params, self.token68, CREDENTIAL_FIELDS)
        required = (self.username, self.realm, self.nonce, self.uri, self.response)
        optional = (self.algorithm, self.cnonce, self.opaque, self.qop)
        if not self.is_digest:
            if any(v is not None for v in (*required, *optional, self.nc)) or self.userhash:
                raise DigestError(f"{self.scheme} credentials keep their parameters in params")
            return
        if None in required:
            missing = [n for n, v in zip(_CREDENTIAL_REQUIRED, required, strict=True) if v is None]
            raise DigestError(f"Digest credentials lack {', '.join(missing)}")
        for what, text in zip(_CREDENTIAL_TEXTS, required + optional, strict=True):
            _check_text(what, text)
        if self.nc is not None and not _NC_RE.fullmatch(self.nc):
            raise DigestError("nc must be exactly 8 hexadecimal digits")

    @property
    def is_digest(self) -> bool:
        """True for the Digest scheme (scheme names are case-insensitive)."""
        return self.scheme.lower() == "digest"

    def param(self, name: str) -> str | None:
        """Plain value of an extension parameter, or None."""
        return _extension(self.params, name)

    def __str__(self) -> str:
        plain = self._plain_str()
        return plain if plain is not None else self._generic_str()

    def _plain_str(self) -> str | None:
        """The usual Digest value (algorithm, qop, nc and cnonce, no
        extension parameters, nothing to escape) in one format step, or None.

        Same text as :meth:`_generic_str`, which handles everything else;
        a client writes one of these per challenge, so it is worth a path.
        """
        alg, qop, cnonce, opaque = self.algorithm, self.qop, self.cnonce, self.opaque
        if (
            self.scheme != "Digest"
            or self.params
            or self.userhash
            or not alg
            or not qop
            or self.nc is None
            or cnonce is None
        ):
            return None
        quoted = (self.username, self.realm, self.nonce, self.uri, self.response, cnonce, opaque)
        if None in quoted[:5] or _NEEDS_ESCAPE_RE.search("".join(filter(None, quoted))):
            return None
        if not _abnf.is_token(alg + qop):  # both are tokens iff their concatenation is
            return None
        tail = "" if opaque is None else f', opaque="{opaque}"'
        return (
            f'Digest username="{self.username}", realm="{self.realm}", '
            f'nonce="{self.nonce}", uri="{self.uri}", response="{self.response}", '
            f'algorithm={alg}, cnonce="{cnonce}"{tail}, qop={qop}, nc={self.nc}'
        )

    def _generic_str(self) -> str:
        parts: list[str] = []
        quoted = (
            ("username", self.username),
            ("realm", self.realm),
            ("nonce", self.nonce),
            ("uri", self.uri),
            ("response", self.response),
        )
        parts.extend(f"{name}={_quote(value)}" for name, value in quoted if value is not None)
        if self.algorithm is not None:
            parts.append(f"algorithm={_token_or_quoted(self.algorithm)}")
        if self.cnonce is not None:
            parts.append(f"cnonce={_quote(self.cnonce)}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.qop is not None:
            parts.append(f"qop={_token_or_quoted(self.qop)}")
        if self.nc is not None:
            parts.append(f"nc={self.nc}")
        if self.userhash:
            parts.append("userhash=true")
        parts.extend(f"{name}={value}" for name, value in self.params)
        return _join(self.scheme, self.token68, parts)
