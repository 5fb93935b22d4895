"""RFC 3263 server location with dnspython's async resolver.

Transport: an explicit ``transport`` parameter wins; ``sips`` means TLS; a
numeric host or an explicit port means UDP (for ``sip``); otherwise NAPTR
records (``SIP+D2U``, ``SIP+D2T``, ``SIPS+D2T``) choose, else the SRV records
that exist (``_sip._udp``, ``_sip._tcp``, ``_sips._tcp``), else UDP.
Port and address: a numeric host skips DNS; an explicit port skips SRV (A and
AAAA only); otherwise SRV in RFC 2782 order, each target's addresses in turn,
and A/AAAA with the default port when there is no SRV.  The list returned
is the failover order (RFC 3263 4.3): the caller tries the next target on a
timeout, a transport error or a 503.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any, Final

import dns.asyncresolver
import dns.exception
import dns.resolver

from phonecast.net.hostlist import (
    HostEntry,
    Target,
    default_port,
    order_srv,
    parse_host_list,
)
from phonecast.sip._abnf import small_number
from phonecast.sip.errors import SipError
from phonecast.sip.uri import SipUri

Resolver = dns.asyncresolver.Resolver
_NAPTR_SERVICES = {"sip+d2u": "udp", "sip+d2t": "tcp", "sips+d2t": "tls"}
_SRV_PREFIX = {"udp": "_sip._udp", "tcp": "_sip._tcp", "tls": "_sips._tcp"}


#: The transports a request can be sent over here (RFC 3261 18; no SCTP,
#: no WebSocket).
SPOKEN_TRANSPORTS: Final = ("udp", "tcp", "tls")


class LocateError(SipError):
    """A name could not be resolved (says which and why)."""

    status_code = None


def make_resolver(nameserver: str | None, *, timeout: float = 2.0) -> Resolver:
    """A resolver asking only ``HOST[:PORT]`` (``[v6]:PORT``), or the system's."""
    if nameserver is None:
        return dns.asyncresolver.Resolver()
    text = nameserver.strip()
    port = 53
    port_text = ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"bad port in {nameserver!r}")
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host = text
    if port_text or text.endswith(":"):
        given = small_number(port_text)
        if not given:
            raise ValueError(f"bad port in {nameserver!r}: a number from 1 to 65535")
        port = given
    ipaddress.ip_address(host)  # raises ValueError for a name
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = port
    resolver.timeout = timeout
    resolver.lifetime = timeout * 2
    return resolver


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _query(resolver: Resolver, name: str, rdtype: str) -> list[Any]:
    try:
        answer = await resolver.resolve(name, rdtype)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
        return []
    except dns.exception.Timeout:
        raise LocateError(f"DNS timeout looking up {rdtype} {name}") from None
    return list(answer)


def _spoken(transport: str) -> str:
    """``transport`` in lower case, if it is one we speak."""
    chosen = transport.lower()
    if chosen not in SPOKEN_TRANSPORTS:
        raise LocateError(
            f"transport {chosen!r} is not one we speak ({', '.join(SPOKEN_TRANSPORTS)})"
        )
    return chosen


def secure_transport(transport: str | None) -> str:
    """The transport of a ``sips:`` URI's every hop, given the one asked
    for: TLS (RFC 3261 26.2.2).  A ``;transport=tcp`` names TLS's own
    transport, and went out in clear; UDP cannot carry TLS at all."""
    chosen = _spoken(transport or "tls")
    if chosen == "udp":
        raise LocateError("a sips: URI needs TLS, which udp cannot carry")
    return "tls"


async def resolve_addresses(resolver: Resolver, name: str) -> list[str]:
    """A and AAAA of ``name`` (IPv4 first)."""
    if name.lower() in ("localhost", "localhost."):
        return ["127.0.0.1"]
    v4 = [r.address for r in await _query(resolver, name, "A")]
    v6 = [r.address for r in await _query(resolver, name, "AAAA")]
    return v4 + v6


async def _srv_targets(
    resolver: Resolver,
    srv_name: str,
    transport: str,
    rng: random.Random,
    server_name: str,
    source: str = "srv",
    seen: list[str] | None = None,
) -> list[Target]:
    """Addresses of the SRV records of ``srv_name``, in RFC 2782 order.

    ``srv_name`` is added to ``seen`` if it has any record at all: RFC 3263
    4.2 falls back to the name's A records only where no SRV record exists.
    A target of ``.`` says the service is "decidedly not available" there
    (RFC 2782), and is no address; it once sent the push to the domain's A
    record (its web server, say)."""
    out: list[Target] = []
    records = await _query(resolver, srv_name, "SRV")
    if records and seen is not None:
        seen.append(srv_name)
    for rec in order_srv(records, rng):
        target = str(rec.target).rstrip(".")
        if not target:
            continue
        for addr in await resolve_addresses(resolver, target):
            out.append(Target(addr, int(rec.port), transport, source, server_name))
    return out


