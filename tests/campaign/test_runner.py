"""Campaigns end to end against emulated phones (in process)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from phonecast.campaign.inventory import Phone
from phonecast.campaign.runner import CampaignRunner, RunOptions
from phonecast.campaign.store import CampaignStore
from phonecast.ciscoxml import Text, to_xml
from phonecast.content import ContentServer
from phonecast.credentials import Secret
from phonecast.net.endpoint import SipEndpoint
from phonecast.phone.config import LineConfig, PhoneConfig, PhoneSettings
from phonecast.phone.emulator import PhoneHost
from phonecast.phone.events import EventLog
from phonecast.push.payload import url_payload
from phonecast.push.pusher import Pusher
from phonecast.sip import SipUri
from tests.ports import free_ports


def _free_ports(n: int) -> list[int]:
    return free_ports(n)


async def _campaign(
    tmp_path: Path,
    phones: list[Phone],
    options: RunOptions,
) -> tuple[CampaignStore, str, Any]:
    store = CampaignStore(tmp_path / "c.db")
    cid = store.create(
        {"test": True}, [(p.name, str(p.target), p.tag_value("group")) for p in phones]
    )
    ep = SipEndpoint()
    await ep.listen_udp("127.0.0.1", 0)
    runner = CampaignRunner(store, Pusher(ep), None, options)
    content = ContentServer(on_fetch=runner.record_fetch)
    await content.start()
    runner.content = content
    urls = runner.publish(
        cid, phones, lambda p: to_xml(Text("Drill", None, (), p.name)), "text/xml"
    )
    try:
        report = await runner.run(cid, phones, lambda p: url_payload(urls[p.name]))
    finally:
        await ep.close()
        await content.stop()
    return store, cid, report


async def test_thousand_phones_all_confirmed_each_fetched_once(tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    log = EventLog()
    log.subscribe(lambda e: events.append(e) if e["event"] == "fetch_started" else None)
    host = PhoneHost(events=log)
    await host.start()
    ports = _free_ports(1000)
    settings = PhoneSettings(tcp=False)
    phones = []
    for n, port in enumerate(ports):
        user = str(2000 + n)
        await host.add_phone(
            PhoneConfig(f"p{n}", "127.0.0.1", (LineConfig(user, Secret(f"pw{n}"), port),), settings)
        )
        phones.append(
            Phone(
                f"p{n}",
                SipUri("127.0.0.1", user, port=port),
                user,
                Secret(f"pw{n}"),
                tags=frozenset({("group", str(n % 4))}),
            )
        )
    try:
        store, cid, report = await _campaign(
            tmp_path, phones, RunOptions(concurrency=300, push_timeout=5, confirm_timeout=20)
        )
    finally:
        await host.close()
    assert report.summary()["confirmed"] == 1000, report.summary()
    assert report.complete()
    per_phone = Counter(e["phone"] for e in events)
    assert len(per_phone) == 1000 and set(per_phone.values()) == {1}
    urls = {e["url"] for e in events}
    assert len(urls) == 1000  # each phone fetched its own URL
    assert store.fetch_count(cid) == 1000
    assert set(report.groups()) == {"0", "1", "2", "3"}


async def test_failures_are_reported_and_retried_only_where_they_should(tmp_path: Path) -> None:
    host = PhoneHost()
    await host.start()
    ports = _free_ports(50)
    kinds = ["ok"] * 10 + ["badpw"] * 10 + ["dead"] * 10 + ["busy"] * 10 + ["unavailable"] * 10
    phones = []
    for n, (kind, port) in enumerate(zip(kinds, ports, strict=True)):
        user = str(3000 + n)
        reject = {"busy": 486, "unavailable": 503}.get(kind)
        if kind != "dead":
            await host.add_phone(
                PhoneConfig(
                    f"{kind}{n}",
                    "127.0.0.1",
                    (LineConfig(user, Secret("right"), port),),
                    PhoneSettings(tcp=False, notify_reject=reject),
                )
            )
        phones.append(
            Phone(
                f"{kind}{n}",
                SipUri("127.0.0.1", user, port=port),
                user,
                Secret("wrong" if kind == "badpw" else "right"),
            )
        )
    options = RunOptions(push_timeout=0.6, retries=2, backoff=0.05, confirm_timeout=3)
    try:
        _, _, report = await _campaign(tmp_path, phones, options)
    finally:
        await host.close()
    rows = {p["name"]: p for p in report.as_dict()["phones"]}

    def of(kind: str) -> list[dict[str, Any]]:
        return [r for name, r in rows.items() if name.startswith(kind)]

    assert {r["outcome"] for r in of("ok")} == {"confirmed"}
    assert {(r["outcome"], r["code"], r["attempts"]) for r in of("badpw")} == {
        ("auth_rejected", 401, 1)
    }
    # A closed port's ICMP unreachable: retried like a timeout, reported as what it is.
    assert {(r["outcome"], r["attempts"]) for r in of("dead")} == {("unreachable", 3)}
    assert {(r["outcome"], r["code"], r["attempts"]) for r in of("busy")} == {("rejected", 486, 1)}
    assert {(r["outcome"], r["code"], r["attempts"]) for r in of("unavailable")} == {
        ("rejected", 503, 3)
    }
    assert not report.complete()


class _CountingPusher:
    """Stands in for the pusher: counts pushes in flight and the tasks alive."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0
        self.pushed: list[str] = []
        self.peak_tasks = 0

    async def push(self, target: SipUri, *args: Any, **kwargs: Any) -> Any:
        import asyncio

        from phonecast.push.pusher import Outcome

        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.peak_tasks = max(self.peak_tasks, len(asyncio.all_tasks()))
        await asyncio.sleep(0.001)
        self.in_flight -= 1
        self.pushed.append(str(target))
        return Outcome("delivered", 200, "OK")


