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
        "--srv-host=_sip._udp.hl.test,pbx1.phones.test,5090,0,1",
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
