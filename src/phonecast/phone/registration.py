"""A phone line's registration at its registrar (RFC 3261 10.2), kept up.

A line registers from its own port (its Via and Contact name that port,
so that the registrar and any NAT logic see the line, not the first
socket of the host), answers a digest challenge with the line's
credentials, and keeps one Call-ID for all its registrations while the CSeq
counts up (10.2.4: a registrar orders a UA's requests by them).

The registrar grants an expiry: the ``expires`` parameter of our binding in
the 200's Contact list, else its Expires header, else what was asked
(10.2.4, 10.3 step 8), never more than was asked (a registrar may only
shorten it).  A 423 Interval Too Brief is answered at once with the
registrar's Min-Expires (10.2.8).  The line registers again once 70-90 %
of that has passed (spread, so that lines registered together do not
refresh together), so that a registrar never sees it lapse, and after a
failure (no answer, a final response other than 2xx, or a grant of 0 s)
tries again after the setting's ``register_retry`` seconds (plus up to a
fifth), as an SPA does after its Register Retry Interval.  The refreshes
are deadlines on the endpoint's timer wheel; a task exists only while a
REGISTER is under way.

Registration goes over the setting's ``register_transport``: UDP from the
line's own socket, or TCP or TLS over a connection to the registrar (one
per host, reused by every line and refresh), with the Contact's
``transport`` parameter naming it, so that the registrar reaches the line
over that transport at the line's port (RFC 3261 10.2.1, 18.2.2).  A
connection that cannot be opened or that fails its TLS check is a failed
REGISTER: retried like any other, its reason in the event.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

from phonecast.net.endpoint import SipEndpoint
from phonecast.net.localaddr import local_ip_for
from phonecast.net.timers import Timer
from phonecast.net.transport import Address
from phonecast.phone.events import EventLog
from phonecast.sip import Request, Response, SipError, SipUri, Via, new_tag
from phonecast.sip.digest import DigestAnswers, DigestClient

if TYPE_CHECKING:
    from phonecast.phone.state import LineState

#: Share of the granted expiry after which a line registers again, give or
#: take JITTER (so even a grant of 1 s is refreshed before it lapses, and
#: no sooner than 0.7 s: the line cannot spin).
REFRESH_AT: Final = 0.8
JITTER: Final = 0.1
#: The longest wait a Retry-After may impose before the next try, seconds
#: (a day, as MAX_MIN_EXPIRES): past that, the retry interval's spread
#: still applies, the value is capped.
MAX_RETRY_AFTER: Final = 86_400
#: REGISTERs one refresh may send: the first, one answer to each of the
#: registrar's (401) and a proxy's (407) challenges, and one more answer to
#: each if it says its nonce went stale.
MAX_REQUESTS: Final = 5


@dataclass(slots=True)
class Binding:
    """One line's registration: what stays the same from one REGISTER to the next."""

    line: LineState
    local: Address
    remote: Address
    call_id: str
    from_tag: str
    #: The line's address of record at the registrar (From and To).
    aor: str
    #: The registrar itself (the Request-URI).
    target: SipUri
    #: Where the registrar reaches the line (see _contact_for).
    contact: SipUri
    cseq: int = 0
    #: The expiry the registrar granted last, seconds (None: not registered).
    granted: int | None = None
    #: The registrar's Min-Expires, once a 423 said it: asked for from then on.
    min_expires: int = 0
    #: The next refresh or retry.
    timer: Timer | None = None
    #: Why the last REGISTER got no response, when it could not be sent,
    #: or why a challenge could not be answered.
    failure: str | None = None
    #: The challenges answered so far, by the header answering them
    #: (Authorization, Proxy-Authorization): refreshes send credentials
    #: under their nonces (next nc) up front, RFC 3261 22.1.
    digest: dict[str, DigestClient] = field(default_factory=dict)
    #: The refresh under way: a second one waits for it instead of sending
    #: a REGISTER that would overlap it (10.2: a UA MUST NOT send a new
    #: registration until the previous one has completed).
    busy: asyncio.Future[int | None] | None = None