async def test_dispatch_is_a_fixed_pool_within_the_concurrency_window(tmp_path: Path) -> None:
    phones = [
        Phone(f"p{n}", SipUri("127.0.0.1", f"{n}", port=5060), f"{n}", Secret("x"))
        for n in range(300)
    ]
    store = CampaignStore(tmp_path / "c.db")
    cid = store.create({"test": True}, [(p.name, str(p.target), None) for p in phones])
    pusher = _CountingPusher()
    runner = CampaignRunner(store, pusher, None, RunOptions(concurrency=20, confirm=False))  # type: ignore[arg-type]
    report = await runner.run(cid, phones, lambda p: url_payload("http://127.0.0.1:9/x"))
    assert sorted(pusher.pushed) == sorted(str(p.target) for p in phones)  # each once
    assert pusher.peak == 20
    assert pusher.peak_tasks <= 20 + 3  # the pool, the test, the flusher: not 300
    assert report.summary()["accepted"] == 300


async def test_a_failed_commit_neither_errs_the_phone_nor_confirms_without_its_page(
    tmp_path: Path,
) -> None:
    """A fetch was once committed before its answer: a commit that failed
    (database locked, disk full) answered the phone 500, and the next flush
    committed the fetch anyway, "confirmed" for a phone without its page.
    Now the page is sent first and the fetch recorded after: a store whose
    commit fails once delays the record, the phone has its page, and the
    fetch is committed by the next flush."""
    import sqlite3

    import aiohttp
    import pytest

    store = CampaignStore(tmp_path / "g.db")
    cid = store.create({}, [("p0", "sip:0@127.0.0.1", None)])
    runner = CampaignRunner(store, None, None, RunOptions())  # type: ignore[arg-type]
    runner._cid = cid
    flush = store.flush
    failures = [sqlite3.OperationalError("database is locked")]

    def failing_once() -> None:
        if failures and store.pending:
            raise failures.pop()
        flush()

    store.flush = failing_once  # type: ignore[method-assign]
    content = ContentServer(on_fetch=runner.record_fetch)
    await content.start()
    runner.content = content
    try:
        urls = runner.publish(cid, [_phone(0)], lambda p: b"<page/>", "text/xml")
        async with aiohttp.ClientSession() as http, http.get(urls["p0"]) as resp:
            assert resp.status == 200 and await resp.read() == b"<page/>"
    finally:
        await content.stop()
    with pytest.raises(sqlite3.OperationalError):
        store.flush()
    assert not failures and store.pending == 1  # kept through the failed commit
    store.flush()
    (row,) = store.phones(cid)
    assert row.state == "confirmed" and store.fetch_count(cid, "p0") == 1


