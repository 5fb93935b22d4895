"""A line's REGISTERs under challenge (RFC 3261 22): a proxy's and the
registrar's challenges both answered, a stale nonce answered again at once,
credentials reused on refreshes, Retry-After obeyed, one REGISTER at a
time, and why a challenge could not be answered said in the event."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from phonecast.phone.config import PhoneSettings
from phonecast.phone.registration import granted_expiry
from phonecast.sip import Request, Response, SipUri, make_response
from phonecast.sip.digest import DigestServer
from tests.phone.test_registration_limits import _answer, _registering


@dataclass
class _Guarded:
    """A registrar (401) behind an authenticating proxy (407): each checks
    its own header; ``stale_once`` makes the registrar's first verified
    nonce count as expired (a 401 with ``stale=true``)."""

    proxy: bool = True
    stale_once: bool = False
    password: str = "pw"
    registrar_auth: DigestServer = field(default_factory=lambda: DigestServer("registrar"))
    proxy_auth: DigestServer = field(default_factory=lambda: DigestServer("proxy"))
    challenges: list[int] = field(default_factory=list)

    def __call__(self, request: Request) -> Response:
        now = asyncio.get_running_loop().time()
        if self.proxy:
            verdict = self.proxy_auth.verify(
                request.proxy_authorization,
                method="REGISTER",
                now=now,
                password=self.password,
                expected_user="1001",
            )
            if not verdict.ok:
                self.challenges.append(407)
                challenge = str(self.proxy_auth.challenge(now))
                return make_response(
                    request, 407, to_tag="r", headers=[("Proxy-Authenticate", challenge)]
                )
        verdict = self.registrar_auth.verify(
            request.authorization,
            method="REGISTER",
            now=now,
            password=self.password,
            expected_user="1001",
        )
        stale = verdict.stale
        if verdict.ok and self.stale_once:
            self.stale_once, stale = False, True
        if not verdict.ok or stale:
            self.challenges.append(401)
            challenge = str(self.registrar_auth.challenge(now, stale=stale))
            return make_response(
                request, 401, to_tag="r", headers=[("WWW-Authenticate", challenge)]
            )
        return make_response(
            request, 200, to_tag="r", headers=[("Contact", f"{request.get('Contact')};expires=2")]
        )


async def test_a_proxys_challenge_and_the_registrars_are_both_answered() -> None:
    """407 then 401: the third REGISTER carries both headers, the proxy's
    under its nonce again with nc 2 (the same credentials twice would be a
    replay).  Once, only the 401 was answered and the line never registered."""
    guarded = _Guarded()
    async with _registering(guarded) as (host, phone, registrar, events):
        assert await host.register(phone) == [200]
    assert guarded.challenges == [407, 401]
    third = registrar.seen[2][0]
    proxy, registrar_creds = third.proxy_authorization, third.authorization
    assert proxy is not None and registrar_creds is not None
    assert (proxy.nc, registrar_creds.nc) == ("00000002", "00000001")
    assert [e["event"] for e in events if e["event"].startswith("regist")] == ["registered"]


async def test_a_refresh_sends_both_credentials_up_front_and_is_not_challenged() -> None:
    """The 2 s grant brings a refresh at 1.4-1.8 s: it carries credentials
    under both nonces with the next nc (RFC 3261 22.1), and gets its 200
    straight away: one REGISTER, not three."""
    guarded = _Guarded()
    async with _registering(guarded) as (host, phone, registrar, events):
        assert await host.register(phone) == [200]
        for _ in range(300):
            if len(registrar.seen) > 3:
                break
            await asyncio.sleep(0.01)
        assert len(registrar.seen) == 4, [r.cseq for r, _ in registrar.seen]
    refresh = registrar.seen[3][0]
    assert refresh.authorization is not None and refresh.proxy_authorization is not None
    assert (refresh.proxy_authorization.nc, refresh.authorization.nc) == ("00000003", "00000002")
    assert guarded.challenges == [407, 401]
    assert [e["code"] for e in events if e["event"] == "registered"] == [200, 200]


async def test_a_stale_nonce_is_answered_again_at_once() -> None:
    """A 401 with ``stale=true`` after credentials: the password was right,
    the nonce expired; the line answers the new challenge in the same
    refresh, not after the retry interval as a refusal."""
    guarded = _Guarded(proxy=False, stale_once=True)
    async with _registering(guarded, register_retry=30) as (host, phone, registrar, events):
        assert await host.register(phone) == [200]
    assert guarded.challenges == [401, 401]
    assert len(registrar.seen) == 3
    assert not [e for e in events if e["event"] == "register_failed"]


async def test_a_wrong_password_ends_the_refresh_after_one_answer_each() -> None:
    """A second challenge without ``stale`` is a refusal: no loop, and the
    next refresh starts without the refused credentials."""
    guarded = _Guarded(password="not-pw")
    async with _registering(guarded, register_retry=30) as (host, phone, registrar, events):
        assert await host.register(phone) == [407]
        assert host._registrations is not None
        (binding,) = host._registrations.bindings.values()
        assert "Proxy-Authorization" not in binding.digest
    assert guarded.challenges == [407, 407] and len(registrar.seen) == 2
    failed = [e for e in events if e["event"] == "register_failed"]
    assert len(failed) == 1 and failed[0]["code"] == 407


async def test_a_challenge_that_cannot_be_answered_says_why() -> None:
    def sha1_only(request: Request) -> Response:
        challenge = 'Digest realm="r", nonce="n1", algorithm=SHA-1, qop="auth"'
        return make_response(request, 401, to_tag="r", headers=[("WWW-Authenticate", challenge)])

    async with _registering(sha1_only, register_retry=30) as (host, phone, registrar, events):
        assert await host.register(phone) == [401]
    assert len(registrar.seen) == 1
    (failed,) = [e for e in events if e["event"] == "register_failed"]
    assert "cannot answer the challenge" in failed["error"] and "pw" not in str(failed)


@pytest.mark.parametrize(("retry_after", "least"), [("120", 120), ("5 (busy)", 30), ("x", 30)])
async def test_a_retry_after_is_waited_for_but_never_less_than_the_retry_interval(
    retry_after: str, least: float
) -> None:
    def unavailable(request: Request) -> Response:
        return make_response(request, 503, to_tag="r", headers=[("Retry-After", retry_after)])

    async with _registering(unavailable, register_retry=30) as (host, phone, _, events):
        assert await host.register(phone) == [503]
    (failed,) = [e for e in events if e["event"] == "register_failed"]
    assert least <= failed["retry_in"] <= max(least, 36)


async def test_a_second_register_waits_for_the_one_under_way() -> None:
    """RFC 3261 10.2: no REGISTER before the previous one completed.  Two
    calls at once send one REGISTER (and its retry with credentials), and
    both see its outcome."""
    async with _registering(_Guarded(proxy=False)) as (host, phone, registrar, _):
        both = await asyncio.gather(host.register(phone), host.register(phone))
        assert both == [[200], [200]]
        assert len(registrar.seen) == 2  # one 401, one 200: no overlapping REGISTER


MINE = SipUri("127.0.0.1", "1001", port=5070)


@pytest.mark.parametrize(
    "others",
    [
        "<sips:1001@127.0.0.1:5070>;expires=0",
        "<sip:1001@127.0.0.1:5070;transport=tcp>;expires=0",
        "<sip:1001@127.0.0.1:5071>;expires=0",
        "<sip:1001@127.0.0.1>;expires=0",  # port 5060, not ours
    ],
)
def test_another_binding_of_the_user_listed_first_is_not_taken_for_ours(others: str) -> None:
    contact = f"{others}, <sip:1001@127.0.0.1:5070>;expires=600"
    assert granted_expiry(_answer(200, [("Contact", contact)]), MINE, 3600) == 600


def test_a_binding_without_its_port_is_ours_at_the_transports_default() -> None:
    mine = SipUri("127.0.0.1", "1001", port=5060)
    answer = _answer(200, [("Contact", "<sip:1001@127.0.0.1>;expires=90")])
    assert granted_expiry(answer, mine, 3600) == 90


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"register_expires": 0}, "register_expires 0"),
        ({"register_expires": -5}, "register_expires -5"),
        ({"register_expires": 2**32}, "register_expires 4294967296"),
        ({"register_retry": 0.0}, "register_retry 0.0"),
        ({"register_retry": float("nan")}, "register_retry nan"),
    ],
)
def test_settings_that_would_unregister_or_storm_are_refused(
    fields: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        PhoneSettings(tcp=False, **fields)  # type: ignore[arg-type]


async def test_a_line_bound_to_every_address_names_its_contact_address_in_the_via() -> None:
    """Bound to 0.0.0.0, the endpoint would write 127.0.0.1 into the Via: a
    registrar not using rport would answer loopback.  The Via names the
    Contact's address instead (the one the registrar reaches the line at)."""
    async with _registering(_Guarded(proxy=False)) as (host, phone, _, _):
        assert await host.register(phone) == [200]
        registrations = host._registrations
        assert registrations is not None
        binding = next(iter(registrations.bindings.values()))
        binding.local = ("0.0.0.0", binding.local[1])
        binding.contact = SipUri("192.0.2.7", "1001", port=binding.local[1])
        request = registrations._request(binding, 60, {})
        assert (request.top_via.host, request.top_via.port) == ("192.0.2.7", binding.local[1])


async def test_a_register_given_up_on_still_leaves_a_refresh_arranged() -> None:
    """A caller's wait_for round register() cancelled the REGISTER under
    way, and with it the only thing that would have arranged the next."""

    def silent(request: Request) -> Response:
        return make_response(request, 100)  # and never a final answer

    async with _registering(silent, register_retry=30) as (host, phone, _, _):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(host.register(phone), 0.2)
        assert host._registrations is not None
        (binding,) = host._registrations.bindings.values()
        assert binding.timer is not None and binding.busy is None
