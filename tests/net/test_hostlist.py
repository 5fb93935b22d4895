"""Cisco host lists and RFC 2782 weighted ordering."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phonecast.net.hostlist import HostEntry, HostListError, order_srv, parse_host_list


def test_defaults_and_fields() -> None:
    entries = parse_host_list(
        "pbx1.example.com|pbx2.example.com:5070:p=1:w=3|[2001:db8::1]:5061:p=2"
        "|pbx3:A=127.0.0.2,127.0.0.3"
    )
    assert entries == (
        HostEntry("pbx1.example.com"),
        HostEntry("pbx2.example.com", 5070, 1, 3),
        HostEntry("2001:db8::1", 5061, 2),
        HostEntry("pbx3", 0, 0, 1, ("127.0.0.2", "127.0.0.3")),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "entry 1 is empty"),
        ("a||b", "entry 2 is empty"),
        ("a:99999", "port"),
        ("a:p=x", "priority"),
        ("a:w=-1", "weight"),
        ("a:A=not-an-ip", "not an IP"),
        ("a:q=1", "unknown field"),
        ("[::1", "unterminated"),
        ("[::1]5060", "after ']'"),
        ("[pbx.example.com]:5060", "not an IPv6 address"),
        ("pbx x.example.com", "not a host name"),
        ("pbx\r\nRoute: <sip:evil>", "not a host name"),
        ('pbx"', "not a host name"),
        ("a|-bad-.example.com:5070", "entry 2"),
        ("127.0.0.1:\u0662\u0665\u0660\u0667\u0660", "port"),  # Arabic-Indic digits
        ("h:\u00b2", "port"),
        ("h:" + "9" * 5000, "port"),
    ],
)
def test_errors_name_the_entry(text: str, message: str) -> None:
    with pytest.raises(HostListError, match=message):
        parse_host_list(text)


@dataclass(frozen=True)
class Rec:
    name: str
    priority: int
    weight: int


def test_priority_always_respected_and_zero_weight_first_possible() -> None:
    recs = [Rec("c", 2, 5), Rec("a", 1, 0), Rec("b", 1, 10)]
    for seed in range(50):
        order = order_srv(recs, random.Random(seed))
        assert [r.priority for r in order] == [1, 1, 2]


def test_a_zero_weight_is_first_one_time_in_sum_plus_one() -> None:
    """RFC 2782 picks an integer from 0 to the sum, inclusive: a weight-0
    record comes first one time in (sum + 1).  A float pick was never 0,
    and such a record was never first."""
    rng = random.Random(7)
    draws = 20_000
    for heavy in (1, 10):
        recs = [Rec("zero", 0, 0), Rec("heavy", 0, heavy)]
        first = sum(order_srv(recs, rng)[0].name == "zero" for _ in range(draws))
        p = 1 / (heavy + 1)
        assert abs(first - draws * p) < 5 * math.sqrt(draws * p * (1 - p)), (heavy, first)


def test_ipv6_addresses_in_a_fields() -> None:
    """``:A=`` was split at every colon: no IPv6 address could be given."""
    assert parse_host_list("pbx:A=2001:db8::1")[0].addresses == ("2001:db8::1",)
    (entry,) = parse_host_list("pbx:5070:A=[2001:db8::1],127.0.0.2:p=1")
    assert (entry.port, entry.priority) == (5070, 1)
    assert entry.addresses == ("2001:db8::1", "127.0.0.2")
    assert parse_host_list("pbx:A=127.0.0.2,::1")[0].addresses == ("127.0.0.2", "::1")
    with pytest.raises(HostListError, match="is not an IP address"):
        parse_host_list("pbx:A=2001:db8::1:zz")


def test_weighted_choice_statistics() -> None:
    recs = [Rec("light", 0, 1), Rec("heavy", 0, 3)]
    rng = random.Random(12345)
    draws = 20_000
    heavy_first = sum(order_srv(recs, rng)[0].name == "heavy" for _ in range(draws))
    expected = draws * 0.75
    sigma = math.sqrt(draws * 0.75 * 0.25)
    assert abs(heavy_first - expected) < 5 * sigma


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10)), max_size=12), st.integers())
def test_order_is_a_permutation_with_non_decreasing_priority(
    pairs: list[tuple[int, int]], seed: int
) -> None:
    recs = [Rec(str(i), p, w) for i, (p, w) in enumerate(pairs)]
    order = order_srv(recs, random.Random(seed))
    assert sorted(r.name for r in order) == sorted(r.name for r in recs)
    assert [r.priority for r in order] == sorted(r.priority for r in recs)
