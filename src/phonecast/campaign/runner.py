"""The campaign runner: push to every selected phone, prove each one took it.

Theory of operation
-------------------
A campaign is a row in the store plus one row per phone.  The runner

1. publishes each phone's content on the embedded content server under an
   unguessable token (kept in the store, so a resumed campaign serves the
   same URLs);
2. dispatches pushes within a concurrency window and a rate limit: a batch
   of phones is committed ``sending`` *before* their NOTIFYs leave, so a
   kill at any instant leaves every phone either untouched (``queued``),
   finished (its result committed) or marked in flight (``sending``);
3. records each outcome; timeouts, transport failures and 503 are retried
   with exponential backoff and jitter (never an authentication refusal);
4. waits for confirmations: a phone is ``confirmed`` when its page was
   written to it in answer to its fetch (recorded after the write, committed
   with the next flush); ``accepted`` means only that it said 200 to the
   NOTIFY.

Resume takes the phones still ``queued`` and those in flight at the kill:
``sending``, and — when confirmation is on — ``accepted`` without a fetch
(their delivery was not finished).  Confirmed and failed phones are never
pushed again, so duplicates are limited to phones in flight at the kill.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import ipaddress
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from phonecast.campaign.inventory import Phone
from phonecast.campaign.report import Report, make_report
from phonecast.campaign.store import BUSY_WAIT, CampaignStore, Result, StoreBusy, StoreError
from phonecast.content import ContentServer, Fetch
from phonecast.push.payload import Payload
from phonecast.push.pusher import Destination, Outcome, Pusher, PushOptions
from phonecast.sip import SipError

_T = TypeVar("_T")

#: Outcomes worth another try.
RETRYABLE = frozenset({"timeout", "unreachable"})

#: Files a campaign keeps for itself whatever its concurrency: the store,
#: the loop, its sockets and listeners, with room to spare.
RESERVED_FILES = 64


def affordable_concurrency(asked: int, soft_limit: int, *, streams: bool) -> int:
    """The concurrency that ``soft_limit`` open files can carry, at most ``asked``.

    Each push in flight may hold a file for the phone's fetch from the
    content server and, over TCP or TLS (``streams``), one for its SIP
    connection: past what the file limit allows, pushes fail with EMFILE
    (``--concurrency 1000`` at a 1,024-file limit over TCP once did, for
    the last hundred phones of 3,000)."""
    per_push = 2 if streams else 1
    return max(1, min(asked, (soft_limit - RESERVED_FILES) // per_push))


@dataclass
class RunOptions:
    """How a campaign runs."""

    concurrency: int = 200
    rate: float = 0.0  # pushes per second; 0 = no limit
    retries: int = 2
    backoff: float = 0.5
    backoff_max: float = 8.0
    deadline: float | None = None  # seconds for the whole dispatch
    confirm: bool = True
    confirm_timeout: float = 15.0
    push_timeout: float = 8.0
    transport: str | None = None
    flush_interval: float = 0.05
    progress_interval: float = 0.25
    seed: int | None = None

    def __post_init__(self) -> None:
        """Refuse what would hang or spin a run: a NaN rate is "no limit" to
        one comparison and a busy loop to the next, and an infinite timeout
        overflows the loop's timers.  The command line says the same per
        option before it gets here."""
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {self.concurrency}")
        if self.retries < 0:
            raise ValueError(f"retries must not be negative, not {self.retries}")
        for name in ("rate", "backoff", "backoff_max", "confirm_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number, 0 or more, not {value!r}")
        for name in ("push_timeout", "flush_interval", "progress_interval"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number above 0, not {value!r}")
        if self.deadline is not None and not (math.isfinite(self.deadline) and self.deadline > 0):
            raise ValueError(f"deadline must be a finite number above 0, not {self.deadline!r}")


@dataclass
class Progress:
    """Live counts for the progress display."""

    total: int
    counts: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    done_pushes: int = 0

    @property
    def rate(self) -> float:
        """Pushes finished per second so far."""
        elapsed = time.monotonic() - self.started
        return self.done_pushes / elapsed if elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate, if known."""
        left = self.total - self.done_pushes
        return left / self.rate if self.rate > 0 and left > 0 else (0.0 if left <= 0 else None)


class RateLimiter:
    """Token bucket: at most ``rate`` acquisitions per second (0: unlimited)."""

    def __init__(self, rate: float, burst: int = 1) -> None:
        self._rate = rate
        self._tokens = float(burst)
        self._burst = float(max(burst, 1))
        self._last = time.monotonic()

    async def acquire(self, deadline: float | None = None) -> bool:
        """Wait for a token; False, without one, once ``deadline`` (a
        ``time.monotonic()`` instant) comes first: a push waiting its turn
        must not run past the campaign's deadline."""
        if self._rate <= 0:
            return True
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return False
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            wait = (1 - self._tokens) / self._rate
            if deadline is not None:
                wait = min(wait, deadline - now)
            await asyncio.sleep(wait)


