"""Run inside a private network namespace (``unshare -n``): send every RFC 4475
message to an emulated phone over UDP and print what it answered, as JSON.

The messages name foreign addresses in Via; in this namespace only ``lo``
exists, so nothing can leave.  Each message is sent from a socket bound where
the phone must answer (RFC 3261 18.2.2: the Via port at the source address).
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
from pathlib import Path

from phonecast.credentials import Secret
from phonecast.net.endpoint import SipEndpoint
from phonecast.phone.config import LineConfig, PhoneConfig, PhoneSettings
from phonecast.phone.emulator import PhoneHost
from phonecast.push.payload import url_payload
from phonecast.push.pusher import Destination, Pusher
from phonecast.sip import SipError, SipUri, parse_message

PHONE_PORT = 5099  # no corpus Via names it
_VIA_PORT = re.compile(
    rb"^(?:via|v)[ \t]*:[^\r\n:]*?/[ \t]*[A-Za-z]+[ \t]+[^;:\s]+:(\d+)", re.I | re.M
)


_CALL_ID = re.compile(rb"^(?:call-id|i)[ \t]*:[ \t]*([^\r\n]*)", re.I | re.M)


def call_id(data: bytes) -> bytes | None:
    m = _CALL_ID.search(data)
    return m.group(1).strip() if m else None


def answer_port(data: bytes) -> int:
    try:
        port = parse_message(data).top_via.port
        return port or 5060
    except SipError:
        m = _VIA_PORT.search(data)
        return int(m.group(1)) if m else 5060


async def exchange(data: bytes) -> int | None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", answer_port(data)))
    sock.setblocking(False)
    codes: list[int] = []
    try:
        sock.sendto(data, ("127.0.0.1", PHONE_PORT))
        window = 0.5
        while True:
            try:
                reply = await asyncio.wait_for(loop.sock_recv(sock, 65535), window)
            except TimeoutError:
                break
            if call_id(reply) != call_id(data):
                continue  # a retransmission answering an earlier message
            codes.append(int(reply.split(b" ", 2)[1]))
            window = 0.15  # collect the rest (180 then 200...), then stop
    finally:
        sock.close()
    finals = [c for c in codes if c >= 200]
    return finals[0] if finals else (codes[0] if codes else None)


async def fresh_phone() -> PhoneHost:
    host = PhoneHost()
    await host.start()
    await host.add_phone(
        PhoneConfig(
            "ns-phone",
            "127.0.0.1",
            (LineConfig("1001", Secret("secret"), PHONE_PORT),),
            PhoneSettings(tcp=False),
        )
    )
    return host


async def main(corpus: Path) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    results: dict[str, int | None] = {}
    # A fresh phone per message: the torture tests are independent, and several
    # reuse one branch and sent-by, which RFC 3261 17.2.3 matches as a
    # retransmission within one phone's lifetime.
    for path in sorted(corpus.glob("*.dat")):
        host = await fresh_phone()
        try:
            results[path.stem] = await exchange(path.read_bytes())
        finally:
            await host.close()
    # And one phone that received them all must still take a valid push.
    host = await fresh_phone()
    for path in sorted(corpus.glob("*.dat")):
        await exchange(path.read_bytes())
    ep = SipEndpoint()
    await ep.listen_udp("127.0.0.1", 0)
    outcome = await Pusher(ep).push(
        SipUri("127.0.0.1", "1001", port=PHONE_PORT),
        Secret("secret"),
        url_payload("http://127.0.0.1:9/x.xml"),
        destinations=[Destination("udp", "127.0.0.1", PHONE_PORT)],
    )
    await ep.close()
    await host.close()
    print(json.dumps({"results": results, "after": outcome.status}))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
