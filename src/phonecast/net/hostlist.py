"""Cisco proxy host lists and RFC 2782 ordering (pure, no I/O).

``host-list = srv *( "|" srv )``, ``srv = hostname [":" port] [":p=" priority]
[":w=" weight] [":A=" ip *("," ip)]``; the seed's defaults are priority 0,
weight 1 and port 0, meaning "the transport's default" (5060 for UDP/TCP,
5061 for TLS).  :func:`order_srv` implements RFC 2782's selection: lower
priority first; within a priority, weighted random with zero-weight entries
placed first, running sums and a uniform pick in [0, sum].
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from phonecast.sip._abnf import HOST_RE, small_number
from phonecast.sip.uri import DEFAULT_PORTS


class HostListError(ValueError):
    """A host list entry is malformed (says which entry and why)."""


@dataclass(frozen=True, slots=True)
class HostEntry:
    """One entry of a Cisco host list."""

    host: str
    port: int = 0
    priority: int = 0
    weight: int = 1
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Target:
    """A place to send a request: host (IP or name), port, transport, how found."""

    host: str
    port: int
    transport: str
    source: str = "literal"
    server_name: str | None = None


class Weighted(Protocol):
    """Anything with an RFC 2782 priority and weight."""

    @property
    def priority(self) -> int: ...

    @property
    def weight(self) -> int: ...


W = TypeVar("W", bound=Weighted)


def default_port(transport: str) -> int:
    """The transport's default port (RFC 3261 19.1.2)."""
    return DEFAULT_PORTS.get(transport.lower(), 5060)


def _number(entry: str, index: int, name: str, text: str, limit: int) -> int:
    value = small_number(text, limit)
    if value is None:
        raise HostListError(
            f"host list entry {index} ({entry!r}): {name} {text!r} is not a "
            f"number from 0 to {limit}"
        )
    return value


def _check_host(entry: str, index: int, host: str, *, bracketed: bool) -> None:
    """A host is a name or an address by RFC 3261's grammar, nothing else:
    it goes into a Route header and a DNS query, where a space, a quote or a
    control character would break the one and mean nothing to the other."""
    if bracketed:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise HostListError(
                f"host list entry {index} ({entry!r}): {host!r} is not an IPv6 address"
            ) from None
    elif HOST_RE.fullmatch(host) is None:
        raise HostListError(
            f"host list entry {index} ({entry!r}): {host!r} is not a host name or IPv4 address"
        )


def parse_host_list(text: str) -> tuple[HostEntry, ...]:
    """Parse a Cisco host list (see the module docstring)."""
    entries: list[HostEntry] = []
    for index, raw in enumerate(text.split("|"), 1):
        entry = raw.strip()
        if not entry:
            raise HostListError(f"host list entry {index} is empty")
        if entry.startswith("["):
            close = entry.find("]")
            if close < 0:
                raise HostListError(f"host list entry {index} ({entry!r}): unterminated '['")
            host, rest = entry[1:close], entry[close + 1 :]
            if rest and not rest.startswith(":"):
                raise HostListError(
                    f"host list entry {index} ({entry!r}): {rest!r} after ']' "
                    "is not ':' and a field"
                )
        else:
            host, _, rest = entry.partition(":")
            rest = ":" + rest if _ else ""
        if not host:
            raise HostListError(f"host list entry {index} ({entry!r}): empty host")
        _check_host(entry, index, host, bracketed=entry.startswith("["))
        port, priority, weight = 0, 0, 1
        addresses: tuple[str, ...] = ()
        parts = rest.split(":")[1:] if rest else []
        while parts:
            part = parts.pop(0)
            key, eq, value = part.partition("=")
            if key == "A":
                # IPv6 addresses hold colons: what follows up to the next
                # field (a part with "=") is the list's, bracketed or not.
                while parts and "=" not in parts[0]:
                    value += ":" + parts.pop(0)
            if not eq:
                port = _number(entry, index, "port", key, 65535)
            elif key == "p":
                priority = _number(entry, index, "priority", value, 65535)
            elif key == "w":
                weight = _number(entry, index, "weight", value, 65535)
            elif key == "A":
                addresses = tuple(
                    a.strip().removeprefix("[").removesuffix("]")
                    for a in value.split(",")
                    if a.strip()
                )
                for addr in addresses:
                    try:
                        ipaddress.ip_address(addr)
                    except ValueError:
                        raise HostListError(
                            f"host list entry {index} ({entry!r}): {addr!r} is not an IP address"
                        ) from None
            else:
                raise HostListError(f"host list entry {index} ({entry!r}): unknown field {part!r}")
        entries.append(HostEntry(host, port, priority, weight, addresses))
    return tuple(entries)


def order_srv(records: Sequence[W], rng: random.Random) -> list[W]:
    """RFC 2782 order: by priority, weighted random within each priority."""
    out: list[W] = []
    for priority in sorted({r.priority for r in records}):
        group = [r for r in records if r.priority == priority]
        group.sort(key=lambda r: r.weight != 0)  # zero weights first
        while group:
            # An integer, as RFC 2782 has it.  From 0 only while a weight-0
            # record is left (first in the group): 0 picks it, one chance in
            # sum + 1, which a float from uniform() never gave.  From 1
            # otherwise, so that the first record is not favoured by the
            # extra number.
            low = 0 if group[0].weight == 0 else 1
            pick = rng.randint(low, max(low, sum(r.weight for r in group)))
            running = 0
            for i, r in enumerate(group):
                running += r.weight
                if running >= pick:
                    out.append(group.pop(i))
                    break
    return out
