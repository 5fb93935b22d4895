"""RFC 3263 location against a real DNS server (dnsmasq on a loopback port)."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from phonecast.net.locate import LocateError, locate, locate_host_list, make_resolver
from phonecast.sip import SipUri, parse_uri
from tests.dnsmasq import dnsmasq


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """dnsmasq answering only for the test zone, on 127.0.0.1:<free port>."""
    records = [
        "--host-record=pbx1.phones.test,127.0.0.11",
        "--host-record=pbx2.phones.test,127.0.0.12",
        "--host-record=plain.phones.test,127.0.0.13",
        "--srv-host=_sip._udp.phones.test,pbx1.phones.test,5071,0,1",
        "--srv-host=_sip._udp.phones.test,pbx2.phones.test,5072,1,1",
        "--srv-host=_sip._tcp.tcponly.test,pbx2.phones.test,5080,0,1",
        "--naptr-record=naptr.test,10,50,s,SIP+D2T,,_sip._tcp.tcponly.test",
        # A NAPTR flagged "a" ahead of the "s" one: not an SRV name.
        "--naptr-record=naptr.test,5,50,a,SIP+D2U,,_sip._udp.phones.test",
        "--srv-host=_sip._udp.hl.test,pbx1.phones.test,5090,0,1",
        # SRV records whose target is "." (no such service), and an A record
        # of the same name (its web server): the A record is not a SIP server.
        "--host-record=nosip.test,127.0.0.20",
        "--srv-host=_sip._udp.nosip.test",
        "--srv-host=_sip._tcp.nosip.test",
        "--srv-host=_sips._tcp.nosip.test",
        "--srv-host=_sips._tcp.secure.test,pbx1.phones.test,5061,0,1",
    ]
    with dnsmasq(tmp_path_factory.mktemp("dnsmasq"), records) as server:
        yield server


async def test_srv_in_priority_order(dns_server: str) -> None:
    targets = await locate(
        parse_uri("sip:1001@phones.test"),  # type: ignore[arg-type]
        resolver=make_resolver(dns_server),
    )
    assert [(t.host, t.port, t.transport, t.source) for t in targets] == [
        ("127.0.0.11", 5071, "udp", "srv"),
        ("127.0.0.12", 5072, "udp", "srv"),
    ]


async def test_naptr_then_srv_then_a(dns_server: str) -> None:
    targets = await locate(
        parse_uri("sip:1001@naptr.test"),  # type: ignore[arg-type]
        resolver=make_resolver(dns_server),
    )
    assert [(t.host, t.port, t.transport, t.source) for t in targets] == [
        ("127.0.0.12", 5080, "tcp", "naptr")
    ]


async def test_explicit_port_skips_srv_and_a_fallback(dns_server: str) -> None:
    resolver = make_resolver(dns_server)
    explicit = await locate(
        parse_uri("sip:1001@pbx1.phones.test:6000"),  # type: ignore[arg-type]
        resolver=resolver,
    )
    assert [(t.host, t.port, t.source) for t in explicit] == [("127.0.0.11", 6000, "a")]
    plain = await locate(
        parse_uri("sip:1001@plain.phones.test"),  # type: ignore[arg-type]
        resolver=resolver,
    )
    assert [(t.host, t.port, t.transport) for t in plain] == [("127.0.0.13", 5060, "udp")]


async def test_numeric_host_needs_no_dns() -> None:
    dead = make_resolver("127.0.0.1:9")  # nothing listens there; it must not be asked
    targets = await locate(SipUri("127.0.0.5", "1001"), resolver=dead)
    assert [(t.host, t.port, t.transport) for t in targets] == [("127.0.0.5", 5060, "udp")]
    tls = await locate(parse_uri("sips:1001@[::1]"), resolver=dead)  # type: ignore[arg-type]
    assert [(t.host, t.port, t.transport) for t in tls] == [("::1", 5061, "tls")]


async def test_nxdomain_names_the_host(dns_server: str) -> None:
    with pytest.raises(LocateError, match=r"missing\.test"):
        await locate(
            parse_uri("sip:1001@missing.test"),  # type: ignore[arg-type]
            resolver=make_resolver(dns_server),
        )


async def test_host_list_through_dns(dns_server: str) -> None:
    targets = await locate_host_list(
        "hl.test|plain.phones.test:5099:p=1|x:A=127.0.0.7:p=2",
        resolver=make_resolver(dns_server),
        rng=random.Random(1),
    )
    assert [(t.host, t.port) for t in targets] == [
        ("127.0.0.11", 5090),
        ("127.0.0.13", 5099),
        ("127.0.0.7", 5060),
    ]


def test_make_resolver_forms() -> None:
    assert make_resolver("127.0.0.1:5353").port == 5353
    assert make_resolver("[::1]:5300").nameservers == ["::1"]
    with pytest.raises(ValueError):
        make_resolver("dns.example.com")


@pytest.mark.parametrize("transport", ["sctp", "ws", "x-y"])
async def test_a_transport_we_do_not_speak_is_a_locate_error(transport: str) -> None:
    """It reached the endpoint and raised a bare ValueError out of push."""
    uri = parse_uri(f"sip:1001@127.0.0.1:5070;transport={transport}")
    assert isinstance(uri, SipUri)
    with pytest.raises(LocateError, match=f"transport '{transport}' is not one we speak"):
        await locate(uri)


async def test_the_transport_parameter_is_read_without_regard_to_case() -> None:
    uri = parse_uri("sip:1001@127.0.0.1:5070;transport=TCP")
    assert isinstance(uri, SipUri)
    assert [t.transport for t in await locate(uri)] == ["tcp"]


async def test_an_srv_target_of_dot_is_no_service_not_a_reason_for_a_records(
    dns_server: str,
) -> None:
    """RFC 2782: "." says the service is decidedly not available; RFC 3263
    4.2 falls back to A records only where no SRV record exists.  The push
    went to the domain's A record."""
    resolver = make_resolver(dns_server)
    with pytest.raises(LocateError, match=r"_sip\._udp\.nosip\.test.*no such service"):
        await locate(parse_uri("sip:1001@nosip.test"), resolver=resolver)  # type: ignore[arg-type]
    with pytest.raises(LocateError, match=r"no address for any entry of 'nosip\.test'"):
        await locate_host_list("nosip.test", resolver=resolver)