def _phone(n: int) -> Phone:
    return Phone(f"p{n}", SipUri("127.0.0.1", f"{n}", port=5060), f"{n}", Secret("x"))


def _stored_campaign(path: Path, count: int) -> tuple[list[Phone], CampaignStore, str]:
    """``count`` phones (:func:`_phone`) in a new campaign of a store at ``path``."""
    phones = [_phone(n) for n in range(count)]
    store = CampaignStore(path)
    cid = store.create({"test": True}, [(p.name, str(p.target), None) for p in phones])
    return phones, store, cid


async def _run_cancelled_after(
    runner: CampaignRunner, cid: str, phones: list[Phone], seconds: float
) -> None:
    """``runner`` runs the campaign and is cancelled after ``seconds`` (Ctrl-C)."""
    import asyncio

    run = asyncio.ensure_future(
        runner.run(cid, phones, lambda p: url_payload("http://127.0.0.1:9/x"))
    )
    await asyncio.sleep(seconds)
    run.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await run


async def test_progress_is_redrawn_a_few_times_a_second_not_per_event(tmp_path: Path) -> None:
    import asyncio

    store = CampaignStore(tmp_path / "p.db")
    cid = store.create({}, [("p0", "sip:0@127.0.0.1", None)])
    seen: list[dict[str, int]] = []
    options = RunOptions(flush_interval=0.01, progress_interval=0.2)
    runner = CampaignRunner(store, None, None, options)  # type: ignore[arg-type]
    runner.on_progress = lambda prog: seen.append(dict(prog.counts))
    runner._cid = cid
    loop_task = asyncio.ensure_future(runner._flush_loop())
    await asyncio.sleep(0.5)  # 50 flushes
    loop_task.cancel()
    assert 2 <= len(seen) <= 4  # at 0.01 s, then every 0.2 s
    assert seen[-1] == {"queued": 1}


class _FaultyPusher(_CountingPusher):
    """Raises what no push should (a fault of ours) for one phone."""

    async def push(self, target: SipUri, *args: Any, **kwargs: Any) -> Any:
        if target.user == "7":
            raise TypeError("an object expected; got None")
        return await super().push(target, *args, **kwargs)


async def test_a_fault_in_one_push_is_recorded_and_the_rest_go_on(tmp_path: Path) -> None:
    """An exception escaping a push once ended its worker silently: the
    phone stayed "sending" in the store and the worker's later phones were
    never pushed.  Now it is that phone's failure, with why, and with one
    worker the other phones behind it are all still pushed."""
    phones = [
        Phone(f"p{n}", SipUri("127.0.0.1", f"{n}", port=5060), f"{n}", Secret("x"))
        for n in range(12)
    ]
    store = CampaignStore(tmp_path / "f.db")
    cid = store.create({"test": True}, [(p.name, str(p.target), None) for p in phones])
    pusher = _FaultyPusher()
    runner = CampaignRunner(store, pusher, None, RunOptions(concurrency=1, confirm=False))  # type: ignore[arg-type]
    report = await runner.run(cid, phones, lambda p: url_payload("http://127.0.0.1:9/x"))
    assert len(pusher.pushed) == 11
    assert report.summary()["accepted"] == 11 and report.summary()["unreachable"] == 1
    store.flush()
    (faulty,) = [row for row in store.phones(cid) if row.name == "p7"]
    assert faulty.state == "failed" and faulty.outcome == "unreachable"
    assert faulty.reason == "internal error: TypeError: an object expected; got None"
    assert not store.phones(cid, ["sending"])


