"""Secrets never print; env:/file: references resolve or fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from phonecast.credentials import Secret, SecretError, resolve_secret


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
