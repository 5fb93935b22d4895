"""TlsSession, sans-IO: a server-side TLS session driven by hand against an
in-memory client, with no socket and no event loop."""

from __future__ import annotations

import ssl

import pytest

from phonecast.net.tls_session import TlsSession
from tests.tls import LoopbackPki, MemoryTlsClient


class _Client(MemoryTlsClient):
    def read(self) -> bytes:
        try:
            return self.tls.read(65536)
        except ssl.SSLWantReadError:
            return b"(nothing)"


def _shake(client: _Client, server: TlsSession) -> None:
    """Exchange flights until both ends are done with the handshake."""
    for _ in range(10):
        done = client.handshake_step()
        server.receive(client.outgoing.read())
        client.incoming.write(server.to_send())
        if done and server.handshaken:
            return
    raise AssertionError("the handshake did not complete")


def test_handshake_then_plaintext_both_ways(pki: LoopbackPki) -> None:
    client, server = _Client(pki), TlsSession(pki.server_context())
    assert not server.handshaken
    _shake(client, server)
    client.tls.write(b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\n")
    assert server.receive(client.outgoing.read()) == b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\n"
    server.send(b"SIP/2.0 200 OK\r\n")
    client.incoming.write(server.to_send())
    assert client.read() == b"SIP/2.0 200 OK\r\n"
    assert not server.peer_closed


def test_records_split_across_reads_and_several_in_one(pki: LoopbackPki) -> None:
    client, server = _Client(pki), TlsSession(pki.server_context())
    _shake(client, server)
    client.tls.write(b"first ")
    client.tls.write(b"second")
    wire = client.outgoing.read()
    assert server.receive(wire[:7]) == b""  # part of a record: nothing yet
    assert server.receive(wire[7:]) == b"first second"


def test_what_is_sent_before_the_handshake_leaves_after_it(pki: LoopbackPki) -> None:
    client, server = _Client(pki), TlsSession(pki.server_context())
    server.send(b"early")
    assert server.to_send() == b""  # nothing can be encrypted yet
    _shake(client, server)
    assert client.read() == b"early"


def test_the_peers_close_notify_is_seen_and_ours_is_sent(pki: LoopbackPki) -> None:
    client, server = _Client(pki), TlsSession(pki.server_context())
    _shake(client, server)
    with pytest.raises(ssl.SSLWantReadError):  # it would wait for our close_notify
        client.tls.unwrap()
    assert server.receive(client.outgoing.read()) == b""
    assert server.peer_closed
    server.shutdown()
    client.incoming.write(server.to_send())
    client.tls.unwrap()  # our close_notify arrived: the client's shutdown completes


def test_a_handshake_refused_fails_and_leaves_the_alert_to_send(pki: LoopbackPki) -> None:
    server = TlsSession(pki.server_context())
    assert server.receive(b"\x16\x03\x01\x00\x05hello") == b""  # a handshake of nonsense
    assert server.failed
    alert = server.to_send()
    assert alert[:1] == b"\x15"  # a TLS alert record, for the peer to read why
    assert server.receive(b"more") == b""  # nothing more is read


def test_a_bad_record_after_a_good_one_still_delivers_the_good_one(pki: LoopbackPki) -> None:
    client, server = _Client(pki), TlsSession(pki.server_context())
    _shake(client, server)
    client.tls.write(b"a whole request")
    good = client.outgoing.read()
    bad = good[:5] + bytes(b ^ 0xFF for b in good[5:])  # same length, MAC broken
    assert server.to_send() == b""  # the handshake's flights all taken
    assert server.receive(good + bad) == b"a whole request"
    assert server.failed and server.to_send()  # the alert (encrypted, in TLS 1.3)


def test_the_record_framing_is_followed_across_split_headers(pki: LoopbackPki) -> None:
    """``mid_record`` is what lets the transport time a trickled record."""
    client, server = _Client(pki), TlsSession(pki.server_context())
    _shake(client, server)
    assert not server.mid_record
    client.tls.write(b"x" * 100)
    client.tls.write(b"y" * 10)
    wire = client.outgoing.read()
    for at in (2, 5, 40):  # inside the header, at its end, inside the body
        server.receive(wire[:at])
        assert server.mid_record
        wire = wire[at:]
    assert server.receive(wire) == b"x" * 100 + b"y" * 10
    assert not server.mid_record


def test_what_waits_for_the_handshake_is_counted(pki: LoopbackPki) -> None:
    server = TlsSession(pki.server_context())
    server.send(b"12345")
    server.send(b"678")
    assert server.early_size == 8
    _shake(_Client(pki), server)
    assert server.early_size == 0


def test_shutdown_before_the_handshake_sends_nothing(pki: LoopbackPki) -> None:
    server = TlsSession(pki.server_context())
    server.shutdown()
    assert server.to_send() == b""


def test_an_sslv2_format_hello_is_followed_by_its_own_length(pki: LoopbackPki) -> None:
    """TLS 1.2 E.2's backward-compatible hello has a 2-octet header; read
    as a 5-octet one its length would be nonsense, and ``mid_record`` stuck
    (a healthy connection then cut as stalled)."""
    server = TlsSession(pki.server_context())
    body = b"\x01\x03\x01\x00\x03\x00\x00\x00\x10" + b"\x00\x00\x2f" + b"c" * 16
    server._track(bytes([0x80, len(body)]) + body)  # msg type 1: a ClientHello
    assert not server.mid_record
    server._track(b"\x17\x03\x03\x00\x02ab")  # the next record, framed as usual
    assert not server.mid_record


def test_a_v2_style_first_octet_is_not_taken_for_one_after_the_first_record(
    pki: LoopbackPki,
) -> None:
    server = TlsSession(pki.server_context())
    server._track(b"\x16\x03\x01\x00\x01x")
    server._track(b"\x80\x05\x01\x00\x04")  # a record header like any other now
    assert server._owed == 4  # its length from octets 3-4 (read as v2's: 2)