async def test_a_store_failure_stops_the_run_unfinished_and_resume_loses_no_phone(
    tmp_path: Path,
) -> None:
    """A batch the store could not commit ``sending`` once ended its worker
    silently (the batch already off the queue), the other workers went on,
    and the campaign was marked finished with phones never sent.  Now the
    run stops with the store's error, the campaign stays unfinished, and a
    resume pushes every phone not yet pushed."""
    import pytest

    from phonecast.campaign.store import StoreError

    phones, store, cid = _stored_campaign(tmp_path / "s.db", 10)
    mark_sending = store.mark_sending
    calls = [0]

    def failing_third(cid: str, names: Any, *, now: float) -> None:
        calls[0] += 1
        if calls[0] == 3:
            raise StoreError(store.path, "database is locked")
        mark_sending(cid, names, now=now)

    store.mark_sending = failing_third  # type: ignore[method-assign]
    pusher = _CountingPusher()
    runner = CampaignRunner(store, pusher, None, RunOptions(concurrency=2, confirm=False))  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="database is locked"):
        await runner.run(cid, phones, lambda p: url_payload("http://127.0.0.1:9/x"))
    assert store.campaign(cid).status == "running"  # type: ignore[union-attr]
    assert store.latest_unfinished() is not None
    assert len(pusher.pushed) == 4  # two batches of two; the third never left
    assert store.counts(cid) == {"accepted": 4, "queued": 6}
    store.mark_sending = mark_sending  # type: ignore[method-assign]
    again = CampaignRunner(store, pusher, None, RunOptions(concurrency=2, confirm=False))  # type: ignore[arg-type]
    report = await again.run(cid, phones, lambda p: url_payload("http://127.0.0.1:9/x"))
    assert sorted(pusher.pushed) == sorted(str(p.target) for p in phones)  # each once
    assert report.summary()["accepted"] == 10
    assert store.campaign(cid).status == "finished"  # type: ignore[union-attr]


async def test_a_deadline_holds_under_a_rate_limit_and_phones_never_pushed_are_put_back(
    tmp_path: Path,
) -> None:
    """A whole batch was committed ``sending`` at once and each of its phones
    pushed when the rate limit let it, however long past the deadline (20
    phones at 2/s ran 10 s against a 2 s deadline).  Now the deadline is
    looked at before each push, and phones committed but not pushed get
    back their state: ``not_sent``, their send not counted."""
    import time

    phones, store, cid = _stored_campaign(tmp_path / "r.db", 20)
    pusher = _CountingPusher()
    options = RunOptions(concurrency=20, rate=4.0, confirm=False, deadline=0.6)
    started = time.monotonic()
    report = await CampaignRunner(store, pusher, None, options).run(  # type: ignore[arg-type]
        cid, phones, lambda p: url_payload("http://127.0.0.1:9/x")
    )
    assert time.monotonic() - started < 2.0
    summary = report.summary()
    assert 1 <= summary["accepted"] <= 5, summary
    assert summary["accepted"] + summary["not_sent"] == 20 and summary["in_flight"] == 0
    rows = {r.name: r for r in store.phones(cid)}
    assert sorted(pusher.pushed) == sorted(r.target for r in rows.values() if r.sends == 1)
    assert all(r.sends == 0 and r.sent_at is None for r in rows.values() if r.state == "queued")


