"""Which Event header each phone vendor wants for each action.

PBX tools get these wrong often (users report "success" while the phone did
nothing because it ignored an event it does not know), so phonecast names
actions (``xml``, ``resync``, ``reboot``, ``restart``, ``report``) and lets a
vendor profile spell them.  Spellings come from the vendors' admin guides as
gathered in the project's field guide: Cisco SPA/MPP use ``XML-Service``,
``resync``, ``reboot_now`` (cold), ``restart_now`` (warm) and ``report``;
Polycom and Cisco 79xx use ``check-sync``; Yealink and Snom
``check-sync;reboot=true|false``; Aastra ``aastra-xml`` for XML pushes.
An action a vendor does not support raises :class:`UnsupportedAction` rather
than sending something the phone would silently ignore.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ACTIONS = ("xml", "resync", "reboot", "restart", "report")


class UnsupportedAction(ValueError):
    """The vendor profile has no event for this action."""


@dataclass(frozen=True, slots=True)
class VendorProfile:
    """Event spellings of one phone family, and how it takes XML pushes."""

    name: str
    description: str
    events: dict[str, str] = field(default_factory=dict)
    #: Body form the family accepts for an XML push: ``url`` or ``execute``.
    xml_body: str = "url"
    #: Whether the phone challenges these NOTIFYs with a digest (SPA default yes).
    challenges: bool = True

    def event_for(self, action: str) -> str:
        """The Event header value for ``action`` (one of :data:`ACTIONS`)."""
        if action not in ACTIONS:
            raise UnsupportedAction(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
        try:
            return self.events[action]
        except KeyError:
            supported = ", ".join(sorted(self.events)) or "none"
            raise UnsupportedAction(
                f"{self.name} phones have no event for {action!r} (supported: {supported})"
            ) from None


_CISCO = {
    "xml": "XML-Service",
    "resync": "resync",
    "reboot": "reboot_now",
    "restart": "restart_now",
    "report": "report",
}

PROFILES: dict[str, VendorProfile] = {
    p.name: p
    for p in (
        VendorProfile("cisco-spa", "Cisco SPA300/SPA500/SPA900 (Sipura lineage)", _CISCO),
        VendorProfile("cisco-mpp", "Cisco IP Phone 6800/7800/8800 Multiplatform", _CISCO),
        VendorProfile(
            "cisco-enterprise",
            "Cisco 79xx (SIP firmware)",
            {"resync": "check-sync", "reboot": "check-sync"},
            xml_body="execute",
        ),
        VendorProfile(
            "polycom",
            "Polycom VVX / SoundPoint",
            {"resync": "check-sync", "reboot": "check-sync"},
        ),
        VendorProfile(
            "yealink",
            "Yealink T-series",
            {"resync": "check-sync;reboot=false", "reboot": "check-sync;reboot=true"},
        ),
        VendorProfile(
            "snom",
            "Snom D-series",
            {"resync": "check-sync;reboot=false", "reboot": "check-sync;reboot=true"},
        ),
        VendorProfile(
            "grandstream",
            "Grandstream GXP/GRP",
            {"resync": "check-sync", "reboot": "check-sync;reboot=true"},
        ),
        VendorProfile(
            "aastra", "Aastra / Mitel 6700i", {"xml": "aastra-xml", "resync": "check-sync"}
        ),
    )
}

DEFAULT_PROFILE = "cisco-spa"


def get_profile(name: str | None) -> VendorProfile:
    """The profile called ``name`` (default Cisco SPA), or a clear error."""
    key = (name or DEFAULT_PROFILE).lower()
    try:
        return PROFILES[key]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise UnsupportedAction(f"unknown vendor profile {name!r}; known: {known}") from None
