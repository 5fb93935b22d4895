"""The phone's settings and what the field guide says it answers, each seen
over the network: a real UDP (or TCP) exchange with a running PhoneHost.

The digest server has unit tests of its own; these check that the emulator
wires each setting through (Auth_Resync-Reboot, algorithm, realm, nonce
lifetime, strict uri, auth id) and that what it sends is what an SPA sends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from phonecast.ciscoxml import Text, to_xml
from phonecast.content import ContentServer
from phonecast.credentials import Secret
from phonecast.net.limits import DEFAULT_STREAM_LIMITS, StreamLimits
from phonecast.phone.config import ACCEPTED_EVENTS, LineConfig, PhoneConfig, PhoneSettings
from phonecast.phone.emulator import PhoneHost
from phonecast.phone.events import EventLog
from phonecast.phone.fetcher import DEFAULT_MAX_BYTES
from phonecast.sip import Request, Response, SipUri, new_branch, new_tag, parse_message
from phonecast.sip.digest import Challenge, DigestClient, parse_challenges
from tests.interop.peers import emulated_phone
from tests.ports import free_ports
from tests.waiting import until

#: A pause for what should not happen (a second fetch) to show if it would;
#: what should happen is waited for with tests.waiting.until instead.
SETTLE = 0.3
#: What FIELD-GUIDE.md says SPA phones advertise (SPA303 / SPA525G traces).
GUIDE_ALLOW = ["ACK", "BYE", "CANCEL", "INFO", "INVITE", "NOTIFY", "OPTIONS", "REFER", "UPDATE"]
GUIDE_SUPPORTED = ["replaces"]


@dataclass
class Phone:
    """One emulated phone ("desk", lines 1001 and 1002) and a UDP peer."""

    host: PhoneHost
    events: list[dict[str, Any]]
    ports: tuple[int, int]
    sock: socket.socket
    content: ContentServer

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind]

    async def until(self, kind: str, count: int, wait: float = 5.0) -> list[dict[str, Any]]:
        """The ``kind`` events once there are ``count`` of them (or ``wait`` s)."""
        for _ in range(int(wait / 0.05)):
            if len(self.kinds(kind)) >= count:
                break
            await asyncio.sleep(0.05)
        return self.kinds(kind)

    def auth_reasons(self) -> list[str]:
        return [e["reason"] for e in self.kinds("auth")]

    @property
    def screen(self) -> str:
        return self.host.phones["desk"].screen.render()

    def request(
        self,
        method: str,
        line: int = 0,
        *,
        event: str | None = "XML-Service",
        body: bytes = b"http://127.0.0.1:9/never.xml",
        content_type: str = "text/plain",
    ) -> Request:
        """A new transaction (new branch, Call-ID and tag) to line ``line``."""
        port = self.ports[line]
        user = f"100{line + 1}"
        me = self.sock.getsockname()[1]
        headers = [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:{me};branch={new_branch()}"),
            ("From", f"<sip:tester@127.0.0.1:{me}>;tag={new_tag()}"),
            ("To", f"<sip:{user}@127.0.0.1:{port}>"),
            ("Call-ID", f"{new_tag()}@127.0.0.1"),
            ("CSeq", f"1 {method}"),
            ("Max-Forwards", "70"),
            ("Contact", f"<sip:tester@127.0.0.1:{me}>"),
        ]
        if event is not None and method == "NOTIFY":
            headers.append(("Event", event))
        return Request(method, SipUri("127.0.0.1", user, port=port), headers).with_body(
            body, content_type if body else None
        )

    def notify(self, line: int = 0, **kwargs: Any) -> Request:
        return self.request("NOTIFY", line, **kwargs)

    async def send(self, request: Request, *, wait: float = 2.0) -> Response | None:
        """Send ``request`` to the port its Request-URI names; its first
        response (others' are skipped), or None if none came in ``wait`` s."""
        assert isinstance(request.uri, SipUri) and request.uri.port is not None
        loop = asyncio.get_running_loop()
        self.sock.sendto(bytes(request), ("127.0.0.1", request.uri.port))
        branch = request.via[0].branch
        deadline = loop.time() + wait
        while (left := deadline - loop.time()) > 0:
            try:
                data = await asyncio.wait_for(loop.sock_recv(self.sock, 65535), left)
            except TimeoutError:
                return None
            reply = parse_message(data)
            if isinstance(reply, Response) and reply.via[0].branch == branch:
                return reply
        return None

    async def answer(self, request: Request) -> Response:
        response = await self.send(request)
        assert response is not None, f"no answer to {request.method}"
        return response

    async def challenge(self, line: int = 0, **kwargs: Any) -> tuple[Challenge, Response]:
        """Line ``line``'s challenge to a NOTIFY without credentials."""
        response = await self.answer(self.notify(line, **kwargs))
        assert response.status_code == 401, response.status_code
        return only_challenge(response), response


def only_challenge(response: Response) -> Challenge:
    """The one challenge of a 401, read by the project's digest parser."""
    fields = response.get_all("WWW-Authenticate")
    assert len(fields) == 1, fields
    (challenge,) = parse_challenges(fields[0], "WWW-Authenticate")
    return challenge


def signed(
    request: Request,
    challenge: Challenge,
    user: str,
    password: str,
    *,
    uri: str | None = None,
) -> Request:
    """``request`` with credentials answering ``challenge`` (digest uri:
    the Request-URI unless ``uri`` is given)."""
    creds = DigestClient(user, password).respond(
        challenge, method=request.method, uri=uri or str(request.uri), body=request.body
    )
    return request.with_header("Authorization", str(creds))


PhoneFactory = Callable[..., Awaitable[Phone]]


@pytest.fixture
async def make_phone() -> AsyncIterator[PhoneFactory]:
    """Start phone "desk" with the given settings and lines (default: 1001
    password secret, 1002 password other)."""
    started: list[Phone] = []

    async def start(
        settings: PhoneSettings | None = None,
        *,
        auth_ids: tuple[str | None, str | None] = (None, None),
        stream_limits: StreamLimits = DEFAULT_STREAM_LIMITS,
    ) -> Phone:
        events: list[dict[str, Any]] = []
        log = EventLog()
        log.subscribe(events.append)
        host = PhoneHost(events=log, stream_limits=stream_limits)
        await host.start()
        p1, p2 = free_ports(2)
        lines = (
            LineConfig("1001", Secret("secret"), p1, auth_ids[0]),
            LineConfig("1002", Secret("other"), p2, auth_ids[1]),
        )
        await host.add_phone(PhoneConfig("desk", "127.0.0.1", lines, settings or PhoneSettings()))
        content = ContentServer()
        await content.start()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        phone = Phone(host, events, (p1, p2), sock, content)
        started.append(phone)
        return phone

    yield start
    for phone in started:
        phone.sock.close()
        await phone.content.stop()
        await phone.host.close()


def _page(title: str, text: str = "pushed") -> bytes:
    return to_xml(Text(title, None, (), text))


# ------------------------------------------------------------ Auth_Resync-Reboot
async def test_with_auth_notify_off_a_push_without_credentials_is_answered_and_acted_on(
    make_phone: PhoneFactory,
) -> None:
    """Auth_Resync-Reboot = no: no challenge; the XML-Service URL is fetched
    and shown, and a resync is recorded, though neither carried a digest."""
    phone = await make_phone(PhoneSettings(auth_notify=False))
    url = phone.content.publish("desk", _page("Unchallenged"))
    response = await phone.answer(phone.notify(body=url.encode()))
    assert response.status_code == 200
    assert response.get_all("WWW-Authenticate") == []
    resync = await phone.answer(phone.notify(1, event="resync", body=b""))
    assert resync.status_code == 200
    await until(lambda: "Unchallenged" in phone.screen, what="the page shown")
    assert [e["url"] for e in phone.kinds("fetch_started")] == [url]
    assert phone.content.fetches == 1 and "Unchallenged" in phone.screen
    assert [e["action"] for e in phone.kinds("action")] == ["resync"]
    assert phone.kinds("auth") == []  # nothing was checked


def test_the_no_auth_option_turns_the_challenge_off(tmp_path: Path) -> None:
    """``phonecast phone --no-auth``: the same push, without credentials, is
    answered 200 and a fetch starts (without the option: 401, no fetch)."""
    results = {}
    for extra in ([], ["--no-auth"]):
        (port,) = free_ports(1)
        events = tmp_path / f"events{len(extra)}.jsonl"
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(5)
        me = peer.getsockname()[1]
        wire = (
            f"NOTIFY sip:1001@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKnoauth\r\n"
            f"From: <sip:pc@127.0.0.1>;tag=na\r\nTo: <sip:1001@127.0.0.1:{port}>\r\n"
            "Call-ID: no-auth@127.0.0.1\r\nCSeq: 1 NOTIFY\r\nMax-Forwards: 70\r\n"
            "Event: XML-Service\r\nContent-Type: text/plain\r\n"
            "Content-Length: 28\r\n\r\nhttp://127.0.0.1:9/never.xml"
        ).encode()
        try:
            with emulated_phone(f"1001:secret@{port}", events=events, extra=extra):
                peer.sendto(wire, ("127.0.0.1", port))
                answer = parse_message(peer.recv(65535))
                assert isinstance(answer, Response)
                # With --no-auth, wait for the (refused) fetch to end.
                for _ in range(50):
                    if not extra or "fetch_finished" in events.read_text():
                        break
                    time.sleep(0.1)
        finally:
            peer.close()
        kinds = [json.loads(line)["event"] for line in events.read_text().splitlines()]
        results[bool(extra)] = (answer.status_code, "fetch_started" in kinds)
    assert results == {False: (401, False), True: (200, True)}


# ------------------------------------------------------------ the challenge
@pytest.mark.parametrize("realm", [None, "spa.example.com"])
async def test_the_default_challenge_is_what_the_phones_offer(
    make_phone: PhoneFactory, realm: str | None
) -> None:
    """FIELD-GUIDE: "Challenge offered by phones: MD5, qop=auth", in the
    configured realm; one challenge, nothing else in it (no opaque, domain,
    stale or userhash: the phone sets none)."""
    settings = PhoneSettings() if realm is None else PhoneSettings(realm=realm)
    phone = await make_phone(settings)
    challenge, _ = await phone.challenge()
    assert challenge.is_digest and challenge.scheme == "Digest"
    assert challenge.algorithm == "MD5" and challenge.qop == ("auth",)
    assert challenge.realm == (realm or "phonecast")
    assert challenge.nonce
    assert challenge.opaque is None and challenge.domain is None
    assert not challenge.stale and not challenge.userhash and challenge.params == ()
    # And it can be answered as a phone's challenge is.
    ok = await phone.answer(signed(phone.notify(), challenge, "1001", "secret"))
    assert ok.status_code == 200
    assert phone.auth_reasons() == ["no-credentials", "ok"]


@pytest.mark.parametrize("algorithm", ["SHA-256", "SHA-512-256"])
async def test_a_sha_algorithm_is_offered_verified_and_md5_then_refused(
    make_phone: PhoneFactory, algorithm: str
) -> None:
    """With the SHA setting the 401 names that algorithm (qop="auth"); a
    response computed with it gets 200, an MD5 one to the same challenge 401."""
    phone = await make_phone(PhoneSettings(algorithm=algorithm))
    challenge, _ = await phone.challenge()
    assert challenge.algorithm == algorithm and challenge.qop == ("auth",)
    ok = await phone.answer(signed(phone.notify(), challenge, "1001", "secret"))
    assert ok.status_code == 200
    fresh, _ = await phone.challenge()
    as_md5 = dataclasses.replace(fresh, algorithm="MD5")
    refused = await phone.answer(signed(phone.notify(), as_md5, "1001", "secret"))
    assert refused.status_code == 401
    assert only_challenge(refused).algorithm == algorithm
    assert phone.auth_reasons() == [
        "no-credentials",
        "ok",
        "no-credentials",
        "unsupported-algorithm",
    ]


# ------------------------------------------------------------ nonce lifetime
async def test_an_expired_nonce_is_stale_and_a_fresh_one_works(make_phone: PhoneFactory) -> None:
    phone = await make_phone(PhoneSettings(nonce_lifetime=0.2))
    challenge, _ = await phone.challenge()
    late = signed(phone.notify(), challenge, "1001", "secret")
    await asyncio.sleep(0.35)
    stale = await phone.answer(late)
    assert stale.status_code == 401
    renewed = only_challenge(stale)
    assert renewed.stale and renewed.nonce != challenge.nonce
    assert phone.auth_reasons()[-1] == "stale-nonce"
    # The new nonce, used at once, is good.
    ok = await phone.answer(signed(phone.notify(), renewed, "1001", "secret"))
    assert ok.status_code == 200 and phone.auth_reasons()[-1] == "ok"


async def test_a_nonce_within_its_lifetime_is_not_stale(make_phone: PhoneFactory) -> None:
    """The other side of the lifetime: the same wait with the default
    lifetime (300 s) is no expiry."""
    phone = await make_phone()
    challenge, _ = await phone.challenge()
    request = signed(phone.notify(), challenge, "1001", "secret")
    await asyncio.sleep(0.35)
    assert (await phone.answer(request)).status_code == 200


# ------------------------------------------------------------ strict uri
@pytest.mark.parametrize("strict", [False, True])
async def test_a_digest_uri_other_than_the_request_uri(
    make_phone: PhoneFactory, strict: bool
) -> None:
    """SIPp puts ``sip:<ip>:<port>`` in the digest uri: accepted by default,
    refused with strict-uri (reason uri-mismatch); the Request-URI itself is
    accepted either way."""
    phone = await make_phone(PhoneSettings(strict_uri=strict))
    port = phone.ports[0]
    challenge, _ = await phone.challenge()
    sipp_uri = f"sip:127.0.0.1:{port}"
    response = await phone.answer(signed(phone.notify(), challenge, "1001", "secret", uri=sipp_uri))
    assert response.status_code == (401 if strict else 200)
    assert phone.auth_reasons()[-1] == ("uri-mismatch" if strict else "ok")
    challenge, _ = await phone.challenge()
    exact = await phone.answer(signed(phone.notify(), challenge, "1001", "secret"))
    assert exact.status_code == 200


# ------------------------------------------------------------ auth id, lines
async def test_a_line_with_an_auth_id_wants_it_as_the_digest_username(
    make_phone: PhoneFactory,
) -> None:
    phone = await make_phone(auth_ids=("auth-1001", None))
    challenge, _ = await phone.challenge()
    by_user_id = await phone.answer(signed(phone.notify(), challenge, "1001", "secret"))
    assert by_user_id.status_code == 401
    assert phone.auth_reasons()[-1] == "wrong-user"
    challenge, _ = await phone.challenge()
    by_auth_id = await phone.answer(signed(phone.notify(), challenge, "auth-1001", "secret"))
    assert by_auth_id.status_code == 200 and phone.auth_reasons()[-1] == "ok"


async def test_a_response_computed_for_line_1001_does_not_open_line_1002(
    make_phone: PhoneFactory,
) -> None:
    """Whether the 1001 push is re-addressed to 1002 as it is (1001's nonce)
    or 1002's own challenge is answered with 1001's credentials, line 1002
    refuses it, and the auth event says the user is the wrong one."""
    phone = await make_phone()
    challenge, _ = await phone.challenge(0)
    for_1001 = signed(phone.notify(0), challenge, "1001", "secret")
    readdressed = for_1001.with_uri(SipUri("127.0.0.1", "1002", port=phone.ports[1]))
    readdressed = readdressed.with_first_header_replaced(
        "Via", f"SIP/2.0/UDP 127.0.0.1:{phone.sock.getsockname()[1]};branch={new_branch()}"
    )
    refused = await phone.answer(readdressed)
    assert refused.status_code == 401
    events = phone.kinds("auth")
    assert (events[-1]["line"], events[-1]["ok"], events[-1]["reason"]) == (
        "1002",
        False,
        "wrong-user",
    )
    challenge_1002, _ = await phone.challenge(1)
    answered = await phone.answer(signed(phone.notify(1), challenge_1002, "1001", "secret"))
    assert answered.status_code == 401
    events = phone.kinds("auth")
    assert (events[-1]["line"], events[-1]["reason"]) == ("1002", "wrong-user")
    # 1001's push itself, never sent, still opens 1001.
    assert (await phone.answer(for_1001)).status_code == 200
    await asyncio.sleep(SETTLE)
    assert len(phone.kinds("fetch_started")) == 1


# ------------------------------------------------------------ events
@pytest.mark.parametrize("token", ["xml-service", "XML-SERVICE", "Xml-Service"])
async def test_the_xml_service_token_is_compared_without_case(
    make_phone: PhoneFactory, token: str
) -> None:
    phone = await make_phone()
    url = phone.content.publish("desk", _page(f"Pushed as {token}"))
    challenge, _ = await phone.challenge(event=token, body=url.encode())
    ok = await phone.answer(
        signed(phone.notify(event=token, body=url.encode()), challenge, "1001", "secret")
    )
    assert ok.status_code == 200
    await until(lambda: f"Pushed as {token}" in phone.screen, what="the page shown")
    assert [e["url"] for e in phone.kinds("fetch_started")] == [url]


@pytest.mark.parametrize(
    ("token", "action"),
    [
        ("resync", "resync"),
        ("reboot_now", "reboot_now"),
        ("restart_now", "restart_now"),
        ("report", "report"),
        ("check-sync", "check-sync"),
        ("Check-Sync;reboot=true", "check-sync;reboot=true"),  # a reboot, not a resync
        ("RESYNC", "resync"),
    ],
)
async def test_the_sibling_events_are_challenged_accepted_and_recorded(
    make_phone: PhoneFactory, token: str, action: str
) -> None:
    """Auth_Resync-Reboot challenges these as it does XML-Service; accepted,
    each is recorded as an action naming it, with its parameters (and
    nothing is fetched)."""
    phone = await make_phone()
    challenge, _ = await phone.challenge(event=token, body=b"")
    ok = await phone.answer(
        signed(phone.notify(event=token, body=b""), challenge, "1001", "secret")
    )
    assert ok.status_code == 200
    assert [(e["action"], e["line"]) for e in phone.kinds("action")] == [(action, "1001")]
    assert list(phone.host.phones["desk"].actions) == [action]
    assert phone.kinds("fetch_started") == []


@pytest.mark.parametrize("token", ["presence", "aastra-xml", "xml-services", "message-summary"])
async def test_an_unknown_event_is_489(make_phone: PhoneFactory, token: str) -> None:
    phone = await make_phone()
    response = await phone.answer(phone.notify(event=token))
    assert response.status_code == 489
    # RFC 6665 8.2.2: the 489 names the events the phone does take.
    assert {t.lower() for t in _tokens(response, "Allow-Events")} == ACCEPTED_EVENTS
    assert phone.kinds("action") == [] and phone.kinds("fetch_started") == []


# ------------------------------------------------------------ OPTIONS, 405
def _tokens(response: Response, name: str) -> list[str]:
    """The comma-separated tokens of every ``name`` field, as sent."""
    return [t.strip() for value in response.get_all(name) for t in value.split(",") if t.strip()]


async def test_options_advertises_allow_and_supported_as_the_spa_does(
    make_phone: PhoneFactory,
) -> None:
    phone = await make_phone()
    for line in (0, 1):
        response = await phone.answer(phone.request("OPTIONS", line, body=b""))
        assert response.status_code == 200
        assert (response.get("Accept-Encoding"), response.get("Accept-Language")) == (
            "identity",
            "en",
        )  # RFC 3261 11.2 SHOULD
        # The guide gives a set of tokens; order carries no meaning (RFC 3261 20.5).
        assert sorted(_tokens(response, "Allow")) == sorted(GUIDE_ALLOW)
        assert sorted(_tokens(response, "Supported")) == sorted(GUIDE_SUPPORTED)


@pytest.mark.parametrize("method", ["FOO", "NEWMETHOD", "Options"])
async def test_a_method_the_phone_does_not_recognise_is_501(
    make_phone: PhoneFactory, method: str
) -> None:
    """RFC 3261 21.5.2 (501: a method not recognised), 8.2.1 (405 only for
    one recognised but not supported); methods are case-sensitive."""
    phone = await make_phone()
    refused = await phone.answer(phone.request(method, body=b""))
    assert refused.status_code == 501 and refused.to.tag


@pytest.mark.parametrize("method", ["SUBSCRIBE", "MESSAGE", "PUBLISH", "PRACK", "REGISTER"])
async def test_a_405_allows_only_methods_that_are_not_answered_405(
    make_phone: PhoneFactory, method: str
) -> None:
    """Every method a 405's Allow names is tried in turn: none gets a 405
    (ACK gets no response at all, as a stray ACK should).  REFER is not among
    the refused: outside a dialog it is 481 (tests/phone/test_refer.py)."""
    phone = await make_phone(PhoneSettings(call_mode="busy"))
    refused = await phone.answer(phone.request(method, body=b""))
    assert refused.status_code == 405
    allowed = _tokens(refused, "Allow")
    assert allowed and method not in allowed
    assert set(allowed) <= set(GUIDE_ALLOW)
    for other in allowed:
        # An answer comes at once; only the ACK's silence is waited out.
        wait = 0.5 if other == "ACK" else 5.0
        answer = await phone.send(phone.request(other, body=b""), wait=wait)
        if other == "ACK":
            assert answer is None
        else:
            assert answer is not None and answer.status_code != 405, (other, answer)


# ------------------------------------------------------------ 10 MB payloads
TEN_MB = 10 * 1024 * 1024


def _big_page() -> bytes:
    """A well-formed CiscoIPPhoneText of over 10 MB."""
    return _page("Flood", "x" * TEN_MB)


async def _raw_http_server(framing: str) -> tuple[asyncio.Server, str]:
    """A loopback server sending the 10 MB page chunked or until it closes
    (no Content-Length to refuse up front: the cap must count what comes)."""
    page = _big_page()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n"
            if framing == "chunked":
                writer.write(head + b"Transfer-Encoding: chunked\r\n\r\n")
            else:
                writer.write(head + b"Connection: close\r\n\r\n")
            for i in range(0, len(page), 65536):
                part = page[i : i + 65536]
                if framing == "chunked":
                    part = b"%x\r\n%s\r\n" % (len(part), part)
                writer.write(part)
                await writer.drain()
            if framing == "chunked":
                writer.write(b"0\r\n\r\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the phone hung up past its cap: expected
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/big.xml"


async def _signed_push(phone: Phone, url: str) -> int:
    challenge, _ = await phone.challenge(body=url.encode())
    response = await phone.answer(
        signed(phone.notify(body=url.encode()), challenge, "1001", "secret")
    )
    return response.status_code


@pytest.mark.parametrize("framing", ["content-length", "chunked", "until-close"])
async def test_a_10_mb_page_is_refused_by_the_size_cap_and_the_phone_goes_on(
    make_phone: PhoneFactory, framing: str
) -> None:
    """Declared or not, a page past the fetch's size cap is dropped: the
    screen stays as it was, fetch_finished names the cap, and the next push
    is shown."""
    phone = await make_phone()
    before = phone.content.publish("desk", _page("Before"))
    assert await _signed_push(phone, before) == 200
    await until(lambda: "Before" in phone.screen, what="the first page shown")
    shown = phone.screen
    server: asyncio.Server | None = None
    if framing == "content-length":
        big = phone.content.publish("desk", _big_page())
    else:
        server, big = await _raw_http_server(framing)
    try:
        assert await _signed_push(phone, big) == 200  # accepted, then fetched
        finished = await phone.until("fetch_finished", 2)
    finally:
        if server is not None:
            server.close()
            await server.wait_closed()
    assert [e["url"] for e in finished] == [before, big]
    assert not finished[1]["ok"] and f"exceeds {DEFAULT_MAX_BYTES}" in finished[1]["error"], (
        finished[1]
    )
    assert phone.screen == shown and len(phone.kinds("screen")) == 1
    after = phone.content.publish("desk", _page("After"))
    assert await _signed_push(phone, after) == 200
    await until(lambda: "After" in phone.screen, what="the next page shown")
    assert len(phone.kinds("screen")) == 2


async def _tcp_exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: Request
) -> Response:
    writer.write(bytes(request))
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"content-length", b"l"):
            length = int(value)
    body = await asyncio.wait_for(reader.readexactly(length), 2) if length else b""
    response = parse_message(head + body)
    assert isinstance(response, Response)
    return response


