"""The phone's settings helpers."""

from __future__ import annotations

import pytest

from phonecast.phone.config import source_spelling


@pytest.mark.parametrize(
    ("written", "spelt"),
    [
        ("0:0::1", "::1"),
        ("127.0.0.1", "127.0.0.1"),
        # ipaddress writes this ::ffff:a00:1 before Python 3.13; the kernel,
        # and so a datagram's source, the dotted form.
        ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
    ],
)
def test_a_source_is_spelt_as_the_kernel_reports_it(written: str, spelt: str) -> None:
    assert source_spelling(written) == spelt


def test_a_source_that_is_not_an_address_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        source_spelling("proxy.example.com")
