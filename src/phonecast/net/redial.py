"""Responses whose connection has closed: sent over a new one (RFC 3261 18.2.2).

A response to a request that came over TCP or TLS goes back on the
connection the request came on.  A phone often answers seconds later (it
rings before its 200, and resends that 200 until the ACK), and by then the
caller may have closed that connection: a proxy recycling idle
connections, a client that sent and hung up.  RFC 3261 18.2.2 then says the
server SHOULD open a connection of its own to the request's source address
(what the Via's ``received`` records) at the Via's sent-by port, or the
transport's default port when the Via names none, and send the response
there; if that fails too, the server transaction is told of a transport
error (17.2.4): a non-INVITE one ends, an INVITE one (RFC 6026) waits on
for a retransmission or its timer.

Only the source address is ever dialled, never the Via's host: a request
cannot make the endpoint connect anywhere its sender is not (no reflection
towards a third party), how many targets are dialled at once is bounded,
and past the transport's connection cap such a dial is refused at once
instead of waiting for a place as the endpoint's own dials do.
Responses waiting for the same target queue behind one dial, in the order
they were sent, so a 180 and the 200 right behind it arrive in that order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Final

from phonecast.net.stream import StreamTransport
from phonecast.net.transport import Address, Flow, StreamConnection
from phonecast.sip.headers import Via

#: RFC 3261 18.2.2 and 26.2: a Via without a port names the transport's default.
DEFAULT_PORTS: Final = {"tcp": 5060, "tls": 5061}
#: Targets being dialled at once, at most; a response for one more is
#: treated as if its dial failed.  Each is a peer that sent a request and
#: closed its connection before the answer: a flood of those must not
#: become a flood of dials.
MAX_REDIALS: Final = 256
#: How long one dial may take (a connect, and for TLS its handshake).
REDIAL_TIMEOUT: Final = 5.0

#: Told the new connection, or None if none could be opened.
Connected = Callable[[StreamConnection | None], None]


def redial_target(via: Via, source: Address, transport: str) -> Address:
    """Where a response goes once its request's connection has closed: the
    request's source address (the Via's ``received``) at the Via's sent-by
    port, or the transport's default port (RFC 3261 18.2.2)."""
    return (source[0], via.port or DEFAULT_PORTS[transport])


class Redials:
    """The dials under way for responses whose connection closed, by target."""

    def __init__(
        self,
        stream: Callable[[str], StreamTransport],
        *,
        limit: int = MAX_REDIALS,
        timeout: float = REDIAL_TIMEOUT,
    ) -> None:
        """``stream`` gives the transport for a name (the endpoint's, so a
        new connection is pooled, bounded and read like any other)."""
        self._stream = stream
        self._limit = limit
        self._timeout = timeout
        #: (transport, target) -> what waits for the dial, in order.
        self._waiting: dict[tuple[str, Address], list[Connected]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: Dials that opened a connection, and that did not (or were not tried).
        self.opened = 0
        self.failed = 0

    def __len__(self) -> int:
        return len(self._waiting)

    def connect(self, flow: Flow, via: Via, connected: Connected) -> None:
        """Open (or reuse) a connection of ``flow``'s transport to where a
        response to the request that came on ``flow`` (its top Via ``via``)
        goes now (:func:`redial_target`), and tell ``connected`` of it, after
        everything queued for that target before."""
        transport = flow.transport
        key = (transport, redial_target(via, flow.remote, transport))
        queued = self._waiting.get(key)
        if queued is not None:
            queued.append(connected)
            return
        if len(self._waiting) >= self._limit:
            self.failed += 1
            connected(None)
            return
        self._waiting[key] = [connected]
        # TLS checks the certificate against the name the Via gives (RFC
        # 3261 26.3.2.1 in spirit: the peer is who its request said it was).
        hostname = via.host.strip("[]") if transport == "tls" else None
        task = asyncio.ensure_future(self._dial(key, hostname))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dial(self, key: tuple[str, Address], hostname: str | None) -> None:
        transport, target = key
        conn: StreamConnection | None = None
        try:
            # Refused at once past the cap rather than waiting for a place:
            # a peer caused this dial, and must not queue ahead of ours.
            conn = await self._stream(transport).connect(
                target, server_hostname=hostname, timeout=self._timeout, wait=False
            )
        except (TimeoutError, OSError, ValueError):
            conn = None  # refused, unreachable, no room, a bad certificate
        finally:
            waiting = self._waiting.pop(key, [])
        if conn is not None and not conn.is_open:
            conn = None  # closed before it could be used
        if conn is None:
            self.failed += 1
        else:
            self.opened += 1
        for connected in waiting:
            connected(conn)

    async def close(self) -> None:
        """Stop every dial; what waited on one is dropped with it."""
        tasks = list(self._tasks)
        self._waiting.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