def _over_tcp(request: Request, local: tuple[str, int]) -> Request:
    return request.with_first_header_replaced(
        "Via", f"SIP/2.0/TCP {local[0]}:{local[1]};branch={new_branch()}"
    )


async def test_a_notify_body_over_the_limit_is_413_over_tcp(make_phone: PhoneFactory) -> None:
    """The body limit (max_body), with or without credentials: 413; a body
    of exactly the limit is taken; the same connection then carries a push
    that gets 200."""
    phone = await make_phone()
    limit = phone.host.phones["desk"].config.settings.max_body
    reader, writer = await asyncio.open_connection("127.0.0.1", phone.ports[0])
    local = writer.get_extra_info("sockname")
    try:
        big = b"x" * (limit + 1)
        unsigned = await _tcp_exchange(reader, writer, _over_tcp(phone.notify(body=big), local))
        assert unsigned.status_code == 413
        first = await _tcp_exchange(reader, writer, _over_tcp(phone.notify(), local))
        assert first.status_code == 401
        challenge = only_challenge(first)
        over = signed(_over_tcp(phone.notify(body=big), local), challenge, "1001", "secret")
        assert (await _tcp_exchange(reader, writer, over)).status_code == 413
        at_limit = signed(
            _over_tcp(phone.notify(body=b"y" * limit), local), challenge, "1001", "secret"
        )
        # Answered 200, then reported as a body neither URL nor XML.
        assert (await _tcp_exchange(reader, writer, at_limit)).status_code == 200
        second = await _tcp_exchange(reader, writer, _over_tcp(phone.notify(), local))
        good = signed(_over_tcp(phone.notify(), local), only_challenge(second), "1001", "secret")
        assert (await _tcp_exchange(reader, writer, good)).status_code == 200
    finally:
        writer.close()
    requests = [e for e in phone.kinds("request") if e["method"] == "NOTIFY"]
    assert {e["transport"] for e in requests} == {"tcp"}


