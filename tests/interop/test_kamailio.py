"""phonecast with Kamailio: a strict digest verifier, and a registrar/proxy."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from phonecast.net.endpoint import SipEndpoint
from phonecast.sip import Request, SipUri
from tests.conftest import require_binary
from tests.interop.peers import emulated_phone, free_udp_port, kamailio, phonecast

pytestmark = pytest.mark.interop


def test_three_pushes_in_a_row_against_kamailio_auth(tmp_path: Path) -> None:
    require_binary("kamailio")
    with kamailio("kamailio_auth.cfg", tmp_path) as port:
        for _ in range(3):
            run = phonecast(
                "push",
                f"sip:1001@127.0.0.1:{port}",
                "--url",
                "http://127.0.0.1:9/a.xml",
                "--json",
                env={"PHONECAST_PASSWORD": "secret"},
            )
            assert run.returncode == 0, run.stdout + run.stderr
            assert json.loads(run.stdout)["challenged"] is True
        bad = phonecast(
            "push",
            f"sip:1001@127.0.0.1:{port}",
            "--url",
            "http://127.0.0.1:9/a.xml",
            env={"PHONECAST_PASSWORD": "wrong"},
        )
        assert bad.returncode == 3


async def _register(registrar: int, contact_port: int) -> int:
    ep = SipEndpoint()
    await ep.listen_udp("127.0.0.1", 0)
    try:
        req = Request(
            "REGISTER",
            SipUri("127.0.0.1", port=registrar),
            [
                ("Via", ep.via("udp")),
                ("Max-Forwards", "70"),
                ("From", f"<sip:1001@127.0.0.1:{registrar}>;tag=reg"),
                ("To", f"<sip:1001@127.0.0.1:{registrar}>"),
                ("Call-ID", "register-1@127.0.0.1"),
                ("CSeq", "1 REGISTER"),
                ("Contact", f"<sip:1001@127.0.0.1:{contact_port}>"),
                ("Expires", "300"),
            ],
        ).with_body(b"")
        resp, _ = await ep.request(req, "udp", ("127.0.0.1", registrar))
        assert resp is not None
        return resp.status_code
    finally:
        await ep.close()


def _push_to_the_aor(port: int) -> dict[str, object]:
    """``phonecast push`` to sip:1001 at the registrar, through it as the
    proxy; its JSON report, once it succeeded."""
    run = phonecast(
        "push",
        f"sip:1001@127.0.0.1:{port}",
        "--proxy",
        f"127.0.0.1:{port}",
        "--url",
        "http://127.0.0.1:9/a.xml",
        "--json",
        env={"PHONECAST_PASSWORD": "secret"},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report: dict[str, object] = json.loads(run.stdout)
    return report


def _push_to_a_registered_phone(
    config: str, tmp_path: Path
) -> tuple[dict[str, object], list[dict[str, object]]]:
    """An emulated phone registered at Kamailio (``config``), pushed to
    through it: the push's report and the phone's events."""
    require_binary("kamailio")
    phone_port = free_udp_port()
    events = tmp_path / "events.jsonl"
    with (
        kamailio(config, tmp_path) as port,
        emulated_phone(f"1001:secret@{phone_port}", events=events),
    ):
        assert asyncio.run(_register(port, phone_port)) == 200
        report = _push_to_the_aor(port)
    return report, [json.loads(line) for line in events.read_text().splitlines()]


def test_push_to_an_aor_through_kamailio_reaches_the_registered_phone(tmp_path: Path) -> None:
    report, seen = _push_to_a_registered_phone("kamailio_registrar.cfg", tmp_path)
    assert report["challenged"] is True
    assert any(e["event"] == "auth" and e["ok"] for e in seen)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_emulator_registers_with_digest_and_is_reached_through_kamailio(
    transport: str, tmp_path: Path
) -> None:
    """The line REGISTERs (digest) at Kamailio over its registration
    transport, and the NOTIFY pushed to the AOR over UDP reaches it: with
    ``--register-transport tcp`` the Contact says ``transport=tcp`` and
    Kamailio relays the NOTIFY to the line over TCP."""
    require_binary("kamailio")
    phone_port = free_udp_port()
    events = tmp_path / "events.jsonl"
    with kamailio("kamailio_registrar_auth.cfg", tmp_path) as port:
        extra = ["--register", f"127.0.0.1:{port}"]
        if transport != "udp":
            extra += ["--register-transport", transport]
        with emulated_phone(f"1001:secret@{phone_port}", events=events, extra=extra):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and '"registered"' not in events.read_text():
                time.sleep(0.1)
            _push_to_the_aor(port)
    seen = [json.loads(line) for line in events.read_text().splitlines()]
    assert any(e["event"] == "registered" and e["code"] == 200 for e in seen)
    notifies = [e for e in seen if e["event"] == "request" and e["method"] == "NOTIFY"]
    assert notifies and all(e["transport"] == transport for e in notifies)


def test_a_push_through_kamailio_demanding_proxy_auth_answers_it_and_the_phone(
    tmp_path: Path,
) -> None:
    """RFC 3261 22.3 with a real proxy: Kamailio answers the push 407, the
    phone behind it 401, and the third NOTIFY carries both credentials,
    the proxy's with its next nc (Kamailio checks nc).  The 401 was
    reported as the phone refusing the credentials."""
    report, seen = _push_to_a_registered_phone("kamailio_proxy_auth.cfg", tmp_path)
    assert report["requests"] == 3, report
    verdicts = [e["ok"] for e in seen if e["event"] == "auth"]
    assert verdicts == [False, True], verdicts
