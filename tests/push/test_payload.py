"""The payload refuses header values that would inject headers."""

from __future__ import annotations

import pytest

from phonecast.push.payload import Payload, PayloadError, execute_payload, url_payload
from phonecast.push.pusher import PushOptions


@pytest.mark.parametrize("bad", ["a\r\nX-Evil: 1", "a\nb", "a\x00", "a\x7f", "a\x85"])
def test_control_characters_in_the_event_or_content_type_are_refused(bad: str) -> None:
    with pytest.raises(PayloadError, match="Event"):
        Payload(bad)
    with pytest.raises(PayloadError, match="Content-Type"):
        url_payload("http://x/a", content_type=bad)
    with pytest.raises(PayloadError, match="Event"):
        execute_payload(["Key:Services"], event=bad)


def test_an_empty_event_is_refused() -> None:
    with pytest.raises(PayloadError, match="Event"):
        Payload(" ")


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"subscription_state": "active\r\nX: 1"}, "Subscription-State"),
        ({"user_agent": "ua\nX: 1"}, "User-Agent"),
        ({"from_user": "me\r"}, "From"),
        ({"extra_headers": [("X-A", "v\r\nX-B: 1")]}, "X-A"),
        ({"extra_headers": [("X-A: b", "v")]}, "header name"),
    ],
)
def test_push_options_refuse_header_injection(fields: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        PushOptions(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://u:URLSECRET@127.0.0.1/x",
        "http://u:URLSECRET@127.0.0.1/x y",
        "http://u:URLSECRET@[::1/x",
    ],
)
def test_a_refused_url_is_quoted_without_its_password(url: str) -> None:
    for build in (url_payload, lambda u: execute_payload([u])):
        with pytest.raises((PayloadError, ValueError)) as caught:
            build(url)
        assert "URLSECRET" not in str(caught.value) and "***@" in str(caught.value)