class Registrations:
    """The registrations of every line of a host, on one endpoint."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        events: EventLog,
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
        new_call_id: Callable[[str, Address], str],
        rng: random.Random | None = None,
    ) -> None:
        self._rng = rng or random.Random()
        self._endpoint = endpoint
        self._events = events
        self._spawn = spawn
        self._new_call_id = new_call_id
        self.bindings: dict[Address, Binding] = {}
        self._closed = False

    async def register(self, line: LineState, local: Address, remote: Address) -> int | None:
        """Register ``line`` (bound at ``local``) at ``remote`` now and keep
        it registered; the final code (None: no answer)."""
        binding = self.bindings.get(local)
        if binding is None or binding.remote != remote:
            transport = line.phone.config.settings.register_transport
            if binding is not None:
                if binding.timer is not None:
                    binding.timer.cancel()
                if transport != "udp":
                    self._endpoint.release(transport, binding.remote)
            if transport != "udp":
                # The registrar reaches the line back over this connection:
                # it must outlive the gaps between refreshes.
                self._endpoint.keep_open(transport, remote)
            host, port = remote
            shown = f"[{host}]" if ":" in host else host
            binding = Binding(
                line,
                local,
                remote,
                self._new_call_id(line.config.user, local),
                new_tag(),
                aor=f"sip:{line.config.user}@{shown}:{port}",
                target=SipUri(shown, port=port),
                contact=_contact_for(line, local, remote),
            )
            self.bindings[local] = binding
        return await self._register(binding)

    def close(self) -> None:
        """Stop refreshing (the host is stopping); a REGISTER under way
        finishes without arranging the next."""
        self._closed = True
        for binding in self.bindings.values():
            if binding.timer is not None:
                binding.timer.cancel()
                binding.timer = None

    async def _register(self, binding: Binding) -> int | None:
        if binding.busy is not None:
            return await asyncio.shield(binding.busy)
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        binding.busy = done
        code = None
        try:
            code = await self._register_now(binding)
        except asyncio.CancelledError:
            # The caller gave up on it (a wait_for round register()): the
            # line must not stop refreshing for that, so the next try is
            # arranged as after a failure, unless the host is closing.
            if binding.timer is None:
                settings = binding.line.phone.config.settings
                self._schedule(binding, settings.register_retry)
            raise
        finally:
            binding.busy = None
            done.set_result(code)
        return code

    async def _register_now(self, binding: Binding) -> int | None:
        line = binding.line
        settings = line.phone.config.settings
        asked = max(settings.register_expires, binding.min_expires)
        binding.failure = None
        response = await self._exchange(binding, asked)
        if response is not None and response.status_code == 423:
            shortest = _min_expires(response)
            if shortest is not None and shortest > asked:
                # RFC 3261 10.2.8: ask for at least what the registrar takes.
                binding.min_expires = asked = shortest
                response = await self._exchange(binding, asked)
        code = None if response is None else response.status_code
        granted = None
        if response is not None and response.is_success:
            granted = granted_expiry(response, binding.contact, asked)
        if granted:
            binding.granted = granted
            # At 70-90 % of the grant, not all at 80 %: lines registered
            # together do not refresh in one burst ever after.
            share = REFRESH_AT + self._rng.uniform(-JITTER, JITTER)
            delay = granted * share
            self._events.emit(
                "registered",
                phone=line.phone.config.name,
                line=line.config.user,
                code=code,
                expires=binding.granted,
            )
        else:
            # No answer, a refusal, or a "200" granting 0 s (a registration
            # that lapses at once is none): try again after the retry
            # interval, jittered likewise, not every MIN_REFRESH.
            binding.granted = None
            delay = settings.register_retry * (1 + self._rng.uniform(0, 2 * JITTER))
            # A registrar saying when to come back (503, 500, 486...): not
            # before then (RFC 3261 21.5.4, 20.33).
            delay = max(delay, _retry_after(response))
            self._events.emit(
                "register_failed",
                phone=line.phone.config.name,
                line=line.config.user,
                code=code,
                retry_in=delay,
                **({"error": binding.failure} if binding.failure else {}),
            )
        self._schedule(binding, delay)
        return code

    def _schedule(self, binding: Binding, delay: float) -> None:
        if binding.timer is not None:
            binding.timer.cancel()
            binding.timer = None
        if self._closed or self.bindings.get(binding.local) is not binding:
            return  # stopping, or the line registers elsewhere now
        endpoint = self._endpoint

        def due(_now: float) -> None:
            binding.timer = None
            if self.bindings.get(binding.local) is binding:
                self._spawn(self._register(binding))

        binding.timer = endpoint.call_at(endpoint.now() + delay, due)

    async def _exchange(self, binding: Binding, expires: int) -> Response | None:
        """One REGISTER, sent again with credentials for each challenge.

        The registrar's (401) and a proxy's on the way (407) are each
        answered once, and once more if the nonce went stale
        (:class:`~phonecast.sip.digest.DigestAnswers`); a second challenge
        without ``stale`` means the password is wrong, and ends the refresh.
        The credentials of earlier refreshes go with the first REGISTER
        (RFC 3261 22.1), saving a round trip each time; a registrar that has
        forgotten their nonce challenges afresh, answered like a first one.
        """
        line = binding.line
        ep = self._endpoint
        transport = line.phone.config.settings.register_transport
        answers = DigestAnswers(
            line.config.digest_user, line.config.password.reveal(), binding.digest
        )
        answers.resume("REGISTER", str(binding.target))
        response = None
        for _attempt in range(MAX_REQUESTS):
            binding.cseq += 1
            request = self._request(binding, expires, answers.headers)
            try:
                response, why = await ep.request(
                    request,
                    transport,
                    binding.remote,
                    # From the line's own socket over UDP; over TLS, checked
                    # under the registrar's name if one is set.
                    local=binding.local if transport == "udp" else None,
                    server_hostname=line.phone.config.settings.registrar_tls_name,
                )
            except OSError as exc:
                # The line's socket is gone (the host is stopping), or no
                # connection (refused, timed out, a certificate not trusted).
                binding.failure = f"{type(exc).__name__}: {exc}"
                return None
            if response is None:
                binding.failure = _NO_RESPONSE.get(why, why)
                break
            if response.status_code not in (401, 407):
                break
            try:
                if not answers.answer(response, request):
                    break  # refused: the challenge is the outcome
            except SipError as exc:
                # A challenge that cannot be answered (an algorithm not
                # spoken, no nonce): the 401 is the outcome, and this why.
                # Digest errors never quote credentials.
                binding.failure = f"cannot answer the challenge: {exc}"
                break
        return response

    def _request(self, binding: Binding, expires: int, authorization: dict[str, str]) -> Request:
        aor = binding.aor
        transport = binding.line.phone.config.settings.register_transport
        via = self._endpoint.top_via(transport, local=binding.local)
        if binding.local[0] in ("0.0.0.0", "::"):
            # Bound to every address: the Via names the address the Contact
            # does, the one the registrar reaches the line at, not loopback.
            via = Via(via.transport, binding.contact.host, via.port, via.params)
        headers = [
            ("Via", str(via)),
            ("Max-Forwards", "70"),
            ("From", f"<{aor}>;tag={binding.from_tag}"),
            ("To", f"<{aor}>"),
            ("Call-ID", binding.call_id),
            ("CSeq", f"{binding.cseq} REGISTER"),
            ("Contact", f"<{binding.contact}>"),
            ("Expires", str(expires)),
        ]
        headers.extend(authorization.items())
        return Request("REGISTER", binding.target, headers).with_body(b"")


def _contact_for(line: LineState, local: Address, remote: Address) -> SipUri:
    """Where the registrar reaches ``line`` (bound at ``local``): its port,
    and the transport it registers over unless that is UDP."""
    host, port = local
    if host in ("0.0.0.0", "::"):
        # Bound to every address: name the one the registrar is reached
        # from, the one it can reach the line at.
        host = local_ip_for(remote[0], remote[1])
    transport = line.phone.config.settings.register_transport
    params = () if transport == "udp" else (("transport", transport),)
    shown = f"[{host}]" if ":" in host else host
    return SipUri(shown, line.config.user, port=port, params=params)


def granted_expiry(response: Response, contact: SipUri, asked: int) -> int:
    """The expiry a registrar's 2xx grants ``contact`` (RFC 3261 10.2.4):
    its binding's ``expires`` parameter in the Contact list, else the
    Expires header, else what was asked.  A value that does not parse is
    passed over for the next source."""
    try:
        bindings = response.contact
    except SipError:
        bindings = ()
    ours = _with_port(contact)
    for binding in bindings:
        uri = binding.uri
        # RFC 3261 19.1.4 (scheme, user, host, transport and the other
        # parameters both carry), a missing port taken as the transport's
        # default (a registrar may drop :5060): another binding of this
        # user, at another port, scheme or transport, is not ours.
        if isinstance(uri, SipUri) and _with_port(uri) == ours:
            value = binding.param("expires")
            if value is not None and value.isascii() and value.isdigit():
                return min(int(value), asked)
    try:
        header = response.expires
    except SipError:
        header = None
    return asked if header is None else min(header, asked)


def _with_port(uri: SipUri) -> SipUri:
    """``uri`` with its port written out (5061 for sips: or TLS, else 5060)."""
    if uri.port is not None:
        return uri
    return replace(uri, port=5061 if uri.secure or uri.transport == "tls" else 5060)


def _retry_after(response: Response | None) -> float:
    """The seconds a response's Retry-After asks for (0: none, or unreadable),
    at most :data:`MAX_RETRY_AFTER`."""
    if response is None:
        return 0.0
    try:
        retry = response.retry_after
    except SipError:
        return 0.0
    return 0.0 if retry is None else float(min(retry.seconds, MAX_RETRY_AFTER))


#: Why a REGISTER got no response, as the endpoint says it, in words.
_NO_RESPONSE: Final = {
    "timeout": "no response from the registrar",
    "transport": "the connection to the registrar was lost",
}

#: The longest Min-Expires a 423 may make a line ask for (a day): past
#: that, the registrar's answer is taken as the failure it amounts to.
MAX_MIN_EXPIRES: Final = 86_400


def _min_expires(response: Response) -> int | None:
    """A 423's Min-Expires, if it is a number of seconds a line can ask for."""
    value = (response.get("Min-Expires") or "").strip()
    if value.isascii() and value.isdigit() and 0 < int(value) <= MAX_MIN_EXPIRES:
        return int(value)
    return None
