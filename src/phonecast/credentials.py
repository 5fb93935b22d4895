"""Passwords that do not leak.

A :class:`Secret` holds a SIP password in memory; its ``repr``/``str`` never
show it, so it cannot end up in a log line, a traceback or an error message
by accident.  Reading it is explicit: :meth:`Secret.reveal`.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path
from typing import Final


class SecretError(ValueError):
    """A password reference (``env:``/``file:``) cannot be resolved."""


class Secret:
    """A password whose printed forms are redacted."""

    __slots__ = ("_source", "_value")

    def __init__(self, value: str, source: str = "literal") -> None:
        self._value = value
        self._source = source

    def reveal(self) -> str:
        """The password itself; call only where it is used."""
        return self._value

    @property
    def source(self) -> str:
        """Where it came from (``literal``, ``env:VAR``, ``file:PATH``): safe to print."""
        return self._source

    def __repr__(self) -> str:
        return f"Secret(<redacted>, source={self._source!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._source)


def resolve_secret(spec: str, *, base: Path | None = None) -> Secret:
    """Turn ``env:VAR``, ``file:PATH`` or a literal into a :class:`Secret`.

    A file's content is used without its trailing newline.  Relative paths
    are taken from ``base`` (the inventory's folder).
    """
    if spec.startswith("env:"):
        var = spec[4:]
        if not var:
            raise SecretError("env: needs a variable name")
        value = os.environ.get(var)
        if value is None:
            raise SecretError(f"environment variable {var} is not set")
        return Secret(value, f"env:{var}")
    if spec.startswith("file:"):
        raw = spec[5:]
        path = Path(raw)
        if base is not None and not path.is_absolute():
            path = base / path
        try:
            # At most a little more than any password: /dev/zero or a log
            # named by mistake would otherwise be read to the end of memory.
            with path.open("rb") as fh:
                data = fh.read(MAX_PASSWORD_FILE + 1)
        except OSError as exc:
            raise SecretError(f"cannot read password file {raw}: {exc.strerror}") from None
        if len(data) > MAX_PASSWORD_FILE:
            raise SecretError(
                f"password file {raw} is longer than {MAX_PASSWORD_FILE} bytes: not a password"
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SecretError(f"password file {raw} is not UTF-8 text") from None
        return Secret(text.rstrip("\r\n"), f"file:{raw}")
    return Secret(spec)


#: The longest password file read (a password, a newline, and room to spare).
MAX_PASSWORD_FILE: Final = 4096

#: Schemes whose ``scheme:user:password@host`` form :func:`redact_uri` knows.
_URI_SCHEMES: Final = frozenset({"sip", "sips", "tel", "http", "https"})


def redact_uri(text: str) -> str:
    """``text`` (a URI, well formed or not) with the password of its
    userinfo shown as ``***``, for an error message, a log or an event.

    Works on the text, not a parse, since it must also serve URIs that do
    not parse: the userinfo ends at the *last* ``@`` (an ``@`` later in the
    text than the real end only hides more), and its password is whatever
    follows the user's colon; in an ``http://`` URL the userinfo is sought
    in the authority only.  A text without a known scheme
    (``1001:secret@host``) has no scheme colon, so the first colon is the
    user's.  Over-redacting is harmless; showing a password is not.
    """
    at = text.rfind("@")
    scheme, colon, rest = text.partition(":")
    if scheme.strip().lower() == "notify":
        # Cisco's Notify:protocol:host:port:path:user:password carries its
        # credentials after the path, with no '@' to find them by.
        fields = text.split(":", 5)
        return ":".join(fields[:5]) + ":***" if len(fields) == 6 else text
    if at < 0:
        # ``sip:1001:secret`` with its ``@host`` forgotten: what follows the
        # second colon is no port, so it may be the password.
        host, colon2, port = rest.partition(":")
        bracketed = rest.startswith("[")  # an IPv6 host's colons are no password's
        if (
            scheme.lower() in ("sip", "sips")
            and colon2
            and not bracketed
            and not port.split(";")[0].isdigit()
        ):
            return f"{scheme}:{host}:***"
        return text
    if colon and scheme.lower() in _URI_SCHEMES and rest.startswith("//"):
        # http://user:password@host/path?query: the userinfo ends at the
        # last '@' before the authority ends (the first '/', '?' or '#'
        # after its first '@'), so an '@' in the path or query does not
        # move the host shown, and a '/' in a password keeps it hidden.
        after = rest[2:]
        first_at = after.find("@")
        ends = [i for i in (after.find(c, first_at) for c in "/?#") if i >= 0]
        last_at = after.rfind("@", 0, min(ends)) if ends else after.rfind("@")
        user, colon, _ = after[:last_at].partition(":")
        return f"{scheme}://{user}:***{after[last_at:]}" if colon else text
    head, tail = text[:at], text[at:]
    scheme, colon, rest = head.partition(":")
    if not colon:
        return text
    if scheme.lower() not in _URI_SCHEMES:
        return f"{scheme}:***{tail}"
    user, colon, _ = rest.partition(":")
    return f"{scheme}:{user}:***{tail}" if colon else text
