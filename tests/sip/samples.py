"""Messages shared by the parsing and message tests."""

from __future__ import annotations

#: A typical XML-Service NOTIFY; one octet after the declared body (RFC 4475
#: says a datagram's trailing octets are ignored).
NOTIFY = (
    b"NOTIFY sip:1001@127.0.0.1:5070 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:phonecast@127.0.0.1>;tag=1928301774\r\n"
    b"To: <sip:1001@127.0.0.1:5070>\r\n"
    b"Call-ID: a84b4c76e66710@127.0.0.1\r\n"
    b"CSeq: 314159 NOTIFY\r\n"
    b"Event: XML-Service\r\n"
    b"Content-Type: text/html\r\n"
    b"Content-Length: 26\r\n"
    b"\r\n"
    b"http://10.0.0.2/alert.xml"
    b"!"
)
