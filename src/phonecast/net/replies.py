"""Where a server's answers go, and what it keeps of the stateless ones.

Addressing (RFC 3261 18.2.1 / 18.2.2 with RFC 3581): a request received over
UDP has its top Via stamped with where it really came from (``received``,
and ``rport`` when the client asked), and its responses go to the source
address at the ``rport``, else the Via's port (5060 by default).  ``maddr``
is deliberately not honoured: answering to an address named in a datagram
would make the endpoint a reflector.

Stateless answers (RFC 3261 8.2.7): a response sent without a server
transaction carries a To tag derived from the request, the same for every
copy, and its bytes are kept in a bounded table by the request datagram,
so that a retransmission is answered with exactly what the first copy got
(a peer such as SIPp takes a different 401 for a new, unexpected message).
"""

from __future__ import annotations

from typing import Final

from phonecast.net.transport import Address, Flow
from phonecast.sip import Request
from phonecast.sip._memo import remember
from phonecast.sip._random import token_bytes
from phonecast.sip.headers import Via
from phonecast.sip.response import stateless_tag

#: Stateless answers kept for the retransmissions of their requests (a UDP
#: client retransmits at 0.5, 1.5, 3.5 s...): at 9,000 challenges a second
#: about the first 1.8 s, in ~1 KB each; bounded by starting afresh when full.
ANSWERS_KEPT: Final = 16_384


def stamp_via(request: Request, flow: Flow) -> Request:
    """RFC 3261 18.2.1 / RFC 3581: record where the request really came from."""
    via = request.top_via
    if flow.transport != "udp":
        return request
    params: dict[str, str | None] = {}
    if via.hostname != flow.remote[0]:
        params["received"] = flow.remote[0]
    if via.wants_rport:
        params["rport"] = str(flow.remote[1])
        params.setdefault("received", flow.remote[0])
    if not params:
        return request
    return request.with_top_via(via.with_params(**params))


def reply_address(via: Via, flow: Flow) -> Address:
    """Where a UDP response goes (RFC 3261 18.2.2 with RFC 3581, no maddr)."""
    if via.rport is not None:
        return (flow.remote[0], via.rport)
    return (flow.remote[0], via.port or 5060)


class StatelessAnswers:
    """The recent stateless answers to UDP requests, by request datagram,
    and the key of their To tags."""

    __slots__ = ("_by_wire", "_key", "_limit")

    def __init__(self, limit: int = ANSWERS_KEPT) -> None:
        #: Request datagram -> (its remote and local address, where the
        #: answer went, the answer's bytes).
        self._by_wire: dict[bytes, tuple[Address, Address, Address | None, bytes]] = {}
        self._key = token_bytes(16)
        self._limit = limit

    def __len__(self) -> int:
        return len(self._by_wire)

    def tag(self, request: Request) -> str:
        """The To tag of a stateless answer to ``request``."""
        return stateless_tag(request, self._key)

    def keep(self, wire: bytes, flow: Flow, sent_to: Address | None, answer: bytes) -> None:
        """Remember that ``wire``, received on ``flow``, was answered ``answer``."""
        remember(self._by_wire, wire, (flow.remote, flow.local, sent_to, answer), self._limit)

    def find(self, wire: bytes, flow: Flow) -> tuple[Address | None, bytes] | None:
        """Where the answer to a copy of ``wire`` on ``flow`` goes, and its
        bytes; None if it is not a copy of a request answered so."""
        found = self._by_wire.get(wire)
        if found is None or found[0] != flow.remote or found[1] != flow.local:
            return None
        return found[2], found[3]

    def clear(self) -> None:
        """Forget every answer (the endpoint is closing)."""
        self._by_wire.clear()
