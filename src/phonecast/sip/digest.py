"""Digest access authentication for SIP (RFC 2617, RFC 7616, RFC 8760).

Sans-IO like the rest of :mod:`phonecast.sip`: nothing here reads a clock or
a socket; the server is told ``now``.

* Values: :class:`Challenge` (WWW-/Proxy-Authenticate) and
  :class:`Credentials` (Authorization / Proxy-Authorization), with
  :func:`parse_challenges`, :func:`parse_credentials` and ``str()``.
* Arithmetic: :func:`compute_response`, :func:`compute_ha1`,
  :func:`compute_userhash`, for MD5, SHA-256 and SHA-512/256 and their
  ``-sess`` variants, with qop ``auth``, ``auth-int`` or none (RFC 2069).
* Client: :func:`select_challenge`, :class:`DigestClient` and the one-shot
  :func:`authorize`, which answers a 401/407 for a request.
* Server: :class:`DigestServer` issues keyed, self-checking nonces and
  returns a :class:`Verdict` (with a :class:`Reason`) for credentials.

Which challenge a client answers: RFC 8760 section 2.4 has the UAS list its
challenges in its order of preference and the UAC use the *first* one it
supports, so that is the default.  ``prefer_strongest=True`` instead takes the
strongest hash family offered (SHA-512/256 > SHA-256 > MD5), for servers that
list MD5 first for old clients' sake.

Nothing in this package prints a password, an HA1 or a response: the
``response`` field is left out of ``repr`` and error messages about
credentials never quote the header value.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Final

from phonecast.sip._digest_core import (
    ALGORITHMS,
    SUPPORTED_ALGORITHMS,
    Algorithm,
    Challenge,
    Credentials,
    Params,
    algorithm_available,
    canonical_algorithm,
    compute_ha1,
    compute_response,
    compute_userhash,
    get_algorithm,
)
from phonecast.sip._digest_parse import parse_challenges, parse_credentials
from phonecast.sip._digest_server import DigestServer, HA1Lookup, PasswordLookup, Reason, Verdict
from phonecast.sip._random import token_hex
from phonecast.sip.errors import DigestError, HeaderError, SipError

if TYPE_CHECKING:
    from phonecast.sip.message import Request, Response

__all__ = [
    "ALGORITHMS",
    "SUPPORTED_ALGORITHMS",
    "Algorithm",
    "Challenge",
    "Credentials",
    "DigestAnswers",
    "DigestClient",
    "DigestServer",
    "HA1Lookup",
    "Params",
    "PasswordLookup",
    "Reason",
    "Verdict",
    "algorithm_available",
    "authorize",
    "canonical_algorithm",
    "compute_ha1",
    "compute_response",
    "compute_userhash",
    "get_algorithm",
    "is_stale",
    "parse_challenges",
    "parse_credentials",
    "select_challenge",
]

_QOPS: Final = ("auth", "auth-int")


def _usable(challenge: Challenge, allowed: frozenset[str]) -> bool:
    """Whether a client can answer ``challenge`` at all."""
    if not challenge.is_digest or challenge.realm is None or challenge.nonce is None:
        return False
    alg = ALGORITHMS.get((challenge.algorithm or "MD5").lower())
    if alg is None or alg.name not in allowed or not algorithm_available(alg.name):
        return False
    return not challenge.qop or any(q.lower() in _QOPS for q in challenge.qop)


@functools.lru_cache(maxsize=32)
def _allowed(algorithms: tuple[str, ...]) -> frozenset[str]:
    """Registered spellings of the implemented names among ``algorithms``."""
    return frozenset(canonical_algorithm(a) for a in algorithms if a.lower() in ALGORITHMS)


def select_challenge(
    challenges: Iterable[Challenge],
    *,
    prefer_strongest: bool = False,
    algorithms: Collection[str] = SUPPORTED_ALGORITHMS,
) -> Challenge:
    """The challenge to answer among those of one response.

    By default the first usable one, in the order received (RFC 8760 2.4);
    with ``prefer_strongest`` the usable one of the strongest hash family,
    ties going to the earlier.  ``algorithms`` limits what may be chosen.
    Usable means Digest, with realm and nonce, an algorithm implemented here
    and present on this platform, and (if qop is offered) auth or auth-int.
    Raises :class:`DigestError` if none is usable.
    """
    allowed = _allowed(tuple(algorithms))
    offered = list(challenges)
    usable = [c for c in offered if _usable(c, allowed)]
    if not usable:
        seen = ", ".join(
            f"{c.scheme} {c.algorithm or 'MD5'}" if c.is_digest else c.scheme for c in offered
        )
        raise DigestError(f"no usable digest challenge (offered: {seen or 'none'})")
    if prefer_strongest:
        return max(usable, key=lambda c: get_algorithm(c.algorithm).strength)
    return usable[0]


class DigestClient:
    """Answers digest challenges for one user; counts ``nc`` per nonce.

    The counters live in a small LRU (``max_nonces``), so a long-lived client
    talking to many servers stays bounded; a forgotten nonce restarts at 1,
    which its server answers with a fresh challenge.  The last challenge
    answered is kept so that later requests can carry credentials up front
    (:meth:`respond_again`), saving a 401 round trip per request.
    """

    __slots__ = (
        "_counts",
        "_last",
        "_password",
        "algorithms",
        "max_nonces",
        "prefer_auth_int",
        "prefer_strongest",
        "username",
    )

    def __init__(
        self,
        username: str,
        password: str,
        *,
        prefer_strongest: bool = False,
        prefer_auth_int: bool = False,
        algorithms: Collection[str] = SUPPORTED_ALGORITHMS,
        max_nonces: int = 32,
    ) -> None:
        if max_nonces < 1:
            raise ValueError("max_nonces must be at least 1")
        self.username = username
        self._password = password
        self.prefer_strongest = prefer_strongest
        self.prefer_auth_int = prefer_auth_int
        self.algorithms = tuple(algorithms)
        self.max_nonces = max_nonces
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._last: Challenge | None = None

    def __repr__(self) -> str:
        return f"DigestClient(username={self.username!r}, password=<redacted>)"

    def next_nc(self, nonce: str) -> str:
        """The next nonce-count for ``nonce``: 8 lowercase hex digits."""
        count = self._counts.pop(nonce, 0) + 1
        if count > 0xFFFFFFFF:
            raise DigestError("nonce-count exhausted; a new challenge is needed")
        self._counts[nonce] = count
        while len(self._counts) > self.max_nonces:
            self._counts.popitem(last=False)
        return f"{count:08x}"

    def _qop(self, challenge: Challenge) -> str | None:
        offered = {q.lower() for q in challenge.qop}
        if not offered:
            return None
        order = ("auth-int", "auth") if self.prefer_auth_int else _QOPS
        return next(q for q in order if q in offered)

    def respond(
        self,
        challenges: Challenge | Iterable[Challenge],
        *,
        method: str,
        uri: str,
        body: bytes = b"",
        cnonce: str | None = None,
    ) -> Credentials:
        """Credentials answering the chosen challenge for one request.

        ``uri`` is the digest-uri (normally the Request-URI as a string);
        ``body`` matters only for auth-int.  ``cnonce`` may be fixed for
        tests; otherwise it is random.  Raises :class:`DigestError`.
        """
        offered = (challenges,) if isinstance(challenges, Challenge) else tuple(challenges)
        chosen = select_challenge(
            offered, prefer_strongest=self.prefer_strongest, algorithms=self.algorithms
        )
        self._last = chosen
        return self._answer(chosen, method, uri, body, cnonce)

    def respond_again(
        self, *, method: str, uri: str, body: bytes = b"", cnonce: str | None = None
    ) -> Credentials | None:
        """Credentials for a new request under the last challenge answered
        (next nc), or None if there was none yet."""
        if self._last is None:
            return None
        return self._answer(self._last, method, uri, body, cnonce)

    def _answer(
        self, challenge: Challenge, method: str, uri: str, body: bytes, cnonce: str | None
    ) -> Credentials:
        realm, nonce = challenge.realm, challenge.nonce
        if realm is None or nonce is None:  # select_challenge filtered these out
            raise DigestError("challenge lacks realm or nonce")
        alg = get_algorithm(challenge.algorithm)
        qop = self._qop(challenge)
        # RFC 2617 forbids a cnonce without qop, but -sess cannot be computed
        # without one; sending it is the only way to answer such a challenge.
        needs_cnonce = qop is not None or alg.session
        cn = (cnonce or token_hex(8)) if needs_cnonce else None
        nc = self.next_nc(nonce) if qop is not None else None
        response = compute_response(
            algorithm=alg.name,
            username=self.username,
            realm=realm,
            nonce=nonce,
            method=method,
            uri=uri,
            password=self._password,
            qop=qop,
            nc=nc,
            cnonce=cn,
            body=body,
        )
        shown_user = (
            compute_userhash(alg.name, self.username, realm)
            if challenge.userhash
            else self.username
        )
        return Credentials(
            scheme="Digest",
            username=shown_user,
            realm=realm,
            nonce=nonce,
            uri=uri,
            response=response,
            # Echo the server's spelling; absent means MD5, said explicitly.
            algorithm=challenge.algorithm or alg.name,
            cnonce=cn,
            opaque=challenge.opaque,
            qop=qop,
            nc=nc,
            userhash=challenge.userhash,
        )

    def authorize(
        self, response: Response, request: Request, *, cnonce: str | None = None
    ) -> tuple[str, str]:
        """``(header name, value)`` answering a 401 or 407 to ``request``.

        The challenges come from every WWW-Authenticate (401) or
        Proxy-Authenticate (407) field; a field that does not parse is
        skipped if another one offers a usable challenge.
        """
        proxy = response.status_code == 407
        source = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        offered: list[Challenge] = []
        first_error: HeaderError | None = None
        for value in response.get_all(source):
            try:
                offered.extend(parse_challenges(value, source))
            except HeaderError as exc:
                first_error = first_error or exc
        if not offered:
            if first_error is not None:
                raise first_error
            raise DigestError(f"{response.status_code} response without {source}")
        creds = self.respond(
            offered, method=request.method, uri=str(request.uri), body=request.body, cnonce=cnonce
        )
        return ("Proxy-Authorization" if proxy else "Authorization"), str(creds)


def authorize(
    response: Response,
    request: Request,
    user: str,
    password: str,
    *,
    cnonce: str | None = None,
    prefer_strongest: bool = False,
) -> tuple[str, str]:
    """One-shot :meth:`DigestClient.authorize`: the header answering a 401/407.

    For a single retry (nc is 00000001).  Keep a :class:`DigestClient` to
    reuse a nonce across requests.
    """
    client = DigestClient(user, password, prefer_strongest=prefer_strongest)
    return client.authorize(response, request, cnonce=cnonce)


def is_stale(response: Response) -> bool:
    """Whether a 401/407 says ``stale=true`` (RFC 7616 3.3): the nonce of
    the credentials sent expired, the password was right, so a client may
    answer the fresh challenge once more rather than give up."""
    for name in ("WWW-Authenticate", "Proxy-Authenticate"):
        for value in response.get_all(name):
            try:
                if any(c.stale for c in parse_challenges(value, name)):
                    return True
            except SipError:
                continue
    return False


class DigestAnswers:
    """The credentials a client's requests carry, challenge by challenge.

    A request may be challenged by the server (401: Authorization) and by a
    proxy on the way (407: Proxy-Authorization, RFC 3261 22.3): each is
    answered in its own header, once, and once more if its new challenge
    says the nonce went stale; a second challenge without ``stale`` means
    the password is wrong, and :meth:`answer` says so.  Whenever one is
    answered, the other's nonce is answered again with its next nc (the
    same credentials twice would be a replay), and :meth:`resume` puts the
    credentials of earlier requests on a new one up front (22.1).
    ``clients`` (one :class:`DigestClient` per header, each counting its nc)
    may outlive this object, for the next request of a registration.
    """

    __slots__ = ("_answered", "_password", "_stale", "_user", "clients", "headers")

    def __init__(
        self, user: str, password: str, clients: dict[str, DigestClient] | None = None
    ) -> None:
        self._user = user
        self._password = password
        self.clients: dict[str, DigestClient] = {} if clients is None else clients
        #: The header fields the next request carries, by name.
        self.headers: dict[str, str] = {}
        self._answered: set[str] = set()
        self._stale: set[str] = set()

    def __repr__(self) -> str:
        return f"DigestAnswers(user={self._user!r}, password=<redacted>)"

    def resume(self, method: str, uri: str, body: bytes = b"") -> None:
        """Credentials for a new request under every challenge answered
        before; one whose nc ran out is forgotten, to be challenged afresh."""
        self.headers = self._again(method, uri, body, but="")

    def answer(self, response: Response, request: Request) -> bool:
        """Take the 401 or 407 that answered ``request``: True when the next
        request carries its answer, False when the credentials were refused
        (the header's client is then forgotten).  Raises :class:`SipError`
        for a challenge that cannot be answered (an algorithm not spoken)."""
        header = "Proxy-Authorization" if response.status_code == 407 else "Authorization"
        if header in self._answered:
            if header in self._stale or not is_stale(response):
                self.clients.pop(header, None)
                return False
            self._stale.add(header)
        self._answered.add(header)
        client = self.clients.get(header) or DigestClient(self._user, self._password)
        try:
            self.headers[header] = client.authorize(response, request)[1]
        except SipError:
            self.clients.pop(header, None)
            raise
        self.clients[header] = client
        self.headers.update(self._again(request.method, str(request.uri), request.body, header))
        return True

    def _again(self, method: str, uri: str, body: bytes, but: str) -> dict[str, str]:
        found: dict[str, str] = {}
        clients = self.clients
        for header, client in list(clients.items()):
            if header == but:
                continue
            try:
                again = client.respond_again(method=method, uri=uri, body=body)
            except SipError:
                del clients[header]
                continue
            if again is not None:
                found[header] = str(again)
        return found