async def test_a_10_mb_notify_over_tcp_is_refused_and_the_phone_still_answers(
    make_phone: PhoneFactory,
) -> None:
    """Past the message size bound the connection is closed unanswered
    (RFC 3261 18.3: no way to find the next message; a 413 or 513 would do
    as well); never a 200, nothing acted on, and the phone answers the next
    push, over TCP and UDP."""
    phone = await make_phone()
    reader, writer = await asyncio.open_connection("127.0.0.1", phone.ports[0])
    local = writer.get_extra_info("sockname")
    flood = _over_tcp(phone.notify(body=b"x" * TEN_MB), local)
    try:
        writer.write(bytes(flood))
        try:
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        except (ConnectionError, asyncio.IncompleteReadError):
            head = b""  # closed unanswered
    finally:
        writer.close()
    if head:
        refusal = parse_message(head)
        assert isinstance(refusal, Response) and refusal.status_code in (413, 513), head[:80]
    acted = {"auth", "action", "fetch_started", "xml_error"}
    assert [e for e in phone.events if e["event"] in acted] == []
    reader, writer = await asyncio.open_connection("127.0.0.1", phone.ports[0])
    local = writer.get_extra_info("sockname")
    try:
        first = await _tcp_exchange(reader, writer, _over_tcp(phone.notify(), local))
        good = signed(_over_tcp(phone.notify(), local), only_challenge(first), "1001", "secret")
        assert (await _tcp_exchange(reader, writer, good)).status_code == 200
    finally:
        writer.close()
    challenge, _ = await phone.challenge()
    udp = await phone.answer(signed(phone.notify(), challenge, "1001", "secret"))
    assert udp.status_code == 200


