"""The phones' digest authorities, and picking a request's credentials.

Kept out of the emulator's hot path: an authority is looked up once per
line, when it is added, and the search among several Authorization
headers runs only when the first is not for the phone's realm.
"""

from __future__ import annotations

from phonecast.phone.config import PhoneSettings
from phonecast.sip import Request, SipError
from phonecast.sip.digest import Credentials, DigestServer, parse_credentials


class DigestAuthorities:
    """One :class:`DigestServer` per distinct realm, algorithm, nonce
    lifetime and uri check, shared by the phones that have them.

    One per host once took the first phone's settings for all: a phone set
    to realm "b" and SHA-256 challenged with the first one's realm and MD5,
    and its own credentials could never pass."""

    def __init__(self) -> None:
        self._by_settings: dict[tuple[str, float, str, bool], DigestServer] = {}

    def for_settings(self, settings: PhoneSettings) -> DigestServer:
        """The authority for ``settings``, made on first use."""
        s = settings
        key = (s.realm, s.nonce_lifetime, s.algorithm, s.strict_uri)
        digest = self._by_settings.get(key)
        if digest is None:
            digest = self._by_settings[key] = DigestServer(
                s.realm, lifetime=s.nonce_lifetime, algorithm=s.algorithm, strict_uri=s.strict_uri
            )
        return digest


def credentials_for_realm(request: Request, realm: str) -> Credentials | None:
    """The request's Authorization for ``realm``, if it has several.

    RFC 3261 22.3: one Authorization per realm.  Reading the first only, a
    phone answered 401 to credentials for another realm (or a header that
    does not parse) placed before its own."""
    values = request.get_all("Authorization")
    if len(values) < 2:
        return None
    for value in values:
        try:
            creds = parse_credentials(value)
        except SipError:
            continue
        if creds.realm == realm:
            return creds
    return None
