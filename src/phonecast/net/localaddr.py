"""Which local address reaches a peer (for Via, Contact and binding).

A UDP socket ``connect`` picks a route and a source address without sending
anything; reading it back tells which of our addresses the peer will see.
"""

from __future__ import annotations

import socket

from phonecast.net.transport import family_of


def local_ip_for(remote_host: str, remote_port: int = 5060) -> str:
    """Our address on the route to ``remote_host`` (an IP literal)."""
    family = family_of(remote_host)
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((remote_host, remote_port))
            return str(sock.getsockname()[0])
        except OSError:
            return "::1" if family == socket.AF_INET6 else "127.0.0.1"