async def test_tcp_peers_holding_every_connection_do_not_keep_a_push_out(
    make_phone: PhoneFactory,
) -> None:
    """Peers take every connection the phone allows, each trickling a
    message that never ends: a push arriving meanwhile, on a connection of
    its own past the cap, still gets its 401 and 200 (the least recently
    used idle connection makes room for it), and the trickles are cut off.
    (A peer that never reads its answers is dropped too:
    tests/net/test_stream_limits.py.)"""
    limits = StreamLimits(max_connections=5, message_timeout=0.5)
    phone = await make_phone(stream_limits=limits)
    port = phone.ports[0]
    trickles = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5)]
    for _, writer in trickles:
        writer.write(b"NOTIFY sip:1001@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1")
    tcp = phone.host.endpoint._streams["tcp"]
    await until(lambda: len(tcp._partial) == 5, what="five messages begun")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    local = writer.get_extra_info("sockname")
    try:
        first = await _tcp_exchange(reader, writer, _over_tcp(phone.notify(), local))
        assert first.status_code == 401
        good = signed(_over_tcp(phone.notify(), local), only_challenge(first), "1001", "secret")
        assert (await _tcp_exchange(reader, writer, good)).status_code == 200
        assert tcp.counters.evicted == 1
        await until(lambda: tcp.counters.stalled == 4, what="the other trickles cut off")
        for trickle_reader, _ in trickles:  # each closed by the phone
            assert await asyncio.wait_for(trickle_reader.read(), 2) == b""
        assert not reader.at_eof()  # the push's own connection stays
    finally:
        writer.close()
        for _, trickle_writer in trickles:
            trickle_writer.close()


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/vnd.example+xml", "text/uri-list"]
)
async def test_a_notify_of_any_body_type_is_challenged_and_taken_by_default(
    make_phone: PhoneFactory, content_type: str
) -> None:
    """The phone is not known to check a NOTIFY's Content-Type (field
    guide): by default the type is not looked at; before, anything outside
    a fixed list got 415 before any challenge."""
    phone = await make_phone()
    challenge, _ = await phone.challenge(content_type=content_type)
    request = phone.notify(content_type=content_type)
    ok = await phone.answer(signed(request, challenge, "1001", "secret"))
    assert ok.status_code == 200