async def test_a_deadline_leaves_the_rest_not_sent_and_the_campaign_resumable(
    tmp_path: Path,
) -> None:
    """Phones the dispatch deadline left were reported "timeout", as if
    tried, and the campaign "finished", which a plain resume skips.  Now
    they are ``not_sent``, the campaign ``stopped``, and resume sends them."""
    import asyncio

    class _SlowPusher(_CountingPusher):
        async def push(self, target: SipUri, *args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0.05)
            return await super().push(target, *args, **kwargs)

    phones, store, cid = _stored_campaign(tmp_path / "d.db", 20)
    pusher = _SlowPusher()
    options = RunOptions(concurrency=1, confirm=False, deadline=0.12)
    report = await CampaignRunner(store, pusher, None, options).run(  # type: ignore[arg-type]
        cid, phones, lambda p: url_payload("http://127.0.0.1:9/x")
    )
    summary = report.summary()
    assert 0 < summary["accepted"] < 20 and summary["timeout"] == 0
    assert summary["accepted"] + summary["not_sent"] == 20
    unfinished = store.latest_unfinished()
    assert unfinished is not None and unfinished.status == "stopped"
    options = RunOptions(concurrency=4, confirm=False)
    report = await CampaignRunner(store, pusher, None, options).run(  # type: ignore[arg-type]
        cid, phones, lambda p: url_payload("http://127.0.0.1:9/x")
    )
    assert report.summary()["accepted"] == 20 and store.latest_unfinished() is None
    assert sorted(pusher.pushed) == sorted(str(p.target) for p in phones)  # each once


@pytest.mark.parametrize(
    "bad",
    [
        {"rate": float("nan")},
        {"rate": -1.0},
        {"push_timeout": float("inf")},
        {"push_timeout": 0.0},
        {"confirm_timeout": float("nan")},
        {"deadline": float("inf")},
        {"deadline": 0.0},
        {"concurrency": 0},
        {"retries": -1},
        {"flush_interval": 0.0},
    ],
)
def test_run_options_refuse_what_would_hang_or_spin_a_run(bad: dict[str, Any]) -> None:
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        RunOptions(**bad)


async def test_a_phone_confirmed_by_a_late_fetch_is_not_pushed_again(tmp_path: Path) -> None:
    """A resume's phones may still fetch the first run's URLs; one confirmed
    that way while it waits in the queue was pushed again all the same."""
    from phonecast.content.server import Fetch

    phones, store, cid = _stored_campaign(tmp_path / "l.db", 4)
    runner: CampaignRunner

    class _FetchingPusher(_CountingPusher):
        async def push(self, target: SipUri, *args: Any, **kwargs: Any) -> Any:
            if not self.pushed:  # while p0 is pushed, p2 fetches its old URL
                runner.record_fetch(Fetch("p2", "tok", 1.0, "127.0.0.1", 200))
            return await super().push(target, *args, **kwargs)

    pusher = _FetchingPusher()
    runner = CampaignRunner(store, pusher, None, RunOptions(concurrency=1, confirm=False))  # type: ignore[arg-type]
    report = await runner.run(cid, phones, lambda p: url_payload("http://127.0.0.1:9/x"))
    assert sorted(pusher.pushed) == sorted(str(p.target) for p in phones if p.name != "p2")
    assert {p.name: p.state for p in report.phones}["p2"] == "confirmed"


async def test_a_cancelled_run_puts_back_the_phones_it_never_pushed(tmp_path: Path) -> None:
    """Ctrl-C left every phone committed for sending (and each worker's,
    waiting on the rate limit) ``sending``: reported in_flight, never sent."""

    phones, store, cid = _stored_campaign(tmp_path / "x.db", 10)
    pusher = _CountingPusher()
    runner = CampaignRunner(
        store, pusher, None, RunOptions(concurrency=10, rate=2.0, confirm=False)
    )  # type: ignore[arg-type]
    await _run_cancelled_after(runner, cid, phones, 0.3)
    store.flush()
    counts = store.counts(cid)
    assert counts.get("sending", 0) == 0, counts
    assert counts["queued"] == 10 - len(pusher.pushed) and 1 <= len(pusher.pushed) <= 2


@pytest.mark.parametrize("rate", [0.5, 1.5])
async def test_a_batch_is_about_a_second_of_a_slow_rate(tmp_path: Path, rate: float) -> None:
    """``int(0.5) or 64`` made a rate under one a push a second a 64-phone
    batch: a kill left them all in flight."""
    import math

    phones, store, cid = _stored_campaign(tmp_path / "b.db", 20)
    seen: list[int] = []
    mark = store.mark_sending

    def counting(cid: str, names: list[str], *, now: float) -> None:
        seen.append(len(names))
        mark(cid, names, now=now)

    store.mark_sending = counting  # type: ignore[method-assign]
    runner = CampaignRunner(
        store, _CountingPusher(), None, RunOptions(concurrency=20, rate=rate, confirm=False)
    )  # type: ignore[arg-type]
    await _run_cancelled_after(runner, cid, phones, 0.2)
    assert seen and max(seen) == math.ceil(rate)


