"""A line registering over TCP or TLS, as an SPA line whose SIP transport
is TCP or TLS: the REGISTER goes over a connection to the registrar, its
Via and Contact name the transport, and a request the registrar sends back
over that connection reaches the line (RFC 3261 10.2, 18.2.2)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from phonecast.credentials import Secret
from phonecast.net.endpoint import ServerHandle, SipEndpoint
from phonecast.net.limits import DEFAULT_STREAM_LIMITS, StreamLimits
from phonecast.net.transport import Flow
from phonecast.phone.config import LineConfig, PhoneConfig, PhoneSettings
from phonecast.phone.emulator import PhoneHost
from phonecast.sip import Request, SipUri, make_response
from phonecast.sip.digest import DigestServer
from tests.interop.peers import emulated_phone
from tests.ports import free_ports
from tests.tls import LoopbackPki, make_pki
from tests.waiting import until

pytestmark = pytest.mark.both_loops


@dataclass
class StreamRegistrar:
    """A digest registrar on a SipEndpoint's stream listener: challenges,
    verifies, grants 60 s; records each REGISTER and the flow it came on."""

    seen: list[tuple[Request, Flow]] = field(default_factory=list)
    digest: DigestServer = field(default_factory=lambda: DigestServer("registrar"))

    def __call__(self, request: Request, handle: ServerHandle | None, flow: Flow) -> None:
        if handle is None or request.method != "REGISTER":
            return
        self.seen.append((request, flow))
        now = time.monotonic()
        if request.authorization is None:
            challenge = str(self.digest.challenge(now))
            handle.respond(
                make_response(request, 401, to_tag="r", headers=[("WWW-Authenticate", challenge)])
            )
            return
        verdict = self.digest.verify(
            request.authorization,
            method="REGISTER",
            now=now,
            password="secret",
            expected_user="1001",
        )
        code = 200 if verdict.ok else 403
        contact = request.get("Contact") or ""
        headers = [("Contact", f"{contact};expires=60")] if code == 200 else []
        handle.respond(make_response(request, code, to_tag="r", headers=headers))


@dataclass
class Rig:
    host: PhoneHost
    registrar: StreamRegistrar
    registrar_ep: SipEndpoint
    registrar_address: tuple[str, int]
    line_port: int
    events: list[dict[str, Any]]
    codes: list[int | None]


async def _rig(
    transport: str,
    pki: LoopbackPki | None,
    *,
    trusted: bool = True,
    tls_name: str | None = None,
    limits: StreamLimits = DEFAULT_STREAM_LIMITS,
) -> Rig:
    registrar = StreamRegistrar()
    registrar_ep = SipEndpoint(handler=registrar, server_ssl=pki.server_context() if pki else None)
    address = await registrar_ep.listen_stream(transport, "127.0.0.1", 0)
    events: list[dict[str, Any]] = []
    host = PhoneHost(
        server_ssl=pki.server_context() if pki else None,
        client_ssl=pki.client_context() if pki and trusted else None,
        stream_limits=limits,
    )
    host.events.subscribe(events.append)
    await host.start()
    (line_port,) = free_ports(1)
    settings = PhoneSettings(
        registrar=f"127.0.0.1:{address[1]}",
        register_expires=60,
        register_retry=30,
        register_transport=transport,
        registrar_tls_name=tls_name,
        tls=transport == "tls",
        auth_notify=False,
    )
    phone = await host.add_phone(
        PhoneConfig(
            "desk", "127.0.0.1", (LineConfig("1001", Secret("secret"), line_port),), settings
        )
    )
    codes = await host.register(phone)
    return Rig(host, registrar, registrar_ep, address, line_port, events, codes)


@pytest.fixture
async def pki(tmp_path: Path) -> LoopbackPki:
    return make_pki(tmp_path)


async def _close(rig: Rig) -> None:
    await rig.host.close()
    await rig.registrar_ep.close()


@pytest.mark.parametrize("transport", ["tcp", "tls"])
async def test_a_line_registers_over_its_stream_transport_and_is_reached_back(
    transport: str, tmp_path: Path
) -> None:
    """The REGISTER and its retry with credentials go over one connection
    (TLS checked against the registrar's CA); Via and Contact say the
    transport, the Contact names the line's port; the registrar's NOTIFY
    back over the same connection reaches the line, which answers it, though
    the connection was idle for longer than the phone closes idle ones after
    (the registration keeps it open)."""
    quick = StreamLimits(idle_timeout=0.1)
    rig = await _rig(transport, make_pki(tmp_path) if transport == "tls" else None, limits=quick)
    try:
        assert rig.codes == [200]
        await asyncio.sleep(0.4)  # idle for four idle timeouts
        assert rig.host.endpoint._streams[transport].counters.idle == 0
        (_, first_flow), (second, second_flow) = rig.registrar.seen
        assert first_flow.transport == second_flow.transport == transport
        assert first_flow.connection is second_flow.connection  # one connection, reused
        via = second.top_via
        assert via.transport == transport.upper() and via.port == rig.line_port
        (contact,) = second.contact
        assert isinstance(contact.uri, SipUri)
        assert contact.uri.port == rig.line_port
        assert dict(contact.uri.params).get("transport") == transport
        assert [e["expires"] for e in rig.events if e["event"] == "registered"] == [60]
        # Back over the connection the REGISTER came on: no line's address.
        notify = Request(
            "NOTIFY",
            SipUri("127.0.0.1", "1001", port=rig.line_port, params=(("transport", transport),)),
            [
                ("Via", rig.registrar_ep.via(transport)),
                ("Max-Forwards", "70"),
                ("From", "<sip:registrar@127.0.0.1>;tag=n1"),
                ("To", "<sip:1001@127.0.0.1>"),
                ("Call-ID", "back-over-the-connection@127.0.0.1"),
                ("CSeq", "1 NOTIFY"),
                ("Event", "check-sync"),
            ],
        ).with_body(b"")
        response, why = await rig.registrar_ep.request(
            notify, transport, second_flow.remote, timeout=5
        )
        assert response is not None and response.status_code == 200, why
        requests = [e for e in rig.events if e["event"] == "request"]
        assert requests and requests[-1]["transport"] == transport
        assert requests[-1]["line"] == "1001"
    finally:
        await _close(rig)


async def test_a_request_on_the_registrar_connection_for_no_line_gets_404(
    tmp_path: Path,
) -> None:
    """A request over the host's own connection that names no line it
    registered is answered 404, not left to hold a transaction."""
    rig = await _rig("tcp", None)
    try:
        (_, flow), *_ = rig.registrar.seen
        stray = Request(
            "OPTIONS",
            SipUri("127.0.0.1", "9999", port=rig.line_port),
            [
                ("Via", rig.registrar_ep.via("tcp")),
                ("Max-Forwards", "70"),
                ("From", "<sip:registrar@127.0.0.1>;tag=n2"),
                ("To", "<sip:9999@127.0.0.1>"),
                ("Call-ID", "stray@127.0.0.1"),
                ("CSeq", "1 OPTIONS"),
            ],
        ).with_body(b"")
        response, why = await rig.registrar_ep.request(stray, "tcp", flow.remote, timeout=5)
        assert response is not None and response.status_code == 404, why
        assert rig.host.endpoint is not None
        await until(
            lambda: rig.host.endpoint is not None and rig.host.endpoint.stats.transactions == 0
        )
    finally:
        await _close(rig)


async def test_an_untrusted_tls_registrar_is_a_failed_registration_that_says_why(
    pki: LoopbackPki,
) -> None:
    """Without the registrar's CA the TLS check fails: no REGISTER reaches
    it, the line reports the failure with its reason and will retry."""
    rig = await _rig("tls", pki, trusted=False)
    try:
        assert rig.codes == [None] and not rig.registrar.seen
        (failed,) = [e for e in rig.events if e["event"] == "register_failed"]
        assert "CERTIFICATE_VERIFY_FAILED" in failed["error"] and failed["retry_in"] >= 30
    finally:
        await _close(rig)


async def test_the_phone_command_registers_over_tls_with_the_registrars_ca(
    pki: LoopbackPki, tmp_path: Path
) -> None:
    """``phonecast phone --register-transport tls --registrar-ca``: the
    command's lines register over TLS, the registrar's certificate checked
    against the CA given."""
    registrar = StreamRegistrar()
    registrar_ep = SipEndpoint(handler=registrar, server_ssl=pki.server_context())
    _, port = await registrar_ep.listen_stream("tls", "127.0.0.1", 0)
    (line_port,) = free_ports(1)
    events = tmp_path / "events.jsonl"
    try:
        with emulated_phone(
            f"1001:secret@{line_port}",
            events=events,
            extra=[
                *("--tls-cert", str(pki.cert_file), "--tls-key", str(pki.key_file)),
                *("--register", f"127.0.0.1:{port}", "--register-transport", "tls"),
                *("--registrar-ca", str(pki.ca_file)),
            ],
        ):
            await until(lambda: '"registered"' in events.read_text(), timeout=10)
        assert [flow.transport for _, flow in registrar.seen] == ["tls", "tls"]
        (contact,) = registrar.seen[-1][0].contact
        assert isinstance(contact.uri, SipUri) and contact.uri.port == line_port
        assert dict(contact.uri.params).get("transport") == "tls"
    finally:
        await registrar_ep.close()


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"register_transport": "sctp"}, "'sctp': not udp, tcp or tls"),
        ({"register_transport": "tls"}, "needs tls"),
        ({"register_transport": "tcp", "tcp": False}, "needs tcp, and not tls"),
        ({"register_transport": "tcp", "tls": True}, "needs tcp, and not tls"),
    ],
)
def test_a_transport_the_lines_cannot_be_reached_over_is_refused(
    settings: dict[str, Any], says: str
) -> None:
    """A Contact naming a transport the line does not listen on would
    register a line that nobody can reach."""
    with pytest.raises(ValueError, match=says):
        PhoneSettings(**settings)
    PhoneSettings(register_transport="tls", tls=True)  # what can be reached is taken


async def test_lines_registering_together_share_one_connection() -> None:
    """Four phones registering at once over TCP (a fleet registers 64 at a
    time) reach the registrar over one connection."""
    registrar = StreamRegistrar()
    registrar_ep = SipEndpoint(handler=registrar)
    _, port = await registrar_ep.listen_stream("tcp", "127.0.0.1", 0)
    host = PhoneHost()
    await host.start()
    settings = PhoneSettings(
        registrar=f"127.0.0.1:{port}", register_transport="tcp", auth_notify=False
    )
    try:
        phones = [
            await host.add_phone(
                PhoneConfig(
                    f"p{n}", "127.0.0.1", (LineConfig("1001", Secret("secret"), p),), settings
                )
            )
            for n, p in enumerate(free_ports(4))
        ]
        codes = await asyncio.gather(*(host.register(phone) for phone in phones))
        assert codes == [[200]] * 4
        assert len(registrar.seen) == 8
        assert len({id(flow.connection) for _, flow in registrar.seen}) == 1
    finally:
        await host.close()
        await registrar_ep.close()


async def test_a_registrar_that_hangs_up_is_a_failure_that_says_so() -> None:
    """The registrar closes the connection on the REGISTER: the line hears
    of it at once (not after Timer F) and its event says what happened."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    events: list[dict[str, Any]] = []
    host = PhoneHost()
    host.events.subscribe(events.append)
    await host.start()
    settings = PhoneSettings(registrar=f"127.0.0.1:{port}", register_transport="tcp")
    try:
        (line_port,) = free_ports(1)
        phone = await host.add_phone(
            PhoneConfig(
                "desk", "127.0.0.1", (LineConfig("1001", Secret("s"), line_port),), settings
            )
        )
        assert await asyncio.wait_for(host.register(phone), 5) == [None]
        (failed,) = [e for e in events if e["event"] == "register_failed"]
        assert failed["error"] == "the connection to the registrar was lost"
    finally:
        await host.close()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(("name", "registered"), [("localhost", True), ("sip.example.com", False)])
async def test_a_tls_registrar_is_checked_under_the_name_given(
    pki: LoopbackPki, name: str, registered: bool
) -> None:
    """``registrar_tls_name`` (``--registrar-name``): the registrar's
    certificate must carry that name, not its address (the test
    certificate is for localhost and 127.0.0.1)."""
    rig = await _rig("tls", pki, tls_name=name)
    try:
        if registered:
            assert rig.codes == [200]
        else:
            assert rig.codes == [None] and not rig.registrar.seen
            (failed,) = [e for e in rig.events if e["event"] == "register_failed"]
            assert "not valid for 'sip.example.com'" in failed["error"]
    finally:
        await _close(rig)
