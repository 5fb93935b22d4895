"""The emulated phone: what an SPA does with what the network sends it.

One :class:`PhoneHost` runs any number of phones (a single ``phonecast
phone`` or a ``phonecast fleet`` of thousands) on ONE
:class:`~phonecast.net.endpoint.SipEndpoint`: one UDP socket per line, one
transaction table, one timer heap, one HTTP client, and a digest authority
per distinct realm, algorithm and nonce lifetime (``authorities.py``).
Requests are dispatched by the local address they arrived on.

XML-Service NOTIFY, as the seed describes it: without valid credentials the
phone answers 401 with a fresh ``qop="auth"`` challenge (``stale=true`` when
only the nonce expired), without a server transaction (RFC 3261 8.2.7: a
flood of unauthenticated pushes costs no state); a response computed for
another line, a replayed nonce count or a wrong password is refused and the
event log says which.
Accepted, it answers 200 *then* acts: a URL body is fetched and shown; a
CiscoIPPhoneExecute runs its items by priority (0 now, 1 when idle, 2 only
if idle); any other body (:mod:`phonecast.phone.bodies`) is still answered
200 and reported as CiscoIPPhoneError 1, as the phone would.  A
retransmitted accepted NOTIFY never reaches this code (its transaction
absorbs it), so it never fetches twice.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from collections.abc import Callable
from typing import Any, Final

from phonecast.credentials import redact_uri
from phonecast.net.endpoint import DEFAULT_MAX_SERVER_TRANSACTIONS, ServerHandle, SipEndpoint
from phonecast.net.limits import DEFAULT_STREAM_LIMITS, StreamLimits
from phonecast.net.transport import Address, Flow
from phonecast.phone.authorities import DigestAuthorities, credentials_for_realm
from phonecast.phone.call_driver import CallDriver
from phonecast.phone.calls import ALLOW_HANDLED, CallAgent, CallSettings
from phonecast.phone.config import (
    ACCEPTED_EVENTS,
    ALLOW_EVENTS,
    PhoneConfig,
    source_spelling,
)
from phonecast.phone.events import EventLog
from phonecast.phone.fetcher import Fetcher, PageFetcher
from phonecast.phone.pushes import Pushes
from phonecast.phone.registration import Registrations
from phonecast.phone.state import LineState, PhoneState
from phonecast.sip import (
    DEFAULT_TIMERS,
    Request,
    SipError,
    SipUri,
    Timers,
    UasPolicy,
    error_response,
    make_response,
    new_tag,
)
from phonecast.sip.digest import DigestServer, compute_ha1
from phonecast.sip.validate import unsupported_body

#: What the emulated phone accepts in requests (bodies it reads, schemes...;
#: ``replaces``, RFC 3891, which it lists in Supported as the SPA does).  A
#: NOTIFY's body type is the setting's ``notify_types`` to check, once the
#: NOTIFY is authenticated: the phone is not known to check it at all; an
#: INFO's is not checked (DTMF comes as application/dtmf-relay, and legacy
#: INFO bodies are whatever the peer's application sends, RFC 6086).
PHONE_POLICY: Final = UasPolicy(
    extensions=frozenset({"replaces"}),
    own_body_methods=frozenset({"NOTIFY", "INFO"}),
    body_types=frozenset(
        {
            "application/sdp",
            "text/html",
            "text/plain",
            "text/xml",
            "application/xml",
            "multipart/mixed",
        }
    ),
)


#: SIP methods of the IANA registry the phone does not take: 405 with
#: Allow; any other method it does not handle is not recognised (501).
KNOWN_METHODS: Final = frozenset({"MESSAGE", "PRACK", "PUBLISH", "REGISTER", "SUBSCRIBE"})


class PhoneHost:
    """Phones on one endpoint (see the module docstring)."""

    def __init__(
        self,
        *,
        events: EventLog | None = None,
        fetcher: PageFetcher | None = None,
        digest: DigestServer | None = None,
        rng: random.Random | None = None,
        on_screen: Callable[[PhoneState], None] | None = None,
        max_server_transactions: int = DEFAULT_MAX_SERVER_TRANSACTIONS,
        server_ssl: ssl.SSLContext | None = None,
        call_timers: Timers = DEFAULT_TIMERS,
        client_ssl: ssl.SSLContext | None = None,
        stream_limits: StreamLimits = DEFAULT_STREAM_LIMITS,
    ) -> None:
        """``server_ssl`` (the certificate the phones present) is needed by
        phones whose settings ask for TLS; ``client_ssl`` checks a registrar
        reached over TLS (default: the system's trust store); ``call_timers`` are the RFC 3261
        timers of the phones' own calls (2xx resends until the ACK: tests
        shorten them); ``stream_limits`` bound what TCP and TLS peers hold."""
        self.stream_limits = stream_limits
        self.events = events or EventLog()
        self.server_ssl = server_ssl
        self.client_ssl = client_ssl
        self.call_timers = call_timers
        #: Passed to the endpoint: its bound on live transactions (503 past it).
        self.max_server_transactions = max_server_transactions
        #: What the phones do with accepted XML-Service pushes (its fetcher,
        #: its bound on fetches waiting, its screen callback).
        self.pushes = Pushes(self.events, fetcher or Fetcher(), self._report_fault, on_screen)
        self._digest = digest
        self._digests = DigestAuthorities()
        self.rng = rng or random.Random()
        self.endpoint: SipEndpoint | None = None
        self.lines: dict[Address, LineState] = {}
        self.phones: dict[str, PhoneState] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: INVITE, CANCEL, BYE, ACK and REFER on the network (made with the endpoint).
        self._calls: CallDriver | None = None
        #: Each line's registration, kept up (made with the endpoint).
        self._registrations: Registrations | None = None
        #: (transport, user) -> the line registered over a stream transport
        #: as that user (see _line_by_uri); the first one registered, should
        #: two phones of a host share a user (their registrar could not tell
        #: them apart on one connection either).
        self._registered_over: dict[tuple[str, str], LineState] = {}

    async def start(self) -> None:
        """Create the endpoint (call before :meth:`add_phone`)."""
        self.endpoint = SipEndpoint(
            handler=self._on_request,
            policy=PHONE_POLICY,
            max_server_transactions=self.max_server_transactions,
            server_ssl=self.server_ssl,
            client_ssl=self.client_ssl,
            stream_limits=self.stream_limits,
        )
        self.endpoint.on_refused = self._on_refused
        self.pushes.start(self.endpoint)
        self._calls = CallDriver(
            self.endpoint,
            self._respond,
            self.events,
            self.call_timers,
            on_call_over=self.pushes.run_deferred,
            on_call_placed=self.pushes.dial,
        )
        self._registrations = Registrations(
            self.endpoint, self.events, self._spawn, self._registration_call_id, self.rng
        )

    def digest_for(self, phone: PhoneConfig) -> DigestServer:
        """The digest authority for ``phone``'s settings (or the one given
        to the host, for all): see :class:`DigestAuthorities`."""
        return self._digest or self._digests.for_settings(phone.settings)

    async def add_phone(self, config: PhoneConfig) -> PhoneState:
        """Bind every line of ``config`` and start answering."""
        assert self.endpoint is not None, "call start() first"
        digest = self.digest_for(config)
        shown = f"[{config.host}]" if ":" in config.host else config.host
        first_port = config.lines[0].port
        calls = CallAgent(
            f"<sip:{config.lines[0].user}@{shown}:{first_port}>",
            CallSettings(
                mode=config.settings.call_mode,
                media_address=config.host,
                ring_seconds=config.settings.ring_seconds,
            ),
            self.rng,
        )
        phone = PhoneState(config, calls)
        self.phones[config.name] = phone
        restrict = config.settings.restrict_source_ip
        for line in config.lines:
            local = await self.endpoint.listen_udp(config.host, line.port)
            if restrict is not None:
                # One spelling, the kernel's, for the comparison per datagram.
                self.endpoint.restrict_source(local, source_spelling(restrict))
            stream = config.settings.stream_transport
            if stream is not None:
                await self.endpoint.listen_stream(stream, config.host, local[1])
            ha1 = compute_ha1(
                digest.algorithm, line.digest_user, digest.realm, line.password.reveal()
            )
            self.lines[local] = LineState(
                phone, line, ha1, digest, f"{config.name}/{line.user}".encode()
            )
        return phone

    async def register(self, phone: PhoneState) -> list[int | None]:
        """REGISTER each line of ``phone`` at its registrar, answering a digest
        challenge with the line's credentials, and keep them registered
        (see :mod:`phonecast.phone.registration`); returns the final codes."""
        assert self._registrations is not None, "call start() first"
        registrar = phone.config.settings.registrar
        if registrar is None:
            return []
        host, _, port_text = registrar.rpartition(":")
        remote = (host.strip("[]"), int(port_text or 5060))
        transport = phone.config.settings.register_transport
        codes: list[int | None] = []
        for local, line in self.lines.items():
            if line.phone is not phone:
                continue
            if transport != "udp":
                self._registered_over.setdefault((transport, line.config.user), line)
            codes.append(await self._registrations.register(line, local, remote))
        return codes

    def _line_by_uri(self, request: Request, flow: Flow) -> LineState | None:
        """The line a request on a connection the host opened is for: a
        registrar may send a line's requests back over the connection its
        REGISTER came on (RFC 3261 18.2.2's reuse), which is no line's
        address; the Request-URI's user names the line, among those that
        register over that transport.  A caller's in-dialog requests name the
        line's Contact, its own address, and may come over a connection the
        host opened to send a response (RFC 3261 18.2.2: the caller had
        closed the one its INVITE came on): the URI's user, host and port
        say which."""
        uri = request.uri
        if flow.connection is None or not isinstance(uri, SipUri):
            return None
        if uri.port is not None:
            lines = self.lines
            named = (
                lines.get((uri.host.strip("[]"), uri.port))
                or lines.get(("0.0.0.0", uri.port))
                or lines.get(("::", uri.port))
            )
            if named is not None and self._reachable_over(named, uri, flow):
                return named
        return self._registered_over.get((flow.transport, uri.user or ""))

    @staticmethod
    def _reachable_over(line: LineState, uri: SipUri, flow: Flow) -> bool:
        """Whether ``line``, named by a request's ``uri``, may take it on a
        connection the host opened: its user, a stream transport it takes,
        and its Restrict_Source_IP (checked here: the endpoint's check is by
        local address, and this connection's is not the line's)."""
        settings = line.phone.config.settings
        if line.config.user != uri.user:
            return False
        if flow.transport != settings.stream_transport:
            return False
        restrict = settings.restrict_source_ip
        return restrict is None or source_spelling(restrict) == flow.remote[0]

    def _registration_call_id(self, user: str, local: Address) -> str:
        return f"reg-{user}-{self.rng.getrandbits(48):012x}@{local[0]}"

    async def close(self) -> None:
        """Stop everything."""
        if self._calls is not None:
            self._calls.close()
        if self._registrations is not None:
            self._registrations.close()
        for task in list(self._tasks):
            task.cancel()
        if self.endpoint is not None:
            await self.endpoint.close()
        await self.pushes.close()
        self.events.close()

    # ---------------------------------------------------------------- requests
    def _on_refused(self, flow: Flow, status_code: int, why: str) -> None:
        """A message the endpoint refused or dropped before the phone saw it
        (Restrict_Source_IP, malformed, unsupported, overloaded): an event,
        so that what the phone never acted on is visible too.  Only counted
        when nobody reads events (a flood must not cost a detailed event each)."""
        kind = "refused" if status_code else "dropped"
        if not self.events.detailed:
            self.events.count(kind)
            return
        line = self.lines.get(flow.local)
        phone = line.phone.config.name if line is not None else ""
        source = f"{flow.remote[0]}:{flow.remote[1]}"
        if why == "restricted-source":
            self.events.emit("dropped", phone=phone, reason="restrict-source-ip", source=source)
        elif status_code:
            self.events.emit("refused", phone=phone, code=status_code, reason=why, source=source)
        else:
            self.events.emit("dropped", phone=phone, reason=why, source=source)

    def _on_request(self, request: Request, handle: ServerHandle | None, flow: Flow) -> None:
        line = self.lines.get(flow.local)
        if line is None:
            line = self._line_by_uri(request, flow)
        if line is None:
            # Only a connection the host opened (to its registrar) arrives
            # at no line's address: a request there names no line of ours.
            if handle is not None:
                handle.respond(make_response(request, 404, to_tag=new_tag()))
            return
        phone = line.phone
        events = self.events
        if events.detailed:
            events.emit(
                "request",
                phone=phone.config.name,
                line=line.config.user,
                method=request.method,
                source=f"{flow.remote[0]}:{flow.remote[1]}",
                transport=flow.transport,
            )
        else:
            events.count("request")
        method = request.method
        driver = self._calls
        assert driver is not None
        if method == "ACK":
            driver.on_ack(phone.calls, request)
            return
        assert handle is not None
        if method == "NOTIFY":
            self._on_notify(line, request, handle)
            return
        calls = phone.calls
        if method == "INVITE":
            driver.on_invite(line, request, handle)
            return
        if method == "CANCEL":
            driver.on_cancel(line, request, handle)
            return
        if method == "BYE":
            driver.on_bye(line, request, handle)
            return
        if method == "REFER":
            driver.on_refer(line, request, handle)
            return
        if method == "UPDATE":
            responses = [calls.on_update(request)]
        elif method == "OPTIONS":
            responses = [calls.on_options(request)]
        elif method == "INFO":
            responses = [calls.on_info(request)]
        else:
            # A method the phone knows of but does not take is 405 with
            # Allow (RFC 3261 8.2.1), one it does not know of 501 (21.5.2).
            # Outside a dialog it needs a To tag like any final response
            # (8.2.6.2); make_response keeps the request's own.
            if method in KNOWN_METHODS:
                allow = [("Allow", ALLOW_HANDLED)]
                responses = [make_response(request, 405, to_tag=new_tag(), headers=allow)]
            else:
                responses = [make_response(request, 501, to_tag=new_tag())]
        for resp in responses:
            self._respond(line, handle, resp)

    def _respond(
        self, line: LineState, handle: ServerHandle, response: Any, *, stateless: bool = False
    ) -> None:
        if stateless:
            handle.respond_statelessly(response)
        else:
            handle.respond(response)
        events = self.events
        if not events.detailed:
            events.count("response")
            return
        events.emit(
            "response",
            phone=line.phone.config.name,
            line=line.config.user,
            method=handle.request.method,
            code=response.status_code,
        )

    def _on_notify(self, line: LineState, request: Request, handle: ServerHandle) -> None:
        phone = line.phone
        name = phone.config.name
        event = request.event
        package = event.package.lower() if event is not None else None
        if package not in ACCEPTED_EVENTS:
            bad_event = make_response(
                request, 489, to_tag=new_tag(), headers=[("Allow-Events", ALLOW_EVENTS)]
            )
            self._respond(line, handle, bad_event)
            return
        settings = phone.config.settings
        if settings.notify_reject is not None:
            reject = make_response(request, settings.notify_reject, to_tag=new_tag())
            if settings.notify_reject == 503:
                reject = reject.with_header("Retry-After", "1")
            self._respond(line, handle, reject)
            return
        if len(request.body) > settings.max_body:
            self._respond(line, handle, make_response(request, 413, to_tag=new_tag()))
            return
        if settings.auth_notify and not self._authenticated(line, request, handle):
            return
        refused = _unlisted_type(request, settings.notify_types)
        if refused is not None:
            self._respond(line, handle, refused)
            return
        self._respond(line, handle, make_response(request, 200, to_tag=new_tag()))
        if package == "xml-service":
            # Answered first, acted on now: a fetch is started, not awaited,
            # so no task or queue stands between the push and the phone.
            try:
                self.pushes.xml_service(phone, line.config.user, request.body)
            except Exception as exc:  # the push was accepted: report, go on
                self._report_fault(exc)
        else:
            # Its parameters too: check-sync;reboot=true is a reboot, not a
            # resync (the field guide's Yealink and Snom spelling).
            assert event is not None
            action = package + "".join(
                f";{name}" if value is None else f";{name}={_redacted_param(value)}"
                for name, value in event.params
            )
            phone.actions.append(action)
            self.events.emit("action", phone=name, line=line.config.user, action=action)

    def _authenticated(self, line: LineState, request: Request, handle: ServerHandle) -> bool:
        assert self.endpoint is not None
        digest = line.digest
        now = self.endpoint.now()
        name = line.phone.config.name
        try:
            creds = request.authorization
        except SipError:
            creds = None
        if creds is None or creds.realm != digest.realm:
            # RFC 3261 22.3: one Authorization per realm.  The first one
            # only was read, and credentials for another realm before the
            # phone's own (or a first one that does not parse) got a 401.
            creds = credentials_for_realm(request, digest.realm) or creds
        if creds is None:
            reason, stale = "no-credentials", False
        else:
            verdict = digest.verify(
                creds,
                method=request.method,
                now=now,
                ha1=line.ha1,
                expected_user=line.config.digest_user,
                bind=line.bind,
                body=request.body,
                # Compared only in strict mode: skip writing the URI otherwise.
                expected_uri=str(request.uri) if digest.strict_uri else None,
            )
            if verdict.ok:
                self._auth_event(name, line, True, "ok")
                return True
            reason, stale = verdict.reason, verdict.stale
        self._auth_event(name, line, False, reason)
        challenge = digest.challenge_text(now, bind=line.bind, stale=stale)
        # Without a transaction (RFC 3261 8.2.7, 26.1.5): a flood of pushes
        # without valid credentials must cost the phone no state; a copy of
        # the request gets the same 401 from the endpoint's bounded table.
        unauthorized = make_response(
            request,
            401,
            to_tag=handle.stateless_tag,
            headers=[("WWW-Authenticate", challenge)],
        )
        self._respond(line, handle, unauthorized, stateless=True)
        return False

    def _auth_event(self, phone: str, line: LineState, ok: bool, reason: str) -> None:
        events = self.events
        if events.detailed:
            events.emit("auth", phone=phone, line=line.config.user, ok=ok, reason=reason)
        else:
            events.count("auth")

    # ------------------------------------------------------------ XML-Service
    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """A phone's background work failing must not go unnoticed, nor stop it."""
        self._tasks.discard(task)
        if not task.cancelled():
            exc = task.exception()
            if exc is not None:
                self._report_fault(exc)

    def _report_fault(self, exc: BaseException) -> None:
        """A phone's background work failing must not go unnoticed."""
        self.events.emit("internal_error", error=f"{type(exc).__name__}: {exc}"[:300])


def _unlisted_type(request: Request, types: frozenset[str] | None) -> Any:
    """The 415 for a NOTIFY whose body is of a type not in ``types`` (None:
    any type, as the phone is not known to check), else None."""
    if types is None or not request.body:
        return None
    try:
        ctype = request.content_type
    except SipError:
        ctype = None
    if ctype is not None and ctype.mime in types:
        return None
    refusal = unsupported_body(ctype.mime if ctype is not None else None, types)
    return error_response(request, refusal, to_tag=new_tag())


def _redacted_param(value: str) -> str:
    """An Event parameter's value with any URL password in it as ``***``
    (a quoted one redacted inside its quotes)."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return f'"{redact_uri(value[1:-1])}"'
    return redact_uri(value)
