"""The one exception hierarchy of the SIP core.

Every error carries ``status_code``: the response a UAS should send when the
fault is in a request it received (``None`` when no response is appropriate,
e.g. a malformed response, which is silently dropped).  This mirrors h11's
``RemoteProtocolError.error_status_hint``: the code that detects the fault
knows best which response describes it.

Messages never include credential material: header values of Authorization
and Proxy-Authorization are redacted by :func:`redact_header` before they are
quoted in an error.
"""

from __future__ import annotations

_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization"})


def redact_header(name: str, value: str, limit: int = 80) -> str:
    """Quote a header value for an error message: shortened, secrets removed."""
    if name.lower() in _SECRET_HEADERS:
        scheme = value.split(None, 1)[0] if value.strip() else ""
        return f"{scheme} <redacted>"
    if len(value) > limit:
        return value[: limit - 3] + "..."
    return value


class SipError(Exception):
    """Root of every error the SIP core raises."""

    status_code: int | None = 400
    reason: str = "Bad Request"

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class ParseError(SipError):
    """The bytes are not a SIP message: framing, start line or header syntax.

    ``kind`` names the fault (``start-line``, ``header-line``, ``framing``,
    ``content-length``, ``uri``, ``encoding``); ``line`` is the 1-based line of
    the message where it was found, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        line: int | None = None,
        status_code: int | None = None,
    ) -> None:
        where = f" (line {line})" if line is not None else ""
        super().__init__(f"{message}{where}", status_code=status_code)
        self.kind = kind
        self.line = line


class UriError(ParseError):
    """A URI does not follow RFC 3261 section 19.1 / 25 (or RFC 3966 for tel)."""

    def __init__(self, message: str, *, uri: str) -> None:
        shown = uri if len(uri) <= 80 else uri[:77] + "..."
        super().__init__(f"{message}: {shown!r}", kind="uri")
        self.uri = uri


class HeaderError(SipError):
    """A header field is present but its value does not follow its grammar.

    Raised lazily, when the typed value is first read, so that a message whose
    unread headers are broken still parses (RFC 4475 section 3.1.2.x).
    """

    def __init__(self, header: str, message: str, *, value: str | None = None) -> None:
        detail = f" in {value!r}" if value is not None else ""
        redacted = redact_header(header, value) if value is not None else None
        detail = f" in {redacted!r}" if redacted is not None else detail
        super().__init__(f"{header}: {message}{detail}")
        self.header = header


class ValidationError(SipError):
    """A well-formed message that a UA must still refuse.

    ``headers`` lists header fields the response must carry (``Unsupported``
    for 420, ``Accept`` for 415, ``WWW-Authenticate`` hints for 401...).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        reason: str,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.reason = reason
        self.headers = headers


class DigestError(SipError):
    """A digest challenge or credentials cannot be used (bad syntax, no common
    algorithm, missing parameters)."""

    status_code = 400


class TransactionError(SipError):
    """A transaction was driven in a way its state machine does not allow."""

    status_code = None