async def test_notify_types_refuse_other_bodies_with_415_but_only_once_authenticated(
    make_phone: PhoneFactory,
) -> None:
    """RFC 3261 8.2: authentication before content processing, so an
    unauthenticated NOTIFY learns nothing about what the phone reads."""
    phone = await make_phone(PhoneSettings(notify_types=frozenset({"text/plain"})))
    challenge, _ = await phone.challenge(content_type="application/json")
    refused = await phone.answer(
        signed(phone.notify(content_type="application/json"), challenge, "1001", "secret")
    )
    assert refused.status_code == 415 and refused.get("Accept") == "text/plain"
    challenge, _ = await phone.challenge(content_type="Text/Plain; charset=utf-8")
    taken = await phone.answer(
        signed(phone.notify(content_type="Text/Plain; charset=utf-8"), challenge, "1001", "secret")
    )
    assert taken.status_code == 200


async def test_an_info_with_dtmf_is_not_refused_for_its_body_type(
    make_phone: PhoneFactory,
) -> None:
    """application/dtmf-relay was 415 before the phone looked (in a dialog
    too); outside one it is now what an INFO there is, 481."""
    phone = await make_phone()
    for ctype in ("application/dtmf-relay", "application/dtmf"):
        info = phone.request("INFO", body=b"Signal=5\r\nDuration=160\r\n", content_type=ctype)
        assert (await phone.answer(info)).status_code == 481


async def test_a_password_in_an_event_parameter_is_not_in_the_action(
    make_phone: PhoneFactory,
) -> None:
    """``resync;profile="http://admin:S3CRET@..."`` was recorded as sent."""
    phone = await make_phone()
    token = 'resync;profile="http://admin:S3CRET@127.0.0.1:9/p.cfg"'
    challenge, _ = await phone.challenge(event=token, body=b"")
    ok = await phone.answer(
        signed(phone.notify(event=token, body=b""), challenge, "1001", "secret")
    )
    assert ok.status_code == 200
    (action,) = [e["action"] for e in phone.kinds("action")]
    assert "S3CRET" not in action and action.startswith("resync;profile=")
    assert "admin:***@127.0.0.1:9/p.cfg" in action
