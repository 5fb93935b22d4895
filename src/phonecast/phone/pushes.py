"""What an emulated SPA does with an accepted XML-Service push.

The NOTIFY is answered 200 by :class:`~phonecast.phone.emulator.PhoneHost`
before this module sees its body (:mod:`phonecast.phone.bodies` reads
it).  A URL is fetched and shown; a CiscoIPPhoneExecute runs its items by
priority (0 now, 1 when the phone is idle, 2 only if it is: field guide);
an internal URI becomes a recorded action, ``Dial:`` a call that makes the
phone busy; a fetched page that is an Execute runs too.  Nothing here holds
a task or a queue per push: fetches accepted during a burst of datagrams
start together once it is answered, and a phone's hang-up is one deadline
on the endpoint's wheel.  Whatever is bounded (deferred pushes, fetches
waiting for a turn, Execute chains) says so in an event when it drops one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

from phonecast.credentials import redact_uri
from phonecast.net.endpoint import SipEndpoint
from phonecast.phone.bodies import INTERNAL_SCHEMES, page_refusal, read_page, xml_service_items
from phonecast.phone.events import EventLog
from phonecast.phone.fetcher import Done, FetchResult, PageFetcher
from phonecast.phone.state import MAX_DEFERRED, PhoneState

__all__ = ["MAX_EXECUTE_HOPS", "Pushes"]

#: Fetched CiscoIPPhoneExecute pages run one after another (each naming the
#: next as its URL item) before the phone stops following them.
MAX_EXECUTE_HOPS: Final = 4


class Pushes:
    """The accepted pushes of every phone of a host (see the module docstring)."""

    def __init__(
        self,
        events: EventLog,
        fetcher: PageFetcher,
        report_fault: Callable[[BaseException], None],
        on_screen: Callable[[PhoneState], None] | None = None,
    ) -> None:
        self.events = events
        self.fetcher = fetcher
        #: Told of a fault in work started for a push (reported, never raised).
        self.report_fault = report_fault
        #: Called with the phone whose screen changed.
        self.on_screen = on_screen
        #: Fetches allowed to wait for a turn at the fetcher (which runs at
        #: most its ``limit`` at once); a push beyond is answered and dropped.
        self.max_pending = 10_000
        #: The host's endpoint (for the hang-up deadlines), once it started.
        self.endpoint: SipEndpoint | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        #: Fetches accepted during this burst of datagrams, started together
        #: once the burst is answered (see :meth:`_fetch_and_show`).
        self._to_fetch: list[tuple[str, Done]] = []

    def start(self, endpoint: SipEndpoint) -> None:
        """Start acting on pushes (the host's endpoint exists now)."""
        self.endpoint = endpoint
        self.loop = asyncio.get_running_loop()

    async def close(self) -> None:
        """Forget fetches not started, and end those under way."""
        self._to_fetch.clear()
        await self.fetcher.close()

    def xml_service(self, phone: PhoneState, line: str, body: bytes) -> None:
        """Act on an XML-Service body accepted on ``line``: a URL, or Execute
        items; any other body is reported as the CiscoIPPhoneError the
        phone shows."""
        strict = phone.config.settings.strict_url_body
        try:
            items = xml_service_items(body, strict_url_body=strict)
        except ValueError as exc:
            self._xml_error(phone, line, exc)
            return
        # Cisco: "order of execution is not guaranteed"; a fetch runs on
        # while the next item is taken.
        for uri, priority in items:
            self.execute_item(phone, line, uri, priority)

    def _xml_error(self, phone: PhoneState, line: str, exc: ValueError) -> None:
        number = getattr(exc, "number", 1)
        self.events.emit(
            "xml_error", phone=phone.config.name, line=line, number=number, detail=str(exc)[:200]
        )

    def execute_item(
        self, phone: PhoneState, line: str, uri: str, priority: int, hops: int = 0
    ) -> None:
        """Run one Execute item pushed on ``line`` (``hops``: how many
        fetched Executes led to it, see MAX_EXECUTE_HOPS)."""
        name = phone.config.name
        lower = uri.lower()
        if lower.startswith(INTERNAL_SCHEMES):
            phone.actions.append(uri)
            self.events.emit("action", phone=name, line=line, action=uri)
            if lower.startswith("dial:"):
                self.dial(phone)
            return
        if priority == 2 and phone.calls.busy:
            self._dropped(phone, line, uri, "busy (priority 2)")
            return
        if priority == 1 and phone.calls.busy:
            if len(phone.deferred) >= MAX_DEFERRED:
                self._dropped(phone, line, uri, "too many deferred pushes")
                return
            phone.deferred.append((uri, line, hops))
            self.events.emit("deferred", phone=name, line=line, url=redact_uri(uri))
            return
        self._fetch_and_show(phone, line, uri, hops=hops)

    def _dropped(self, phone: PhoneState, line: str, url: str, why: str) -> None:
        """A push the phone will not act on, and why (its URL's password hidden)."""
        self.events.emit(
            "dropped", phone=phone.config.name, line=line, url=redact_uri(url), reason=why
        )

    def dial(self, phone: PhoneState) -> None:
        """A Dial: action (or an accepted transfer) places a call: the phone
        is busy until ``dial_seconds`` after the last one placed.  One
        deadline per phone on the endpoint's wheel, moved by each new call,
        so that overlapping dials keep the phone busy to the last one's end
        and a peer's REFERs cost no task each."""
        assert self.endpoint is not None
        phone.calls.busy_reasons.add("dial")
        if phone.hang_up is not None:
            phone.hang_up.cancel()

        def hang_up(_now: float) -> None:
            phone.hang_up = None
            phone.calls.busy_reasons.discard("dial")
            self.run_deferred(phone)

        deadline = self.endpoint.now() + phone.config.settings.dial_seconds
        phone.hang_up = self.endpoint.call_at(deadline, hang_up)

    def run_deferred(self, phone: PhoneState) -> None:
        """The phone may be idle: fetch what priority 1 deferred, one at a
        time.  Called whenever something made the phone idle (a call ended,
        Dial's timer hung up); while one deferred URL is being fetched a
        second call does nothing, the fetch's end takes the next."""
        while phone.deferred and not phone.calls.busy and not phone.running_deferred:
            url, line, hops = phone.deferred.popleft()
            phone.running_deferred = self._fetch_and_show(
                phone, line, url, then=self._deferred_shown, hops=hops
            )

    def _deferred_shown(self, phone: PhoneState) -> None:
        phone.running_deferred = False
        self.run_deferred(phone)

    def _fetch_and_show(
        self,
        phone: PhoneState,
        line: str,
        url: str,
        then: Callable[[PhoneState], None] | None = None,
        hops: int = 0,
    ) -> bool:
        """Start fetching ``url`` for ``phone``; show what comes back (then
        call ``then``); False if it was dropped (``then`` is never called).
        Fetches waiting for a turn are bounded like anything a peer can make
        the phone hold: past ``max_pending`` the push is dropped, as a phone
        whose browser is saturated would."""
        name = phone.config.name
        if self.fetcher.waiting + len(self._to_fetch) >= self.max_pending:
            self._dropped(phone, line, url, "too many pending fetches")
            return False
        if self.events.detailed:
            self.events.emit("fetch_started", phone=name, line=line, url=redact_uri(url))
        else:
            self.events.count("fetch_started")

        def fetched(result: FetchResult) -> None:
            # Faults are reported, never raised into the fetcher; ``then``
            # runs even after one, or the deferred pushes behind it would wait
            # for ever.
            try:
                self._show(phone, line, url, result, hops)
            except Exception as exc:
                self.report_fault(exc)
            if then is not None:
                try:
                    then(phone)
                except Exception as exc:
                    self.report_fault(exc)

        # Started after the burst of datagrams this push came in, with the
        # burst's other fetches: a TCP connect between two SIP messages
        # measured ~30 % dearer per call than the same connects in a row
        # (the kernel's TCP code and ours evict each other from the caches).
        if not self._to_fetch:
            assert self.loop is not None
            self.loop.call_soon(self._start_fetches)
        self._to_fetch.append((url, fetched))
        return True

    def _start_fetches(self) -> None:
        batch, self._to_fetch = self._to_fetch, []
        start = self.fetcher.start
        for url, done in batch:
            try:
                start(url, done)
            except Exception as exc:  # one fault must not lose the others
                self.report_fault(exc)
                # Nor its own follow-up: a deferred push waits on ``done``.
                done(FetchResult(url, False, error=f"{type(exc).__name__}: {exc}"))

    def _show(self, phone: PhoneState, line: str, url: str, result: FetchResult, hops: int) -> None:
        name = phone.config.name
        phone.fetches += 1
        # A page served as anything but text/xml is fetched, not shown.
        if result.ok:
            error = page_refusal(result.content_type)
        else:
            error = result.error or "the fetch failed"
        events = self.events
        if events.detailed:
            events.emit(
                "fetch_finished",
                phone=name,
                line=line,
                url=redact_uri(url),
                ok=error is None,
                status=result.status,
                content_type=result.content_type,
                error=error,
            )
        else:
            events.count("fetch_finished")
        if error is not None:
            return
        try:
            page = read_page(result.body, result.content_type)
        except ValueError as exc:
            self._xml_error(phone, line, exc)
            return
        if page.screen is None:
            # A CiscoIPPhoneExecute served as a page is run as if pushed; a
            # page whose Execute fetches itself must not loop for ever.
            if hops >= MAX_EXECUTE_HOPS:
                why = f"an Execute fetched after {hops} others is not run (a loop?)"
                self._xml_error(phone, line, ValueError(why))
                return
            for uri, priority in page.items:
                self.execute_item(phone, line, uri, priority, hops + 1)
            return
        phone.screen = page.screen
        self.events.emit("screen", phone=name, line=line, **phone.screen.summary())
        if self.on_screen is not None:
            self.on_screen(phone)
