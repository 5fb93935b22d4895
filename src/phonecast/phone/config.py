"""Emulated phone configuration, mirroring the SPA's settings."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

from phonecast.credentials import Secret

#: Events the SPA accepts on NOTIFY (field guide), spelt as a 489 Bad
#: Event's Allow-Events names them (RFC 6665 8.2.2 / RFC 3265 7.2.2: the
#: events the UA does take).
ALLOW_EVENTS = "XML-Service, resync, reboot_now, restart_now, report, check-sync"
#: The same, lower-cased: an Event is compared case-insensitively.
ACCEPTED_EVENTS = frozenset(name.strip().lower() for name in ALLOW_EVENTS.split(","))


@dataclass(frozen=True, slots=True)
class LineConfig:
    """One line (extension): its user, optional auth id, password and port."""

    user: str
    password: Secret = field(repr=False)
    port: int
    auth_id: str | None = None

    @property
    def digest_user(self) -> str:
        """The username a digest must carry (auth id if set, else user id)."""
        return self.auth_id or self.user


@dataclass(frozen=True, slots=True)
class PhoneSettings:
    """Settings that change how the phone treats a push (SPA names in comments)."""

    #: Auth_Resync-Reboot: challenge XML-Service/resync/reboot/report NOTIFYs.
    auth_notify: bool = True
    #: Restrict_Source_IP: drop SIP from anywhere but this proxy address.
    restrict_source_ip: str | None = None
    realm: str = "phonecast"
    algorithm: str = "MD5"
    nonce_lifetime: float = 300.0
    #: Check the digest uri against the Request-URI (off: SIPp and registrars differ).
    strict_uri: bool = False
    #: Refuse a URL body with trailing CR/LF (SPA500 firmware 7.4.4+ behaviour).
    strict_url_body: bool = False
    #: INVITE handling: answer, busy or decline.
    call_mode: str = "answer"
    #: How long an INVITE rings (its 180 and early dialog) before the 200, seconds.
    ring_seconds: float = 0.5
    #: How long a Dial: action keeps the phone busy, seconds.
    dial_seconds: float = 5.0
    #: Largest NOTIFY body accepted, octets.
    max_body: int = 16 * 1024
    #: Also accept SIP over TCP on each line's port (a fleet may turn it off
    #: to halve its file descriptors).
    tcp: bool = True
    #: The stream listener on each line's port speaks TLS instead of plain
    #: TCP, as an SPA line whose SIP transport is TLS (the host needs a
    #: server certificate: ``PhoneHost(server_ssl=...)``).
    tls: bool = False
    #: The body types an authenticated NOTIFY may carry, lower-case
    #: ``type/subtype``; others (and a body without a Content-Type) get 415
    #: with Accept.  None, the default: any type, as the field guide says
    #: the phone is not known to check it (its knowledge base's example
    #: sends a URL as text/html).
    notify_types: frozenset[str] | None = None
    #: Failure drills: answer every NOTIFY with this code (e.g. 486, 503).
    notify_reject: int | None = None
    #: Register every line at this registrar (``host:port``), as phones do.
    registrar: str | None = None
    register_expires: int = 3600
    #: What the lines register over: "udp", or "tcp"/"tls", as an SPA line
    #: whose SIP transport is TCP or TLS registers over it (the Contact then
    #: says so, and the line's stream listener must speak it: see ``tcp``
    #: and ``tls``).  The lines of a host share one connection to the
    #: registrar, as they share one endpoint.
    register_transport: str = "udp"
    #: The name a TLS registrar's certificate must carry (its SNI too); by
    #: default its address, which the certificate must then list.
    registrar_tls_name: str | None = None
    #: After a failed REGISTER, try again after this many seconds (the SPA's
    #: Register Retry Intvl, 30 s by default).
    register_retry: float = 30.0

    @property
    def stream_transport(self) -> str | None:
        """What the stream listener on each line's port speaks: "tls" (which
        takes TCP's place), "tcp", or None when there is none."""
        if self.tls:
            return "tls"
        return "tcp" if self.tcp else None

    def __post_init__(self) -> None:
        # Expires 0 would be an un-REGISTER (RFC 3261 10.2.2), and a retry
        # interval near 0 a REGISTER storm against a failing registrar.
        if not 1 <= self.register_expires <= 0xFFFFFFFF:
            raise ValueError(
                f"register_expires {self.register_expires}: not 1 to 4294967295 seconds"
            )
        if not self.register_retry >= 0.1:  # also refuses NaN
            raise ValueError(f"register_retry {self.register_retry}: below 0.1 seconds")
        # The registrar reaches a line over what its Contact names: a line
        # must listen on it (the CLI says the same, in its own words).
        transport = self.register_transport
        if transport not in ("udp", "tcp", "tls"):
            raise ValueError(f"register_transport {transport!r}: not udp, tcp or tls")
        if transport == "tls" and self.stream_transport != "tls":
            raise ValueError("register_transport 'tls' needs tls: the line must take TLS")
        if transport == "tcp" and self.stream_transport != "tcp":
            raise ValueError(
                "register_transport 'tcp' needs tcp, and not tls: the line must take TCP"
            )


@dataclass(frozen=True, slots=True)
class PhoneConfig:
    """One phone: a name, the address its lines listen on, lines, settings."""

    name: str
    host: str
    lines: tuple[LineConfig, ...]
    settings: PhoneSettings = PhoneSettings()


def source_spelling(address: str) -> str:
    """``address`` (IPv4 or IPv6) spelt as the kernel reports a datagram's
    source, so that Restrict_Source_IP can compare text per datagram:
    ``0:0::1`` is ``::1`` and ``::ffff:10.0.0.1`` stays in its dotted form
    (``ipaddress`` would write ``::ffff:a00:1`` before Python 3.13).
    Raises ValueError if it is not an IP address."""
    parsed = ipaddress.ip_address(address)
    if parsed.version == 6 and parsed.scope_id is None:
        return socket.inet_ntop(socket.AF_INET6, parsed.packed)
    return str(parsed)
