"""Push one NOTIFY to one phone line, answer its challenge, report what happened.

Theory of operation
-------------------
1. Locate: the target URI (RFC 3263: NAPTR, SRV, A/AAAA; numeric host or
   explicit port skip SRV) or, with an outbound proxy, the Cisco host list of
   the proxy, gives an ordered list of transport targets.
2. For each target in turn: send the NOTIFY (new Call-ID, From tag, CSeq 1).
   A 401/407 is answered once with digest credentials computed by the core
   (CSeq 2, same Call-ID and tag, new branch).  A second challenge is
   answered again only if it says ``stale=true`` (the nonce expired, the
   password was right) and only once per fresh challenge: no loops.
3. A timeout, a transport failure or a 503 moves on to the next target
   (RFC 3263 4.3); any other final response ends the push.

The :class:`Outcome` names one of ``delivered`` (2xx), ``auth_rejected``
(challenged again without stale, or 403 after credentials), ``rejected``
(another final response), ``timeout`` (no answer from any target) or
``unreachable`` (no target could be located or connected), with the code,
the reason, every target tried and timings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Final

from phonecast.credentials import Secret
from phonecast.net.endpoint import SipEndpoint
from phonecast.push.payload import Payload, PayloadError, check_header_value
from phonecast.sip import Request, Response, SipError, SipUri, token_hex
from phonecast.sip.digest import DigestAnswers

#: RFC 3261 18.1.1: a UDP request within 200 octets of the path MTU (1500)
#: must go over a congestion-controlled transport instead.
UDP_LIMIT: Final = 1300

STATUSES: Final = ("delivered", "auth_rejected", "rejected", "timeout", "unreachable")


@dataclass(frozen=True, slots=True, init=False)
class Attempt:
    """One target tried: where, what came back, how long it took."""

    target: str
    code: int | None
    result: str
    elapsed_ms: float

    # Written out, as the core's values are: the generated __init__ stays
    # interpreted in the compiled build (tests/sip/test_values.py keeps the
    # parameters in step with the fields).
    def __init__(self, target: str, code: int | None, result: str, elapsed_ms: float) -> None:
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "result", result)
        object.__setattr__(self, "elapsed_ms", elapsed_ms)


@dataclass(frozen=True, slots=True, init=False)
class Outcome:
    """The result of one push."""

    status: str
    code: int | None = None
    reason: str | None = None
    target: str | None = None
    tried: tuple[Attempt, ...] = ()
    requests: int = 0
    challenged: bool = False
    elapsed_ms: float = 0.0
    detail: str = ""

    def __init__(
        self,
        status: str,
        code: int | None = None,
        reason: str | None = None,
        target: str | None = None,
        tried: tuple[Attempt, ...] = (),
        requests: int = 0,
        challenged: bool = False,
        elapsed_ms: float = 0.0,
        detail: str = "",
    ) -> None:
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "reason", reason)
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "tried", tried)
        object.__setattr__(self, "requests", requests)
        object.__setattr__(self, "challenged", challenged)
        object.__setattr__(self, "elapsed_ms", elapsed_ms)
        object.__setattr__(self, "detail", detail)

    @property
    def delivered(self) -> bool:
        """True for a 2xx: the phone accepted the NOTIFY (not yet proof it acted)."""
        return self.status == "delivered"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (``phonecast push --json``)."""
        return {
            "outcome": self.status,
            "code": self.code,
            "reason": self.reason,
            "target": self.target,
            "targets_tried": [
                {
                    "target": a.target,
                    "code": a.code,
                    "result": a.result,
                    "elapsed_ms": round(a.elapsed_ms, 3),
                }
                for a in self.tried
            ],
            "requests": self.requests,
            "challenged": self.challenged,
            "elapsed_ms": round(self.elapsed_ms, 3),
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class Destination:
    """Where to send: transport, address, and the name for TLS checks."""

    transport: str
    host: str
    port: int
    server_name: str | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"


@dataclass
class PushOptions:
    """Everything about a push except the target, credentials and payload."""

    proxy: str | None = None
    transport: str | None = None
    timeout: float = 8.0
    subscription_state: str | None = None
    from_user: str = "phonecast"
    user_agent: str = "phonecast/0.1"
    extra_headers: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Refuse, where the options are made, a value that would break out
        of its header (a CR/LF starts a header of the caller's choosing)."""
        if self.subscription_state is not None:
            check_header_value("Subscription-State", self.subscription_state)
        check_header_value("From user", self.from_user)
        check_header_value("User-Agent", self.user_agent)
        for name, value in self.extra_headers:
            if not name or any(c in name for c in " \t:") or not name.isascii():
                raise PayloadError(f"{name!r} is not a header name")
            check_header_value("a header name", name)
            check_header_value(name, value)


class Pusher:
    """Pushes NOTIFYs through one :class:`SipEndpoint`."""

    def __init__(self, endpoint: SipEndpoint, *, resolver: Any = None) -> None:
        self.endpoint = endpoint
        self.resolver = resolver

    async def push(
        self,
        target: SipUri,
        password: Secret,
        payload: Payload,
        *,
        user: str | None = None,
        options: PushOptions | None = None,
        destinations: list[Destination] | None = None,
    ) -> Outcome:
        """Push ``payload`` to the line ``target``; never raises for network
        trouble (that is an :class:`Outcome`).  A password in ``target``'s
        userinfo is dropped, never sent."""
        opts = options or PushOptions()
        start = time.monotonic()
        # A password in the target's userinfo never leaves (RFC 3261 19.1.1):
        # the Request-URI, the To and the digest's uri would all carry it in
        # clear.  The line is the same without it; the digest's password is
        # the ``password`` argument.
        target = target.without_password()
        auth_user = user or target.user_unescaped or ""
        try:
            dests = destinations if destinations is not None else await self.locate(target, opts)
        except (OSError, SipError, ValueError) as exc:
            return Outcome(
                "unreachable", detail=f"cannot locate {target.host}: {exc}", elapsed_ms=_ms(start)
            )
        if not dests:
            return Outcome(
                "unreachable", detail=f"no target found for {target.host}", elapsed_ms=_ms(start)
            )
        tried: list[Attempt] = []
        requests = 0
        challenged = False
        why_last = ""  # what the last target's failure said, if anything
        for dest in dests:
            t0 = time.monotonic()
            result = await self._exchange(target, dest, auth_user, password, payload, opts)
            requests += result.requests
            challenged = challenged or result.challenged
            tried.append(Attempt(str(dest), result.code, result.kind, _ms(t0)))
            if result.kind in ("timeout", "transport") or result.code == 503:
                why_last = f"; {dest}: {result.detail}" if result.detail else ""
                continue  # RFC 3263 4.3: try the next target
            return Outcome(
                result.status,
                result.code,
                result.reason,
                str(dest),
                tuple(tried),
                requests,
                challenged,
                _ms(start),
                result.detail,
            )
        all_silent = all(a.result == "timeout" for a in tried)
        last = tried[-1]
        status = "timeout" if all_silent else ("rejected" if last.code == 503 else "unreachable")
        return Outcome(
            status,
            last.code,
            None if last.code is None else "Service Unavailable",
            None,
            tuple(tried),
            requests,
            challenged,
            _ms(start),
            ("no target answered" if all_silent else "every target failed") + why_last,
        )

    async def locate(self, target: SipUri, opts: PushOptions) -> list[Destination]:
        """Transport targets for ``target`` (or for the outbound proxy)."""
        from phonecast.net.locate import locate, locate_host_list, secure_transport

        if opts.proxy:
            # TLS to the proxy too: the host list's default, UDP, sent a
            # sips: push in clear to the first hop.
            transport = secure_transport(opts.transport) if target.secure else opts.transport
            found = await locate_host_list(opts.proxy, transport=transport, resolver=self.resolver)
        else:
            found = await locate(target, transport=opts.transport, resolver=self.resolver)
        return [
            Destination(t.transport, t.host, t.port, getattr(t, "server_name", None)) for t in found
        ]

    # ------------------------------------------------------------- exchange
    async def _exchange(
        self,
        target: SipUri,
        dest: Destination,
        user: str,
        password: Secret,
        payload: Payload,
        opts: PushOptions,
    ) -> _Result:
        random_hex = token_hex(16)  # one draw for both: 80 + 48 bits
        call_id = f"{random_hex[:20]}@phonecast"
        from_tag = random_hex[20:]
        route = _route_for(dest) if opts.proxy else None
        cseq = 1
        requests = 0
        challenged = False
        # Authorization for the phone (401) and Proxy-Authorization for an
        # authenticating outbound proxy (407, RFC 3261 22.3): a push through
        # such a proxy answers both, and sends both from then on.  One header
        # once stood for either, and the phone's 401 after the proxy's 407
        # was reported as the phone refusing the credentials.
        answers = DigestAnswers(user, password.reveal())
        while True:
            request, transport = self._build(
                target, dest, payload, opts, call_id, from_tag, cseq, route, answers.headers
            )
            try:
                response, why = await self.endpoint.request(
                    request,
                    transport,
                    (dest.host, dest.port),
                    server_hostname=dest.server_name or target.hostname,
                    timeout=opts.timeout,
                )
            except TimeoutError:  # opening a stream connection timed out
                return _Result("timeout", requests=requests, challenged=challenged)
            except (OSError, ValueError) as exc:  # ValueError: a transport not spoken
                return _Result(
                    "transport",
                    requests=requests,
                    challenged=challenged,
                    detail=f"{type(exc).__name__}: {exc}",
                )
            requests += 1
            if response is None:
                return _Result(
                    "timeout" if why == "timeout" else "transport",
                    requests=requests,
                    challenged=challenged,
                )
            code = response.status_code
            if code in (401, 407):
                # Each one's fresh challenge answered once, a stale one once
                # more: no loops (four requests more at most).
                try:
                    taken = answers.answer(response, request)
                except SipError as exc:
                    return _auth_rejected(response, requests, f"cannot answer the challenge: {exc}")
                if not taken:
                    who = "phone" if code == 401 else "proxy"
                    return _auth_rejected(response, requests, f"the {who} refused the credentials")
                challenged = True
                cseq += 1
                continue
            if 200 <= code < 300:
                return _Result("final", code, response.reason, "delivered", requests, challenged)
            status = "auth_rejected" if code == 403 and answers.headers else "rejected"
            return _Result("final", code, response.reason, status, requests, challenged)

    def _build(
        self,
        target: SipUri,
        dest: Destination,
        payload: Payload,
        opts: PushOptions,
        call_id: str,
        from_tag: str,
        cseq: int,
        route: str | None,
        authorization: dict[str, str],
    ) -> tuple[Request, str]:
        def build(transport: str) -> Request:
            return self._request(
                target, transport, payload, opts, call_id, from_tag, cseq, route, authorization
            )

        transport = dest.transport
        request = build(transport)
        if transport == "udp" and len(bytes(request)) > UDP_LIMIT:
            transport = "tcp"  # RFC 3261 18.1.1
            request = build(transport)
        return request, transport

    def _request(
        self,
        target: SipUri,
        transport: str,
        payload: Payload,
        opts: PushOptions,
        call_id: str,
        from_tag: str,
        cseq: int,
        route: str | None,
        authorization: dict[str, str],
    ) -> Request:
        ep = self.endpoint
        via = ep.top_via(transport)
        sent_by = f"{via.host}:{via.port}"  # the same address, worked out once
        headers: list[tuple[str, str]] = [("Via", str(via))]
        if route is not None:
            headers.append(("Route", route))
        headers += [
            ("Max-Forwards", "70"),
            ("From", f"<sip:{opts.from_user}@{sent_by}>;tag={from_tag}"),
            ("To", _to_value(target)),
            ("Call-ID", call_id),
            ("CSeq", f"{cseq} NOTIFY"),
            ("Contact", f"<sip:{opts.from_user}@{sent_by};transport={transport}>"),
            ("Event", payload.event),
        ]
        if opts.subscription_state:
            headers.append(("Subscription-State", opts.subscription_state))
        headers.append(("User-Agent", opts.user_agent))
        headers += opts.extra_headers
        headers += authorization.items()
        if payload.body and payload.content_type:
            headers.append(("Content-Type", payload.content_type))
        headers.append(("Content-Length", str(len(payload.body))))
        # Built in one go: with_body() would copy the message once per header.
        # The top Via is known already: matching must not parse it back.
        return Request("NOTIFY", target, headers, payload.body).prime_top_via(via)


_TO_VALUES: Final[dict[tuple[object, ...], str]] = {}


def _to_value(target: SipUri) -> str:
    """The To of a push: the target without the parameters that only steer
    routing (RFC 3261 8.1.1.2 / 19.1.1).  Cached by the URI's exact fields
    (not by 19.1.4 equality, which would swap in an equivalent spelling): a
    campaign reuses targets, and each push sends the value twice."""
    key = (target.scheme, target.user, target.password, target.host, target.port,
           target.params, target.headers)  # fmt: skip
    value = _TO_VALUES.get(key)
    if value is None:
        value = f"<{target.without_params('transport', 'maddr', 'lr', 'method', 'ttl')}>"
        if len(_TO_VALUES) >= 4096:
            _TO_VALUES.clear()
        _TO_VALUES[key] = value
    return value


@dataclass(frozen=True, slots=True, init=False)
class _Result:
    kind: str  # final | timeout | transport
    code: int | None = None
    reason: str | None = None
    status: str = "timeout"
    requests: int = 0
    challenged: bool = False
    detail: str = ""

    def __init__(
        self,
        kind: str,
        code: int | None = None,
        reason: str | None = None,
        status: str = "timeout",
        requests: int = 0,
        challenged: bool = False,
        detail: str = "",
    ) -> None:
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "reason", reason)
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "requests", requests)
        object.__setattr__(self, "challenged", challenged)
        object.__setattr__(self, "detail", detail)


def _auth_rejected(response: Response, requests: int, detail: str) -> _Result:
    return _Result(
        "final", response.status_code, response.reason, "auth_rejected", requests, True, detail
    )


def _ms(start: float) -> float:
    return (time.monotonic() - start) * 1000.0


def _route_for(dest: Destination) -> str:
    host = f"[{dest.host}]" if ":" in dest.host else dest.host
    tp = "" if dest.transport == "udp" else f";transport={dest.transport}"
    return f"<sip:{host}:{dest.port}{tp};lr>"
