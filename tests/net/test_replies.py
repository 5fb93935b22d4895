"""Where a server's answers go, and the table of its stateless answers."""

from __future__ import annotations

from phonecast.net.replies import StatelessAnswers, reply_address
from phonecast.net.transport import Flow
from phonecast.sip.headers import parse_via

FLOW = Flow("udp", ("192.0.2.7", 40000), ("127.0.0.1", 5060))


def test_a_udp_answer_goes_to_the_source_address_at_rport_or_the_via_port() -> None:
    """RFC 3261 18.2.2 with RFC 3581; maddr and the Via's host are not
    followed (a datagram must not make the endpoint a reflector)."""
    rport = parse_via("SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;rport=40000")
    assert reply_address(rport, FLOW) == ("192.0.2.7", 40000)
    port = parse_via("SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;maddr=203.0.113.9")
    assert reply_address(port, FLOW) == ("192.0.2.7", 5070)
    default = parse_via("SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1")
    assert reply_address(default, FLOW) == ("192.0.2.7", 5060)


def test_stateless_answers_are_found_only_for_the_same_flow_and_stay_bounded() -> None:
    answers = StatelessAnswers(limit=4)
    answers.keep(b"request", FLOW, ("192.0.2.7", 40000), b"answer")
    assert answers.find(b"request", FLOW) == (("192.0.2.7", 40000), b"answer")
    other_peer = Flow("udp", ("192.0.2.8", 40000), FLOW.local)
    other_socket = Flow("udp", FLOW.remote, ("127.0.0.1", 5061))
    assert answers.find(b"request", other_peer) is None  # a forged copy from elsewhere
    assert answers.find(b"request", other_socket) is None
    assert answers.find(b"other", FLOW) is None
    for n in range(10):
        answers.keep(f"r{n}".encode(), FLOW, None, b"a")
        assert len(answers) <= 4
    answers.clear()
    assert len(answers) == 0
