"""The UAS side of digest authentication: stateless nonces, bounded replay state.

Re-exported by :mod:`phonecast.sip.digest`; import it from there.

A nonce is ``base64url(issued_ms || salt || MAC)`` with ``MAC = BLAKE2b-128(
key=secret, label || issued_ms || salt || realm || bind)``: BLAKE2b in its
keyed mode is a MAC by design (RFC 7693 section 2.9), and about four times
cheaper here than a one-shot HMAC-SHA256 through OpenSSL, which matters at two
MACs per authenticated request.
The server therefore needs no memory to know that a nonce is its own, how old
it is and what it was issued for (``bind``: the peer's address, a line...).
Memory is spent only on nonces that have been *used successfully*, to refuse
a replayed ``nc``; that table is an LRU of fixed size, so a flood of requests
cannot grow it, and a nonce that falls out of it is stale from then on (see
:meth:`DigestServer.verify`), so eviction can never re-open a replay.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import secrets
import struct
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from phonecast.sip._digest_core import (
    Challenge,
    Credentials,
    algorithm_available,
    canonical_algorithm,
    compute_response,
    compute_userhash,
    get_algorithm,
)
from phonecast.sip._random import token_bytes
from phonecast.sip.errors import DigestError, SipError
from phonecast.sip.uri import parse_uri

#: ``(username, realm) -> password`` or None for an unknown user.
PasswordLookup = Callable[[str, str], str | None]
#: ``(username, realm, algorithm) -> HA1`` (see :func:`compute_ha1`) or None.
HA1Lookup = Callable[[str, str, str], str | None]

_LABEL: Final = b"phonecast digest nonce v1\x00"
_STAMP: Final = struct.Struct(">q")
_SALT_LEN: Final = 8
_MAC_LEN: Final = 16
_NONCE_LEN: Final = _STAMP.size + _SALT_LEN + _MAC_LEN
#: Its length in base64url without padding (RFC 4648 section 5).
_NONCE_CHARS: Final = (4 * _NONCE_LEN + 2) // 3
_PAD: Final = b"=" * (-_NONCE_CHARS % 4)
#: The URL-safe alphabet to binascii's standard one and back (base64's
#: urlsafe_* functions do the same in three Python calls a nonce).
_FROM_URLSAFE: Final = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE: Final = bytes.maketrans(b"+/", b"-_")
# Functions of C modules the nonce and digest checks call each time, as
# constants: compiled code would look each up on its module at every call.
_b2a_base64: Final = binascii.b2a_base64
_a2b_base64: Final = binascii.a2b_base64
_compare_digest: Final = hmac.compare_digest
#: Stands in for the nonce in the text challenge_text fills in.
_NONCE_MARKER: Final = "phonecast-nonce-goes-here"
#: What a challenge's text depends on besides its nonce and stale flag.
_Settings = tuple[str, str | None, str | None, str, tuple[str, ...]]


class Reason(StrEnum):
    """Why :meth:`DigestServer.verify` decided as it did (safe to log)."""

    OK = "ok"
    NO_CREDENTIALS = "no-credentials"
    UNKNOWN_SCHEME = "unknown-scheme"
    MALFORMED = "malformed"
    WRONG_REALM = "wrong-realm"
    UNSUPPORTED_ALGORITHM = "unsupported-algorithm"
    BAD_QOP = "bad-qop"
    OPAQUE_MISMATCH = "opaque-mismatch"
    BAD_NONCE = "bad-nonce"
    URI_MISMATCH = "uri-mismatch"
    WRONG_USER = "wrong-user"
    BAD_RESPONSE = "bad-response"
    STALE_NONCE = "stale-nonce"
    REPLAY = "replay"


@dataclass(frozen=True, slots=True, init=False)
class Verdict:
    """The outcome of one verification.

    ``stale`` tells the UAS to put ``stale=true`` in its new challenge: the
    digest was right but the nonce can no longer be used, so the client may
    retry without asking its user again (RFC 7616 3.3).  ``username`` is the
    resolved user name (the real one, also when a userhash was sent).
    """

    ok: bool
    reason: Reason
    stale: bool = False
    username: str | None = None
    nc: int | None = None

    def __init__(  # written out: see headers.Via.__init__
        self,
        ok: bool,
        reason: Reason,
        stale: bool = False,
        username: str | None = None,
        nc: int | None = None,
    ) -> None:
        object.__setattr__(self, "ok", ok)
        object.__setattr__(self, "reason", reason)
        object.__setattr__(self, "stale", stale)
        object.__setattr__(self, "username", username)
        object.__setattr__(self, "nc", nc)


def _fail(reason: Reason, *, stale: bool = False, username: str | None = None) -> Verdict:
    return Verdict(False, reason, stale, username)


def _same_uri(sent: str, expected: str) -> bool:
    """RFC 3261 19.1.4 equality when both parse, byte equality otherwise."""
    if sent == expected:
        return True
    try:
        return parse_uri(sent) == parse_uri(expected)
    except (SipError, ValueError):
        return False


class DigestServer:
    """Issue challenges and verify credentials for one realm.

    ``algorithm`` is what :meth:`challenge` offers by default; ``algorithms``
    (default: just ``algorithm``) is what :meth:`verify` accepts and what
    :meth:`challenges` offers, in order.  A UAS that stores one HA1 per user
    can only check one hash family, hence the narrow default.  ``qop`` lists
    the options offered; ``allow_no_qop`` also accepts RFC 2069 credentials
    (no qop, hence no nc): each such nonce is then good for one request only,
    since nothing else would stop a replay.  ``strict_uri`` makes :meth:`verify`
    insist that the digest-uri equal the ``expected_uri`` it is given; off by
    default because SIPp and others put ``sip:host:port`` there instead of the
    Request-URI, and the response covers the uri as sent in either case.
    """

    __slots__ = (
        "_check_after_ms",
        "_evicted_upto",
        "_keyed",
        "_realm_field",
        "_secret",
        "_templates",
        "_used",
        "algorithm",
        "algorithms",
        "allow_no_qop",
        "domain",
        "lifetime",
        "max_nonces",
        "opaque",
        "qop",
        "realm",
        "strict_uri",
    )

    def __init__(
        self,
        realm: str,
        *,
        secret: bytes | None = None,
        lifetime: float = 300.0,
        max_nonces: int = 4096,
        qop: Sequence[str] = ("auth",),
        allow_no_qop: bool = False,
        algorithm: str = "MD5",
        algorithms: Sequence[str] | None = None,
        strict_uri: bool = False,
        opaque: str | None = None,
        domain: str | None = None,
    ) -> None:
        if lifetime <= 0 or max_nonces < 1:
            raise ValueError("lifetime must be positive and max_nonces at least 1")
        if not qop and not allow_no_qop:
            raise ValueError("offer a qop or allow_no_qop")
        if any(q.lower() not in ("auth", "auth-int") for q in qop):
            raise ValueError("qop options are 'auth' and 'auth-int'")
        if secret is not None and len(secret) < 16:
            raise ValueError("the nonce secret must be at least 16 bytes")
        self.realm = realm
        self._realm_field: tuple[str | None, bytes] = (None, b"")
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        # BLAKE2b takes keys of up to 64 bytes: a longer secret is hashed first.
        key = self._secret if len(self._secret) <= 64 else hashlib.blake2b(self._secret).digest()
        self._keyed = hashlib.blake2b(key=key, digest_size=_MAC_LEN)
        self.lifetime = lifetime
        self.max_nonces = max_nonces
        self.qop = tuple(q.lower() for q in qop)
        self.allow_no_qop = allow_no_qop
        self.algorithm = get_algorithm(algorithm).name  # must be usable here
        # The accepted list may name algorithms this platform lacks: they are
        # simply never offered and never verified.
        self.algorithms = tuple(canonical_algorithm(a) for a in (algorithms or (algorithm,)))
        if self.algorithm not in self.algorithms:
            raise ValueError("the default algorithm must be among the accepted ones")
        self.strict_uri = strict_uri
        self.opaque = opaque
        self.domain = domain
        #: nonce -> (issued_ms, highest nc), least recently used first.
        self._used: OrderedDict[str, tuple[int, int]] = OrderedDict()
        #: Highest issue time of any nonce evicted from ``_used``.
        self._evicted_upto: int | None = None
        #: Until this time (ms) the least recently used entry is known to be
        #: within its lifetime: eviction need not look (see _evict).
        self._check_after_ms = -1
        #: stale -> (the settings it was made for, text before the nonce,
        #: text after it): see challenge_text.
        self._templates: dict[bool, tuple[_Settings, str, str]] = {}

    def __repr__(self) -> str:
        return (
            f"DigestServer(realm={self.realm!r}, lifetime={self.lifetime}, "
            f"tracked={len(self._used)}/{self.max_nonces})"
        )

    @property
    def tracked_nonces(self) -> int:
        """How many used nonces are remembered (never above ``max_nonces``)."""
        return len(self._used)

    # ------------------------------------------------------------- nonces
    def _mac(self, stamp: bytes, salt: bytes, bind: bytes) -> bytes:
        cached = self._realm_field
        if cached[0] != self.realm:  # computed once per realm, not per nonce
            encoded = self.realm.encode("utf-8", "surrogateescape")
            cached = self._realm_field = (self.realm, struct.pack(">I", len(encoded)) + encoded)
        realm = cached[1]
        # Fixed-size fields first and the realm length-prefixed, so that no
        # two (realm, bind) pairs feed the same bytes to the MAC.  The keyed
        # state is made once; each MAC copies it (cheaper than re-keying).
        mac = self._keyed.copy()
        mac.update(_LABEL + stamp + salt + realm + bind)
        return mac.digest()

    def new_nonce(self, now: float, *, bind: bytes = b"") -> str:
        """A fresh nonce issued at ``now`` for ``bind``."""
        stamp = _STAMP.pack(int(now * 1000))
        salt = token_bytes(_SALT_LEN)
        raw = stamp + salt + self._mac(stamp, salt, bind)
        coded = _b2a_base64(raw, newline=False).translate(_TO_URLSAFE)
        return coded.rstrip(b"=").decode("ascii")

    def _issued_ms(self, nonce: str, bind: bytes) -> int | None:
        """Issue time of one of our nonces for ``bind``; None if it is not one."""
        if len(nonce) != _NONCE_CHARS:
            return None
        try:  # ValueError: not ASCII; binascii.Error (a ValueError): not base64
            raw = _a2b_base64(nonce.encode("ascii").translate(_FROM_URLSAFE) + _PAD)
        except ValueError:
            return None
        if len(raw) != _NONCE_LEN:
            return None
        stamp, salt, mac = raw[:8], raw[8 : 8 + _SALT_LEN], raw[8 + _SALT_LEN :]
        if not _compare_digest(mac, self._mac(stamp, salt, bind)):
            return None
        issued: int = _STAMP.unpack(stamp)[0]
        return issued

    # ------------------------------------------------------------- challenges
    def challenge(
        self,
        now: float,
        *,
        bind: bytes = b"",
        stale: bool = False,
        algorithm: str | None = None,
    ) -> Challenge:
        """A challenge for a 401/407, with a nonce issued at ``now`` for ``bind``.

        ``algorithm`` defaults to the server's ``algorithm``; ``stale=True``
        after a verdict that said so.

        Raises :class:`DigestError` if ``algorithm`` is not accepted by this
        server or not available on this platform.
        """
        name = get_algorithm(algorithm or self.algorithm).name
        if name not in self.algorithms:
            raise DigestError(f"{name} is not among this server's algorithms")
        return Challenge(
            realm=self.realm,
            domain=self.domain,
            nonce=self.new_nonce(now, bind=bind),
            opaque=self.opaque,
            stale=stale,
            algorithm=name,
            qop=self.qop,
        )

    def challenge_text(self, now: float, *, bind: bytes = b"", stale: bool = False) -> str:
        """``str(self.challenge(now, bind=bind, stale=stale))``, the value of a
        WWW-Authenticate field, made without building and formatting a
        :class:`Challenge` each time: a phone answers every push that comes
        without credentials with one, and all but the nonce is the same
        until the server's settings change."""
        settings = (self.realm, self.domain, self.opaque, self.algorithm, self.qop)
        template = self._templates.get(stale)
        if template is None or template[0] != settings:
            template = self._templates[stale] = (settings, *self._template(stale))
        if not template[1]:  # no template (see _template): the general way
            return str(self.challenge(now, bind=bind, stale=stale))
        return template[1] + self.new_nonce(now, bind=bind) + template[2]

    def _template(self, stale: bool) -> tuple[str, str]:
        """The challenge's text around its nonce; ("", "") when the marker
        standing in for the nonce turns up elsewhere too (in the realm, say)."""
        text = str(
            Challenge(
                realm=self.realm,
                domain=self.domain,
                nonce=_NONCE_MARKER,
                opaque=self.opaque,
                stale=stale,
                algorithm=get_algorithm(self.algorithm).name,
                qop=self.qop,
            )
        )
        # A nonce of ours is URL-safe base64, quoted as it is: '"' + nonce + '"'.
        before, found, after = text.partition(f'"{_NONCE_MARKER}"')
        if not found or _NONCE_MARKER in before or _NONCE_MARKER in after:
            return "", ""
        return before + '"', '"' + after

    def challenges(
        self,
        now: float,
        *,
        bind: bytes = b"",
        stale: bool = False,
        algorithms: Sequence[str] | None = None,
    ) -> tuple[Challenge, ...]:
        """One challenge per algorithm (default: all accepted), most preferred
        first: RFC 8760 2.4 has one WWW-Authenticate field each, in the order
        the UAS prefers.  Algorithms this platform lacks are left out."""
        usable = [a for a in (algorithms or self.algorithms) if algorithm_available(a)]
        if not usable:
            raise DigestError("none of the requested algorithms is available")
        return tuple(self.challenge(now, bind=bind, stale=stale, algorithm=a) for a in usable)

    # ------------------------------------------------------------- verification
    def verify(
        self,
        credentials: Credentials | None,
        *,
        method: str,
        now: float,
        password: str | PasswordLookup | None = None,
        ha1: str | HA1Lookup | None = None,
        expected_user: str | None = None,
        bind: bytes = b"",
        body: bytes = b"",
        expected_uri: str | None = None,
        strict_uri: bool | None = None,
        request_uri: str | None = None,
    ) -> Verdict:
        """Check ``credentials`` for a request with ``method`` and ``body``.

        The secret is the plaintext ``password`` or a precomputed ``ha1``,
        each either a value (then ``expected_user``, if given, is the only user
        accepted) or a lookup returning None for an unknown user.  With
        userhash credentials the real name must be given as ``expected_user``:
        a hash cannot be looked up.  ``expected_uri`` (``request_uri`` is
        the same, under the name the emulator uses) is compared with the
        digest-uri only when ``strict_uri`` (here or on the server) is on.

        Checks run cheapest first.  The digest is checked before the nonce's
        age, so ``stale`` is only ever set for a client that proved it knows
        the password (RFC 7616 3.3); an nc is recorded only after the digest
        matched, so forged requests cannot push a legitimate client's counter.
        """
        if (password is None) == (ha1 is None):
            raise TypeError("verify needs exactly one of password and ha1")
        if credentials is None:
            return _fail(Reason.NO_CREDENTIALS)
        if not credentials.is_digest:
            return _fail(Reason.UNKNOWN_SCHEME)
        c = credentials
        if c.username is None or c.realm is None or c.nonce is None or c.uri is None:
            return _fail(Reason.MALFORMED)
        if c.realm != self.realm:
            return _fail(Reason.WRONG_REALM)
        if not algorithm_available(c.algorithm):
            return _fail(Reason.UNSUPPORTED_ALGORITHM)
        alg = get_algorithm(c.algorithm)
        if alg.name not in self.algorithms:
            return _fail(Reason.UNSUPPORTED_ALGORITHM)
        qop = c.qop.lower() if c.qop is not None else None
        if (qop is None and not self.allow_no_qop) or (qop is not None and qop not in self.qop):
            return _fail(Reason.BAD_QOP)
        if (qop is not None and (c.nc is None or not c.cnonce)) or (alg.session and not c.cnonce):
            return _fail(Reason.MALFORMED)
        if self.opaque is not None and c.opaque != self.opaque:
            return _fail(Reason.OPAQUE_MISMATCH)
        # The user before the nonce: credentials made for another line carry
        # that line's user *and* a nonce bound to it, and "wrong-user" says
        # why they were refused where "bad-nonce" would not.
        user = self._resolve_user(c, alg.name, expected_user)
        if user is None:
            return _fail(Reason.WRONG_USER)
        issued = self._issued_ms(c.nonce, bind)
        if issued is None:
            return _fail(Reason.BAD_NONCE)
        strict = self.strict_uri if strict_uri is None else strict_uri
        wanted = expected_uri if expected_uri is not None else request_uri
        if strict and wanted is not None and not _same_uri(c.uri, wanted):
            return _fail(Reason.URI_MISMATCH)

        pw, h1 = self._secret_for(user, alg.name, password, ha1)
        if pw is None and h1 is None:
            return _fail(Reason.WRONG_USER, username=user)
        expected = compute_response(
            algorithm=alg.name,
            username=user,
            realm=self.realm,
            nonce=c.nonce,
            method=method,
            uri=c.uri,
            qop=c.qop,
            nc=c.nc,
            cnonce=c.cnonce,
            body=body,
            password=pw,
            ha1=h1,
        )
        sent = (c.response or "").lower().encode("utf-8", "surrogateescape")
        if not _compare_digest(expected.encode("ascii"), sent):
            return _fail(Reason.BAD_RESPONSE, username=user)

        age_ms = int(now * 1000) - issued
        if age_ms > self.lifetime * 1000 or age_ms < -1000:
            # Too old, or issued "in the future" (the caller's clock went
            # back): the client should simply fetch a new nonce.
            return _fail(Reason.STALE_NONCE, stale=True, username=user)
        # Without qop there is no counter: such a nonce is good once.
        count = int(c.nc, 16) if qop is not None and c.nc is not None else 1
        return self._record(c.nonce, issued, count, now, user)

    def _resolve_user(self, c: Credentials, algorithm: str, username: str | None) -> str | None:
        if c.userhash:
            if username is None:
                return None
            digest = compute_userhash(algorithm, username, self.realm)
            sent = (c.username or "").lower().encode("utf-8", "surrogateescape")
            return username if _compare_digest(digest.encode("ascii"), sent) else None
        if username is not None and c.username != username:
            return None
        return c.username

    def _secret_for(
        self,
        user: str,
        algorithm: str,
        password: str | PasswordLookup | None,
        ha1: str | HA1Lookup | None,
    ) -> tuple[str | None, str | None]:
        """``(password, None)`` or ``(None, ha1)`` for ``user``; both None if unknown."""
        if password is not None:
            return (password if isinstance(password, str) else password(user, self.realm)), None
        if ha1 is not None:
            return None, (ha1 if isinstance(ha1, str) else ha1(user, self.realm, algorithm))
        return None, None

    def _record(self, nonce: str, issued: int, count: int, now: float, user: str) -> Verdict:
        entry = self._used.get(nonce)
        if entry is None:
            if self._evicted_upto is not None and issued <= self._evicted_upto:
                # It may have been used and then evicted: its highest nc is
                # forgotten, so it must not be accepted again.
                return _fail(Reason.STALE_NONCE, stale=True, username=user)
            highest = 0
        else:
            highest = entry[1]
        if count <= highest:
            return _fail(Reason.REPLAY, stale=True, username=user)
        self._used[nonce] = (issued, count)
        self._used.move_to_end(nonce)
        self._evict(now)
        return Verdict(True, Reason.OK, False, user, count)

    def _evict(self, now: float) -> None:
        """Forget nonces past their lifetime, and any beyond ``max_nonces``,
        least recently used first.

        Every verified push calls this, and nearly always nothing is due: the
        front entry's expiry is kept, and the table is looked at only past
        it.  Should the front change meanwhile (a nonce used again moves to
        the back), an older entry may stay a little longer, which is safe:
        verify() refuses an expired nonce before it gets here."""
        used = self._used
        now_ms = int(now * 1000)
        if now_ms <= self._check_after_ms and len(used) <= self.max_nonces:
            return
        lifetime_ms = int(self.lifetime * 1000)
        horizon = now_ms - lifetime_ms
        while used:
            nonce, (issued, _) = next(iter(used.items()))
            if len(used) <= self.max_nonces and issued >= horizon:
                self._check_after_ms = issued + lifetime_ms
                break
            del used[nonce]
            if self._evicted_upto is None or issued > self._evicted_upto:
                self._evicted_upto = issued
