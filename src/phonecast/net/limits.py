"""What a stream transport (TCP or TLS) lets its peers hold, and what it
counts when it closes or refuses a connection on its own.

Kept apart from the transports so that settings (the CLI, the emulator's
``PhoneSettings``) can name a transport's limits without importing its
machinery.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass
from typing import Final

#: The most connections a stream transport holds unless told otherwise, and
#: the share of the process's file limit its default cap may take (one file
#: in this many): what a command's file limit is lifted for (net.loop).
DEFAULT_MAX_CONNECTIONS: Final = 4096
FILES_PER_CONNECTION: Final = 4


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """What one stream transport (TCP or TLS) lets its peers hold.

    A listener is open to whoever can reach it, so each thing a peer can
    make it keep is bounded, as a hardened SIP server bounds it (Kamailio's
    ``tcp_max_connections``, ``tcp_connection_lifetime``,
    ``tcp_msg_read_timeout``, ``tcp_conn_wq_max``):

    ``max_connections``: open connections, accepted and dialled together
    (None: a quarter of the process's file limit, between 16 and 4096).  A
    new one past it closes the one least recently used that carries no
    transaction; if every one does, a peer's new connection is refused,
    and a dial of ours waits (within its timeout) for one to come free.
    ``idle_timeout``: seconds without a byte either way before a connection
    that carries no transaction is closed (what frees a pusher's connections
    to the phones it is done with, and a listener's abandoned ones).
    ``message_timeout``: seconds a message may take to arrive whole once it
    has begun (a peer trickling bytes to keep a connection cannot), and an
    accepted TLS connection's handshake to finish (the connection counts
    against the cap from its accept, handshake or not: net.tls_session).
    ``max_unsent``: octets queued for a peer that does not read before its
    connection is dropped: SIP cannot wait for a slow reader, and the queue
    would otherwise grow without bound."""

    max_connections: int | None = None
    idle_timeout: float = 120.0
    message_timeout: float = 20.0
    max_unsent: int = 1 << 20

    def connection_cap(self) -> int:
        """``max_connections``, or the default this process's file limit allows."""
        if self.max_connections is not None:
            return self.max_connections
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return DEFAULT_MAX_CONNECTIONS
        return max(16, min(DEFAULT_MAX_CONNECTIONS, soft // FILES_PER_CONNECTION))


#: The limits a stream transport has unless told otherwise.
DEFAULT_STREAM_LIMITS: Final = StreamLimits()


@dataclass(slots=True)
class StreamCounters:
    """Connections a stream transport closed or refused on its own, by why."""

    idle: int = 0
    stalled: int = 0
    unread: int = 0
    evicted: int = 0
    #: Accepted connections carrying a transaction, closed (least recently
    #: active first) for a new peer when every place was in use.
    displaced: int = 0
    refused: int = 0
