"""The one exception tree of :mod:`phonecast.ciscoxml`.

Every refusal is a :class:`CiscoXmlError`, itself a ``ValueError`` so callers
that only know "bad input" (the CLI, the phone emulator) can catch one thing.
Each error carries ``number``: the ``CiscoIPPhoneError`` number a phone would
report for it, so the emulator can answer as a phone does without a mapping
table of its own.  The subclasses tell *why* an input was refused, which is
what tests and operators need to tell a hostile body from a sloppy one.
"""

from __future__ import annotations

#: ``CiscoIPPhoneError`` numbers (Cisco "IP Phone Services Application
#: Development Notes"): what a phone reports back for a refused object.
PARSE_ERROR = 1
FRAMING_ERROR = 2
INTERNAL_FILE_ERROR = 3
AUTHENTICATION_ERROR = 4


class CiscoXmlError(ValueError):
    """Anything :mod:`phonecast.ciscoxml` refuses.

    ``number`` is the ``CiscoIPPhoneError`` a phone would report (1 for
    everything a parser refuses: the phone could not read the object).
    ``path`` names the element where the problem stood, e.g.
    ``CiscoIPPhoneMenu/MenuItem[3]/Name``, when it is known.
    """

    def __init__(self, message: str, *, number: int = PARSE_ERROR, path: str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.number = number
        self.path = path


class InvalidObjectError(CiscoXmlError):
    """A value breaks one of the phones' documented rules (a limit, a range,
    a character the phone cannot show).  Raised on construction, so an object
    that exists is always one a phone accepts; the parser raises it too, with
    the element path, when a well-formed document carries such a value.

    ``owner`` is the element the rule belongs to (``CiscoIPPhoneMenu``,
    ``SoftKeyItem``...), ``field`` the child element or attribute, ``detail``
    the rule and the value that broke it; the message is ``owner: detail``
    (``path: detail`` once the parser has located it).
    """

    def __init__(self, owner: str, field: str, detail: str, *, path: str | None = None) -> None:
        # The path ends with the owner's own tag and says more, so it replaces it.
        super().__init__(detail, path=path or owner)
        self.path = path
        self.owner = owner
        self.field = field
        self.detail = detail

    def at(self, path: str) -> InvalidObjectError:
        """The same refusal, located at ``path`` (the parser knows where)."""
        located = type(self)(self.owner, self.field, self.detail, path=path)
        located.number = self.number
        return located


class InvalidUriError(InvalidObjectError):
    """A URL is neither http(s) nor a well-formed internal URI, or it is one
    the phone family or the context (an Execute object) does not support."""


class XmlSyntaxError(CiscoXmlError):
    """The bytes are not well-formed XML (or not in a declared encoding)."""


class ForbiddenXmlError(CiscoXmlError):
    """A DTD, an entity declaration or an external reference: features the
    phones never need and attackers always do (XXE, billion laughs)."""


class XmlLimitError(CiscoXmlError):
    """The document exceeds a bound (bytes, nesting depth, element count).
    Raised before or while the tree is built, never after it is complete."""


class UndefinedElementError(CiscoXmlError):
    """An element, attribute or text the Cisco object does not define; the
    phones' parser is not a full XML parser, so we never accept more than it
    reads.  ``tag`` is the offending name."""

    def __init__(self, message: str, *, tag: str, path: str | None = None) -> None:
        super().__init__(message, path=path)
        self.tag = tag