def _no_service(seen: list[str]) -> LocateError:
    return LocateError(
        f"{', '.join(seen)}: SRV records, but none names a reachable server"
        " (a target '.' says there is no such service)"
    )


async def locate(
    uri: SipUri,
    *,
    transport: str | None = None,
    resolver: Resolver | None = None,
    rng: random.Random | None = None,
) -> list[Target]:
    """Ordered targets for ``uri`` (RFC 3263 section 4)."""
    rng = rng or random.Random()
    host = uri.maddr or uri.hostname
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # an IPv6 maddr (maddr = host, RFC 3261 19.1.1)
    chosen: str | None = transport or uri.transport or ("tls" if uri.secure else None)
    if chosen is not None:
        chosen = secure_transport(chosen) if uri.secure else _spoken(chosen)
    if _is_ip(host):
        t = chosen or "udp"
        return [Target(host, uri.port or default_port(t), t, "literal", uri.hostname)]
    resolver = resolver or dns.asyncresolver.Resolver()
    if uri.port is not None:
        t = chosen or "udp"
        addrs = await resolve_addresses(resolver, host)
        if not addrs:
            raise LocateError(f"{host} has no A or AAAA record")
        return [Target(a, uri.port, t, "a", host) for a in addrs]
    seen_srv: list[str] = []
    if chosen is None:
        for rec in sorted(
            await _query(resolver, host, "NAPTR"), key=lambda r: (r.order, r.preference)
        ):
            service = rec.service.decode().lower() if isinstance(rec.service, bytes) else ""
            naptr_t = _NAPTR_SERVICES.get(service)
            if naptr_t is None or (uri.secure and naptr_t != "tls"):
                continue
            if not isinstance(rec.flags, bytes) or rec.flags.lower() != b"s":
                # RFC 3263 4.1: the replacement is an SRV name only under
                # flag "s"; another flag (a terminal "a", a rewrite) is not.
                continue
            replacement = str(rec.replacement).rstrip(".")
            found = await _srv_targets(resolver, replacement, naptr_t, rng, host, "naptr", seen_srv)
            if found:
                return found
        for t in ("tls",) if uri.secure else ("udp", "tcp", "tls"):
            found = await _srv_targets(
                resolver, f"{_SRV_PREFIX[t]}.{host}", t, rng, host, seen=seen_srv
            )
            if found:
                return found
        chosen = "tls" if uri.secure else "udp"
    else:
        found = await _srv_targets(
            resolver, f"{_SRV_PREFIX[chosen]}.{host}", chosen, rng, host, seen=seen_srv
        )
        if found:
            return found
    if seen_srv:
        raise _no_service(seen_srv)
    addrs = await resolve_addresses(resolver, host)
    if not addrs:
        raise LocateError(f"{host} has no NAPTR, SRV, A or AAAA record")
    final: str = chosen
    return [Target(a, default_port(final), final, "a", host) for a in addrs]


async def locate_host_list(
    text: str,
    *,
    transport: str | None = None,
    resolver: Resolver | None = None,
    rng: random.Random | None = None,
) -> list[Target]:
    """Ordered targets of a Cisco host list.

    Entries are ordered as RFC 2782 SRV records.  An entry with ``:A=``
    addresses uses them without DNS; a numeric host is itself; a name with
    port 0 is first tried as an SRV name (``_sip._udp.<name>``), then A/AAAA.
    """
    rng = rng or random.Random()
    t = _spoken(transport or "udp")
    out: list[Target] = []
    failures: list[str] = []
    for entry in order_srv(list(parse_host_list(text)), rng):
        # One entry's DNS failing (a timeout, no such service) is what the
        # list's later entries are there for: it once ended the whole list.
        try:
            out.extend(await _entry_targets(entry, t, resolver, rng))
        except LocateError as exc:
            failures.append(str(exc))
    if not out:
        why = f": {'; '.join(failures)}" if failures else ""
        raise LocateError(f"no address for any entry of {text!r}{why}")
    return out


async def _entry_targets(
    entry: HostEntry, transport: str, resolver: Resolver | None, rng: random.Random
) -> list[Target]:
    port = entry.port or default_port(transport)
    if entry.addresses:
        return [Target(a, port, transport, "host-list", entry.host) for a in entry.addresses]
    if _is_ip(entry.host):
        return [Target(entry.host, port, transport, "host-list", entry.host)]
    resolver = resolver or dns.asyncresolver.Resolver()
    if entry.port == 0:
        srv_name = f"{_SRV_PREFIX[transport]}.{entry.host}"
        seen: list[str] = []
        found = await _srv_targets(resolver, srv_name, transport, rng, entry.host, seen=seen)
        if found:
            return found
        if seen:
            raise _no_service(seen)
    return [
        Target(a, port, transport, "a", entry.host)
        for a in await resolve_addresses(resolver, entry.host)
    ]
