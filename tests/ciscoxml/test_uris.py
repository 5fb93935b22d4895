"""Internal URIs: parsed into kind and argument, checked per phone family."""

from __future__ import annotations

import re

import pytest

from phonecast.ciscoxml import (
    InternalUri,
    InvalidUriError,
    UriKind,
    check_uri,
    classify_uri,
    is_http_url,
)
from phonecast.ciscoxml.uris import ENTERPRISE_KINDS, SPA_KINDS

from .strategies import EXECUTABLE_URIS, SCREEN_ONLY_URIS


def test_parsed_value_is_kind_and_argument() -> None:
    assert InternalUri.parse("Dial:1234") == InternalUri(UriKind.DIAL, "1234")
    assert InternalUri.parse("Display:On:10") == InternalUri(UriKind.DISPLAY, "On:10")
    uri = InternalUri.parse("key:Services")  # kind matched without regard to case
    assert uri.kind is UriKind.KEY and uri.argument == "Services"
    assert str(uri) == "Key:Services"


def test_classify_tells_http_from_internal() -> None:
    assert classify_uri("http://h/a.xml") is None
    assert classify_uri("HTTPS://h:8443/a?b=c") is None
    assert classify_uri("Init:Services") == InternalUri(UriKind.INIT, "Services")
    for bad in ("ftp://h/x", "/relative.xml", "Services", "mailto:x@y", "http://", "http://h/a b"):
        with pytest.raises(InvalidUriError):
            classify_uri(bad)


@pytest.mark.parametrize("uri", EXECUTABLE_URIS + SCREEN_ONLY_URIS)
def test_documented_forms_are_accepted(uri: str) -> None:
    parsed = InternalUri.parse(uri)
    assert str(parsed) == uri


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("Key:", "a key name"),
        ("Key:Line 1", "a key name"),
        ("Init:", "an application name"),
        ("Dial:", "DTMF digits"),
        ("Dial:12a", "DTMF digits"),
        ("Dial:1:a:b:c:d", "at most three further"),
        ("EditDial:1:2", "EditDial takes DTMF"),
        ("Play:../etc/passwd", "a file name"),
        ("Display:Dim:10", "On:<minutes>, Off:<minutes> or Default"),
        ("Display:On", "On:<minutes>"),
        ("Display:On:-1", "On:<minutes>"),
        ("Display:Off:1441", "at most 1440"),
        ("RTPRx:10.0.0.1", "address:port[:volume] or Stop"),
        ("RTPTx:10.0.0.1:20480:50", "address:port or Stop"),
        ("RTPRx:10.0.0.1:1000", "20480 to 32768"),
        ("RTPRx:10.0.0.1:32770", "20480 to 32768"),
        ("RTPMTx:host:20480", "is not an IP address"),
        ("Notify:https:h:80:p", "http is the only one"),
        ("Notify:http:h:0:p", "1-65535"),
        ("Notify:http:h:80", "expected Notify:"),
        ("SendDigits:x", "SendDigits takes DTMF"),
        ("SoftKey:", "soft key name"),
        ("QueryStringParam:\x01", "no control characters"),
    ],
)
def test_malformed_arguments_are_refused(uri: str, message: str) -> None:
    with pytest.raises(InvalidUriError, match=re.escape(message)):
        InternalUri.parse(uri)


def test_families() -> None:
    assert {k.value for k in SPA_KINDS} == {"Key", "SoftKey", "Init", "Dial", "EditDial", "Play"}
    assert frozenset(UriKind) == ENTERPRISE_KINDS
    assert check_uri("Key:Services", family="spa") == InternalUri(UriKind.KEY, "Services")
    assert check_uri("http://h/a", family="spa") is None
    for uri in ("RTPRx:10.0.0.1:20480", "Display:Default", "Notify:http:h:80:p", "SendDigits:1"):
        assert check_uri(uri, family="enterprise") is not None
        with pytest.raises(InvalidUriError, match="spa phones do not run"):
            check_uri(uri, family="spa")
    with pytest.raises(InvalidUriError, match="QueryStringParam: URIs"):
        check_uri("QueryStringParam:a=1", family="spa")


def test_execute_context() -> None:
    assert check_uri("SoftKey:Exit") is not None
    with pytest.raises(InvalidUriError, match="not allowed in Execute"):
        check_uri("SoftKey:Exit", in_execute=True)
    with pytest.raises(InvalidUriError, match="not allowed in Execute"):
        check_uri("Notify:http:h:80:p", in_execute=True)
    assert check_uri("Key:Services", in_execute=True, family="spa") is not None


def test_error_names_owner_and_field() -> None:
    with pytest.raises(InvalidUriError) as caught:
        check_uri("Dail:1", owner="CiscoIPPhoneMenu/MenuItem[2]", field="URL")
    assert str(caught.value).startswith("CiscoIPPhoneMenu/MenuItem[2]: URL 'Dail:1'")
    assert caught.value.field == "URL"


def test_is_http_url() -> None:
    assert is_http_url("http://h") and is_http_url("Https://h/x?y=1#z")
    assert not is_http_url("http://") and not is_http_url("http://h /x")
    assert not is_http_url("Key:Services") and not is_http_url("httpx://h")
    # What the fetcher could not read as a URL is none here either.
    for bad in ("http://[zz]/x", "http://[::1/x", "http://h:0/", "http://h:99999/", "http://u@/x"):
        assert not is_http_url(bad), bad
    assert not is_http_url("http://h/a\x00b") and not is_http_url("http://h/\x7f")
    assert is_http_url("http://[::1]:8080/x") and is_http_url("http://h:65535/")


def test_a_refused_execute_url_is_quoted_without_its_password() -> None:
    """The message becomes the phone's xml_error event."""
    from phonecast.ciscoxml import parse_execute

    body = b'<CiscoIPPhoneExecute><ExecuteItem URL="http://u:pwA@127.0.0.1:99999/x"/></CiscoIPPhoneExecute>'
    with pytest.raises(ValueError) as caught:
        parse_execute(body)
    assert "pwA" not in str(caught.value) and "http://u:***@127.0.0.1:99999/x" in str(caught.value)