async def test_one_host_list_entry_failing_leaves_the_others(dns_server: str) -> None:
    """A DNS failure of one entry (no service, a timeout) ended the whole
    list, numeric failovers and all."""
    targets = await locate_host_list("nosip.test|127.0.0.5:p=1", resolver=make_resolver(dns_server))
    assert [(t.host, t.port) for t in targets] == [("127.0.0.5", 5060)]
    dead = make_resolver("127.0.0.1:9", timeout=0.3)  # nothing answers there
    for text in ("pbx1.example.test|127.0.0.5:p=1", "pbx1.example.test:5070|127.0.0.5:p=1"):
        targets = await locate_host_list(text, resolver=dead)
        assert [(t.host, t.port) for t in targets] == [("127.0.0.5", 5060)]
    with pytest.raises(LocateError, match=r"no address for any entry .*: DNS timeout"):
        await locate_host_list("pbx1.example.test", resolver=dead)


@pytest.mark.parametrize("params", [";transport=tcp", ";transport=TCP", ""])
async def test_a_sips_uri_is_tls_whatever_its_transport_says(dns_server: str, params: str) -> None:
    """RFC 3261 26.2.2: ``sips:...;transport=tcp`` is TLS over TCP; it went
    out as plain TCP, a TLS-only URI sent in clear."""
    uri = parse_uri(f"sips:1001@127.0.0.5{params}")
    assert isinstance(uri, SipUri)
    assert [(t.transport, t.port) for t in await locate(uri)] == [("tls", 5061)]
    assert [(t.transport, t.port) for t in await locate(uri, transport="tcp")] == [("tls", 5061)]
    named = parse_uri(f"sips:1001@secure.test{params}")
    assert isinstance(named, SipUri)
    found = await locate(named, resolver=make_resolver(dns_server))
    assert [(t.host, t.port, t.transport) for t in found] == [("127.0.0.11", 5061, "tls")]


async def test_a_sips_uri_over_udp_is_refused() -> None:
    uri = parse_uri("sips:1001@127.0.0.5;transport=udp")
    assert isinstance(uri, SipUri)
    with pytest.raises(LocateError, match="a sips: URI needs TLS, which udp cannot carry"):
        await locate(uri)


async def test_an_ipv6_maddr_is_a_literal_not_a_name() -> None:
    for text in ("sip:1001@phone.invalid;maddr=[::1]", "sip:1001@phone.invalid:5070;maddr=[::1]"):
        uri = parse_uri(text)
        assert isinstance(uri, SipUri)
        (target,) = await locate(uri, resolver=make_resolver("127.0.0.1:9", timeout=0.3))
        assert (target.host, target.source) == ("::1", "literal")


async def test_a_host_list_transport_is_read_without_regard_to_case() -> None:
    """A KeyError once, where locate() took any case."""
    (target,) = await locate_host_list("127.0.0.5", transport="TCP")
    assert (target.transport, target.port) == ("tcp", 5060)
    with pytest.raises(LocateError, match="transport 'sctp' is not one we speak"):
        await locate_host_list("127.0.0.5", transport="sctp")
