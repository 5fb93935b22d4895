"""phonecast against real peers on loopback: SIPp as phone and as sender, sipsak."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_binary
from tests.interop.peers import (
    emulated_phone,
    free_udp_port,
    phonecast,
    scenario,
    sipp_uac,
    sipp_uas,
)

pytestmark = pytest.mark.interop


def test_push_against_sipp_phone(tmp_path: Path) -> None:
    require_binary("sipp")
    port = free_udp_port()
    uas = scenario("uas_notify_auth.xml", tmp_path, user="1001", password="secret")
    with sipp_uas(uas, port, calls=2, tmp=tmp_path):
        ok = phonecast(
            "push",
            f"sip:1001@127.0.0.1:{port}",
            "--url",
            "http://127.0.0.1/a.xml",
            "--json",
            env={"PHONECAST_PASSWORD": "secret"},
        )
        assert ok.returncode == 0, ok.stderr
        doc = json.loads(ok.stdout)
        assert doc["outcome"] == "delivered" and doc["challenged"] and doc["code"] == 200
        bad = phonecast(
            "push",
            f"sip:1001@127.0.0.1:{port}",
            "--url",
            "http://127.0.0.1/a.xml",
            env={"PHONECAST_PASSWORD": "wrong"},
        )
        assert bad.returncode == 3, bad.stdout + bad.stderr


def test_sipp_sender_against_emulator(tmp_path: Path) -> None:
    require_binary("sipp")
    port = free_udp_port()
    events = tmp_path / "events.jsonl"
    with emulated_phone(f"1001:secret@{port}", events=events):
        good = sipp_uac(
            scenario("uac_notify_auth.xml", tmp_path, user="1001", password="secret"),
            port,
            "1001",
            calls=10,
            tmp=tmp_path,
        )
        assert good.returncode == 0, good.stdout[-2000:]
        bad_file = tmp_path / "bad"
        bad_file.mkdir()
        bad = sipp_uac(
            scenario("uac_notify_auth.xml", bad_file, user="1001", password="nope"),
            port,
            "1001",
            calls=3,
            tmp=tmp_path,
            timeout=8,
        )
        assert bad.returncode != 0
    verdicts = [json.loads(line) for line in events.read_text().splitlines()]
    oks = [e for e in verdicts if e["event"] == "auth" and e["ok"]]
    assert len(oks) == 10  # never a 200 for the wrong password
    codes = [e["code"] for e in verdicts if e["event"] == "response"]
    assert codes.count(200) == 10


def test_sipsak_against_emulator(tmp_path: Path) -> None:
    require_binary("sipsak")
    port = free_udp_port()
    request = tmp_path / "notify.sip"
    request.write_bytes(
        (
            f"NOTIFY sip:1001@127.0.0.1:{port} SIP/2.0\r\nFrom: <sip:sipsak@127.0.0.1>;tag=s1\r\n"
            f"To: <sip:1001@127.0.0.1:{port}>\r\nCall-ID: sipsak-1@127.0.0.1\r\nCSeq: 1 NOTIFY\r\n"
            "Max-Forwards: 70\r\nEvent: XML-Service\r\nContent-Type: text/html\r\n"
            "Content-Length: 28\r\n\r\nhttp://127.0.0.1:9/alert.xml"
        ).encode()
    )
    events = tmp_path / "events.jsonl"
    with emulated_phone(f"1001:secret@{port}", events=events):
        run = subprocess.run(
            [
                "sipsak",
                "-f",
                str(request),
                "-s",
                f"sip:1001@127.0.0.1:{port}",
                "-u",
                "1001",
                "-a",
                "secret",
                "-vv",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert "SIP/2.0 200 OK" in run.stdout, run.stdout[-1500:]
    assert any(
        json.loads(line).get("ok") for line in events.read_text().splitlines() if '"auth"' in line
    )


def test_sipp_updates_a_call_with_the_emulator_and_is_refused_outside_one(
    tmp_path: Path,
) -> None:
    """RFC 3311 against a real peer: SIPp calls the emulator, which rings and
    answers with SDP; SIPp's UPDATE with a new offer in the confirmed dialog
    gets 200 with an SDP answer, the BYE 200; an UPDATE naming a dialog the
    phone never made gets 481."""
    require_binary("sipp")
    port = free_udp_port()
    events = tmp_path / "events.jsonl"
    with emulated_phone(f"1001:secret@{port}", events=events, extra=["--ring-seconds", "0.2"]):
        # One call at a time: a phone in a call answers another INVITE 486.
        call = sipp_uac(
            scenario("uac_update_in_dialog.xml", tmp_path),
            port,
            "1001",
            calls=3,
            tmp=tmp_path,
            rate=2,
        )
        assert call.returncode == 0, call.stdout[-2000:]
        outside = sipp_uac(
            scenario("uac_update_outside_dialog.xml", tmp_path),
            port,
            "1001",
            calls=2,
            tmp=tmp_path,
        )
        assert outside.returncode == 0, outside.stdout[-2000:]
    seen = [json.loads(line) for line in events.read_text().splitlines()]
    answered = [(e["method"], e["code"]) for e in seen if e["event"] == "response"]
    assert answered.count(("UPDATE", 200)) == 3 and answered.count(("UPDATE", 481)) == 2
    assert answered.count(("BYE", 200)) == 3


def test_sipp_holds_and_resumes_a_call_and_the_phone_keeps_one_sdp_session(
    tmp_path: Path,
) -> None:
    """RFC 3264 against a real peer: SIPp offers opus (dynamic), PCMU and
    telephone-event; the phone answers PCMU with its rtpmap.  A re-INVITE
    with a=sendonly (hold) gets a=recvonly, one with a=sendrecv gets
    sendrecv back (6.1, 8.4), and the phone's three answers share one o=
    session id, its version one up each time the answer changed (8)."""
    require_binary("sipp")
    port = free_udp_port()
    trace = tmp_path / "messages.log"
    events = tmp_path / "events.jsonl"
    with emulated_phone(f"1001:secret@{port}", events=events, extra=["--ring-seconds", "0.1"]):
        call = sipp_uac(
            scenario("uac_hold_reinvite.xml", tmp_path),
            port,
            "1001",
            calls=1,
            tmp=tmp_path,
            extra=["-trace_msg", "-message_file", str(trace)],
        )
    assert call.returncode == 0, call.stdout[-2000:]
    origins = [
        line.split()[1:3]
        for line in trace.read_text(errors="replace").splitlines()
        if line.startswith("o=phonecast ")
    ]
    assert len(origins) == 3, origins
    assert len({session for session, _ in origins}) == 1
    versions = [int(version) for _, version in origins]
    assert versions == [versions[0], versions[0] + 1, versions[0] + 2]
    seen = [json.loads(line) for line in events.read_text().splitlines()]
    answered = [(e["method"], e["code"]) for e in seen if e["event"] == "response"]
    assert answered.count(("INVITE", 200)) == 3 and ("BYE", 200) in answered