class CampaignRunner:
    """Runs (or resumes) one campaign."""

    def __init__(
        self,
        store: CampaignStore,
        pusher: Pusher,
        content: ContentServer | None,
        options: RunOptions,
        *,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.store = store
        self.pusher = pusher
        self.content = content
        self.options = options
        self.on_progress = on_progress
        self._rng = random.Random(options.seed)
        self._by_token: dict[str, str] = {}
        self._confirmed: set[str] = set()
        self._accepted: set[str] = set()
        #: Accepted phones not confirmed yet, kept as a count: comparing the
        #: two sets on every fetch made a large campaign quadratic.
        self._unconfirmed = 0
        self._cid = ""
        self._progress = Progress(0)
        self._confirm_event = asyncio.Event()
        #: The store's failure that stopped the run, if one did.
        self._store_failure: StoreError | None = None
        self._halt = asyncio.Event()
        #: Phones the dispatch deadline left unsent in the last run.
        self.unsent = 0

    # ------------------------------------------------------------- content
    def record_fetch(self, fetch: Fetch) -> None:
        """Content-server callback: a phone was sent its whole page.

        The server calls it only once the response body was written, so a
        fetch answered with an error, or one the phone gave up on, is never
        counted; the store commits it with the next flush (and keeps it
        buffered through a failed commit: the phone did get its page).  A
        kill before that commit leaves the phone ``accepted`` or ``sending``,
        and resume pushes it again: a duplicate, never a confirmation
        without the page.  (The fetch was once committed before the answer,
        so a failed or interrupted answer still left "confirmed".)
        """
        name = fetch.phone
        self.store.record_fetch(self._cid, name, fetch.at, fetch.source)
        if name not in self._confirmed:
            self._confirmed.add(name)
            if name in self._accepted:
                self._unconfirmed -= 1
        if self._unconfirmed == 0:
            self._confirm_event.set()

    def publish(
        self,
        cid: str,
        phones: Sequence[Phone],
        body_for: Callable[[Phone], bytes],
        content_type: str,
    ) -> dict[str, str]:
        """Host each phone's content (reusing stored tokens); name -> URL."""
        assert self.content is not None
        rows = self.store.states(cid)
        urls: dict[str, str] = {}
        new_tokens: list[tuple[str, str]] = []
        for phone in phones:
            token = rows[phone.name][1] if phone.name in rows else None
            body = body_for(phone)
            if token:
                urls[phone.name] = self.content.publish_token(token, phone.name, body, content_type)
            else:
                url = self.content.publish(phone.name, body, content_type)
                token = url.rsplit("/", 1)[1]
                urls[phone.name] = url
                new_tokens.append((phone.name, token))
            self._by_token[token] = phone.name
        if new_tokens:
            self.store.set_tokens(cid, new_tokens)
        return urls

    # ------------------------------------------------------------------ run
    async def run(
        self, cid: str, phones: Sequence[Phone], payload_for: Callable[[Phone], Payload]
    ) -> Report:
        """Push to every phone of ``cid`` that still needs it, then report."""
        self._cid = cid
        opts = self.options
        rows = self.store.states(cid)
        wanted_states = {"queued", "sending"} | ({"accepted"} if opts.confirm else set())
        todo = [p for p in phones if p.name in rows and rows[p.name][0] in wanted_states]
        self._confirmed = {n for n, (state, _) in rows.items() if state == "confirmed"}
        self._accepted, self._unconfirmed = set(), 0
        self._progress = Progress(len(todo))
        self._progress.counts = self.store.counts(cid)
        self._store_failure, self.unsent = None, 0
        self._halt.clear()
        flusher = asyncio.ensure_future(self._flush_loop())
        try:
            self.unsent = await self._dispatch(todo, payload_for)
            if opts.confirm and self.content is not None and self._store_failure is None:
                await self._await_confirmations()
        finally:
            flusher.cancel()
            try:
                self.store.flush()
                self._show_progress()  # the final counts, however short the run
            except StoreError as exc:
                self._store_failure = self._store_failure or exc
        if self._store_failure is not None:
            # Left unfinished: what was committed stands, the rest is pushed
            # by resume (phones queued, and those in flight, again).
            raise self._store_failure
        self.store.finish(cid, status="stopped" if self.unsent else "finished")
        return make_report(cid, self.store.phones(cid))

    def _stop_for(self, failure: StoreError) -> None:
        """The store failed: no phone more is taken, and the run ends (an
        earlier failure is the one reported)."""
        if self._store_failure is None:
            self._store_failure = failure
        self._halt.set()
        self._confirm_event.set()

    async def _flush_loop(self) -> None:
        """Commit buffered results every ``flush_interval``; refresh the
        progress (a count query and a redraw) every ``progress_interval``:
        a display refreshes a few times a second, and redrawing per fetch
        cost more than serving it."""
        last_progress = float("-inf")
        while True:
            await asyncio.sleep(self.options.flush_interval)
            try:
                await self._write(self.store.flush)
            except StoreError as exc:
                self._stop_for(exc)
                return
            now = time.monotonic()
            if (
                self.on_progress is not None
                and now - last_progress >= self.options.progress_interval
            ):
                last_progress = now
                self._show_progress()

    async def _write(self, write: Callable[[], _T]) -> _T:
        """``write()``, retried after a pause while another connection holds
        the store's write lock (another campaign of the same store
        committing), for up to :data:`BUSY_WAIT` seconds in all.

        SQLite's own wait sleeps in this thread: the event loop, and with it
        every push, fetch and timer of the run, stopped for as long as the
        other writer took.  The writes between pushes come here; those at a
        run's start and end, with nothing in flight, still wait in SQLite."""
        give_up = time.monotonic() + BUSY_WAIT
        pause = 0.002
        while True:
            try:
                with self.store.not_waiting():
                    return write()
            except StoreBusy:
                if time.monotonic() >= give_up:
                    raise StoreBusy(
                        self.store.path,
                        f"database is locked: another connection held its write lock"
                        f" for {BUSY_WAIT:g} s",
                    ) from None
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _show_progress(self) -> None:
        if self.on_progress is not None:
            self._progress.counts = self.store.counts(self._cid)
            self.on_progress(self._progress)

    async def _dispatch(
        self, todo: Sequence[Phone], payload_for: Callable[[Phone], Payload]
    ) -> int:
        """``concurrency`` workers take phones until none is left: a fixed
        pool of tasks, not one task per phone.  Phones are committed
        ``sending`` in batches before any of them is pushed.  Returns how
        many phones the deadline left unsent.

        A store that cannot commit a batch stops every worker (a phone must
        never leave uncommitted; the batch stays ``queued`` in the store), and
        a worker's fault is raised once the others are done: both once ended
        workers silently, the campaign then marked finished with phones never
        sent."""
        opts = self.options
        limiter = RateLimiter(opts.rate, burst=max(1, int(opts.rate // 10) or 1))
        deadline = None if opts.deadline is None else time.monotonic() + opts.deadline
        queue = collections.deque(todo)
        marked: collections.deque[Phone] = collections.deque()
        priors: dict[str, tuple[str, float | None]] = {}
        # A batch is at most about a second of pushes at the rate asked: a
        # deadline finds few committed ahead of it to put back.
        batch_size = max(1, min(64, opts.concurrency, math.ceil(opts.rate) or 64))

        def out_of_time() -> bool:
            return self._halt.is_set() or (deadline is not None and time.monotonic() >= deadline)

        # One worker at a time commits the next batch; the others wait for
        # it instead of each committing a batch of its own meanwhile.
        refill = asyncio.Lock()

        async def take() -> Phone | None:
            if out_of_time():
                return None  # past the deadline: the rest stays queued
            if marked:
                return marked.popleft()
            async with refill:
                if out_of_time():
                    return None
                if marked:  # committed by the worker this one waited for
                    return marked.popleft()
                # A phone a late fetch confirmed meanwhile (a resume's phones
                # still fetch the first run's URLs) is not pushed again.
                batch: list[Phone] = []
                while queue and len(batch) < batch_size:
                    phone = queue.popleft()
                    if phone.name not in self._confirmed:
                        batch.append(phone)
                if not batch:
                    return None
                names = [p.name for p in batch]

                def commit() -> None:
                    priors.update(self.store.sending_priors(self._cid, names))
                    self.store.mark_sending(self._cid, names, now=time.time())

                try:
                    await self._write(commit)
                except BaseException as exc:
                    queue.extendleft(reversed(batch))  # still queued in the store
                    if not isinstance(exc, StoreError):
                        raise  # cancelled (Ctrl-C) while the lock was held
                    self._stop_for(exc)
                    return None
                marked.extend(batch)
                return marked.popleft()

        async def worker() -> None:
            while (phone := await take()) is not None:
                try:
                    allowed = await limiter.acquire(deadline)
                except BaseException:  # cancelled (Ctrl-C) while it waited its turn
                    marked.appendleft(phone)
                    raise
                if not allowed or out_of_time():
                    # the rate limit held it past the deadline (or a halt)
                    marked.appendleft(phone)
                    return
                await self._push_one(phone, payload_for(phone), deadline)

        def put_back() -> None:
            """Phones committed sending but never pushed: as they were, even
            after a store failure (a lock held too long passes; a store that
            still fails leaves them ``sending``, which resume pushes)."""
            if marked:
                try:
                    self.store.unmark_sending(self._cid, [(p.name, priors[p.name]) for p in marked])
                except StoreError as exc:
                    self._stop_for(exc)

        workers = [asyncio.ensure_future(worker()) for _ in range(min(opts.concurrency, len(todo)))]
        try:
            ended = await asyncio.gather(*workers, return_exceptions=True)
        finally:  # however it ended, Ctrl-C or a cancel too: no more is pushed
            put_back()
        for fault in ended:
            if isinstance(fault, BaseException):
                raise fault
        if self._store_failure is not None:
            return 0
        return len(queue) + len(marked)

    async def _push_one(self, phone: Phone, payload: Payload, deadline: float | None) -> None:
        opts = self.options
        attempts = 0
        outcome: Outcome | None = None
        while True:
            attempts += 1
            try:
                outcome = await self._attempt(phone, payload)
            except Exception as exc:  # a fault of ours, not the phone's
                # This phone's failure, said as such, and the worker goes on:
                # an exception escaping here once ended the worker silently,
                # leaving its phone "sending" and its share of the queue unsent.
                detail = f"internal error: {type(exc).__name__}: {exc}"[:300]
                outcome = Outcome("unreachable", detail=detail)
                break
            retry = outcome.status in RETRYABLE or (
                outcome.status == "rejected" and outcome.code == 503
            )
            out_of_time = deadline is not None and time.monotonic() >= deadline
            if not retry or attempts > opts.retries or out_of_time:
                break
            delay = min(opts.backoff_max, opts.backoff * 2 ** (attempts - 1))
            await asyncio.sleep(delay * (0.5 + self._rng.random()))  # jitter
        self._progress.done_pushes += 1
        self._record(phone, outcome, attempts)

    async def _attempt(self, phone: Phone, payload: Payload) -> Outcome:
        popts = PushOptions(
            proxy=phone.proxy,
            transport=phone.transport or self.options.transport,
            timeout=self.options.push_timeout,
        )
        dests: list[Destination] | None = None
        target = phone.target
        if phone.proxy is None and _is_literal(target.hostname) and target.port is not None:
            dests = [
                Destination(
                    phone.transport_or(self.options.transport),
                    target.hostname,
                    target.port,
                )
            ]
        try:
            return await self.pusher.push(
                target, phone.password, payload, user=phone.user, options=popts, destinations=dests
            )
        except (SipError, OSError, ValueError) as exc:
            return Outcome("unreachable", detail=str(exc))

    def _record(self, phone: Phone, outcome: Outcome | None, attempts: int) -> None:
        if outcome is None:
            return
        now = time.time()
        if outcome.delivered:
            if phone.name not in self._accepted:
                self._accepted.add(phone.name)
                self._unconfirmed += phone.name not in self._confirmed
            state = "confirmed" if phone.name in self._confirmed else "accepted"
            self.store.record(
                self._cid,
                Result(
                    phone.name,
                    state,
                    None,
                    outcome.code,
                    outcome.reason,
                    attempts,
                    outcome.elapsed_ms,
                    now,
                ),
            )
        else:
            self.store.record(
                self._cid,
                Result(
                    phone.name,
                    "failed",
                    outcome.status,
                    outcome.code,
                    outcome.reason or outcome.detail,
                    attempts,
                    outcome.elapsed_ms,
                    now,
                ),
            )

    async def _await_confirmations(self) -> None:
        if self._unconfirmed == 0:
            return
        self._confirm_event.clear()
        if self._halt.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._confirm_event.wait(), self.options.confirm_timeout)


@functools.lru_cache(maxsize=1024)
def _is_literal(host: str) -> bool:
    """Whether ``host`` is an IP address (cached: a campaign asks once per
    attempt, about the same few hosts)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def summary_line(progress: Progress) -> dict[str, Any]:
    """Counts, rate and ETA as a dict (for --json progress lines)."""
    return {
        "counts": progress.counts,
        "done": progress.done_pushes,
        "total": progress.total,
        "rate": round(progress.rate, 1),
        "eta": progress.eta,
    }