def _hold_write_lock_after(
    path: Path, pusher: _CountingPusher, pushes: int, release: Any
) -> threading.Thread:
    """Once ``pushes`` phones are pushed, take the store's write lock on a
    connection of a thread's own (another campaign committing), and hold
    it until ``release()`` says so.  A thread, as another process would be:
    a writer on the run's loop could not let go while SQLite blocks it."""
    import sqlite3

    def hold() -> None:
        while len(pusher.pushed) < pushes:
            time.sleep(0.001)
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            while not release():
                time.sleep(0.005)
        finally:
            other.execute("ROLLBACK")
            other.close()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    return holder


async def test_a_store_locked_by_another_writer_does_not_stop_the_event_loop(
    tmp_path: Path,
) -> None:
    """SQLite waited for the other writer's lock by sleeping in the loop's
    thread: for up to 5 s nothing else ran, and a phone's fetch timed out
    meanwhile.  Now the run's writes retry after an await; the loop keeps
    its pace, and the run ends with every phone pushed once."""
    import asyncio

    phones, store, cid = _stored_campaign(tmp_path / "w.db", 200)
    pusher = _CountingPusher()
    runner = CampaignRunner(store, pusher, None, RunOptions(concurrency=4, confirm=False))  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    locked_at = [0.0]
    lags: list[float] = []
    started = time.monotonic()

    async def ticker() -> None:
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            lags.append(loop.time() - before - 0.01)

    def release() -> bool:
        if not locked_at[0]:
            locked_at[0] = time.monotonic() - started
        return time.monotonic() - started - locked_at[0] >= 1.5

    ticking = asyncio.ensure_future(ticker())
    holder = _hold_write_lock_after(store.path, pusher, 20, release)
    try:
        report = await runner.run(cid, phones, lambda p: url_payload("http://127.0.0.1:9/x"))
    finally:
        ticking.cancel()
        holder.join(5)
    assert locked_at[0], "the lock was never taken"
    assert max(lags) < 0.75, max(lags)  # the lock was held 1.5 s
    assert sorted(pusher.pushed) == sorted(str(p.target) for p in phones)  # each once
    assert report.summary()["accepted"] == 200


async def test_a_store_locked_past_the_wait_stops_the_run_and_loses_no_phone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the wait, the run stops with the store's error, resumable; the
    phones committed ``sending`` but never pushed were left so (reported
    in flight) when any store failure had stopped the run."""

    from phonecast.campaign import runner as runner_module
    from phonecast.campaign.store import StoreBusy

    monkeypatch.setattr(runner_module, "BUSY_WAIT", 0.3)
    phones, store, cid = _stored_campaign(tmp_path / "v.db", 200)
    pusher = _CountingPusher()
    # Under a rate, workers wait their turn holding a phone each: the halt
    # hands those back, and they are put back although the store had failed.
    options = RunOptions(concurrency=10, rate=50, confirm=False)
    runner = CampaignRunner(store, pusher, None, options)  # type: ignore[arg-type]
    holder = _hold_write_lock_after(
        store.path, pusher, 20, lambda: runner._store_failure is not None
    )
    with pytest.raises(StoreBusy, match=r"v\.db: database is locked: .* for 0\.3 s"):
        await runner.run(cid, phones, lambda p: url_payload("http://127.0.0.1:9/x"))
    holder.join(5)
    assert store.campaign(cid).status == "running"  # type: ignore[union-attr]
    counts = store.counts(cid)
    assert counts.get("sending", 0) == 0, counts
    assert counts["accepted"] == len(pusher.pushed) and counts["queued"] == 200 - len(pusher.pushed)
