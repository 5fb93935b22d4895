"""Secrets never print; env:/file: references resolve or fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from phonecast.credentials import Secret, SecretError, redact_uri, resolve_secret


def test_secret_is_redacted_everywhere() -> None:
    s = Secret("hunter2", "env:PW")
    assert "hunter2" not in repr(s) and "hunter2" not in str(s) and "hunter2" not in f"{s}"
    assert s.reveal() == "hunter2" and s.source == "env:PW"
    assert s == Secret("hunter2") and s != Secret("hunter3")


def test_resolve_env_file_literal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHONECAST_TEST_PW", "from-env")
    assert resolve_secret("env:PHONECAST_TEST_PW").reveal() == "from-env"
    (tmp_path / "pw.txt").write_text("from-file\n")
    assert resolve_secret("file:pw.txt", base=tmp_path).reveal() == "from-file"
    assert resolve_secret("plain").reveal() == "plain"


def test_resolve_errors_name_the_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PHONECAST_UNSET", raising=False)
    with pytest.raises(SecretError, match="PHONECAST_UNSET"):
        resolve_secret("env:PHONECAST_UNSET")
    with pytest.raises(SecretError, match=r"missing\.txt"):
        resolve_secret("file:missing.txt", base=tmp_path)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("sip:1001:TOPSECRET@127.0.0.1:5060", "sip:1001:***@127.0.0.1:5060"),
        ("sips:1001:a:b@h", "sips:1001:***@h"),
        ("sip:1001:p@q@h", "sip:1001:***@h"),
        ("1001:TOPSECRET@h", "1001:***@h"),
        ("http://u:URLSECRET@127.0.0.1:27999/t.xml", "http://u:***@127.0.0.1:27999/t.xml"),
        ("HTTP://u:URLSECRET@h/", "HTTP://u:***@h/"),
        ("sip:1001@h", "sip:1001@h"),
        ("http://u@h/", "http://u@h/"),
        ("http://h/a", "http://h/a"),
        ("no uri", "no uri"),
        ("http://u:pwP@127.0.0.1:1/x?q=a@b", "http://u:***@127.0.0.1:1/x?q=a@b"),
        ("http://u:a/b@h/", "http://u:***@h/"),
        ("http://u:p@w@h/x#f@g", "http://u:***@h/x#f@g"),
        ("http://h/x?q=a@b", "http://h/x?q=a@b"),
        ("sip:1001:secret", "sip:1001:***"),
        ("sip:pbx.example.com:5060", "sip:pbx.example.com:5060"),
        ("sip:pbx:5060;transport=tcp", "sip:pbx:5060;transport=tcp"),
        ("sip:[::1]:5070", "sip:[::1]:5070"),
        ("sip:[2001:db8::1]", "sip:[2001:db8::1]"),
        # Cisco's Notify: carries user:password after the path, with no '@'.
        ("Notify:http:h:80:p:alice:s3cret", "Notify:http:h:80:p:***"),
        ("notify:http:h:80:p:alice", "notify:http:h:80:p:***"),
        ("Notify:http:h:80", "Notify:http:h:80"),
        (" Notify:http:h:80:p:alice:s3cret", " Notify:http:h:80:p:***"),  # blanks before
    ],
)
def test_redact_uri_hides_the_userinfo_password(text: str, shown: str) -> None:
    assert redact_uri(text) == shown


def test_a_password_file_is_read_only_up_to_its_bound(tmp_path: Path) -> None:
    """/dev/zero was read to the end of memory (MemoryError)."""
    with pytest.raises(SecretError, match="longer than 4096 bytes"):
        resolve_secret("file:/dev/zero")
    (tmp_path / "pw.txt").write_text("x" * 4096)
    assert resolve_secret("file:pw.txt", base=tmp_path).reveal() == "x" * 4096
    (tmp_path / "big.txt").write_text("x" * 4097)
    with pytest.raises(SecretError, match="longer than"):
        resolve_secret("file:big.txt", base=tmp_path)
