"""The campaign store: SQLite in WAL mode, written so a SIGKILL loses nothing.

Theory of operation
-------------------
Each phone of a campaign moves ``queued -> sending -> accepted -> confirmed``
or ends ``failed`` (with an outcome: auth_rejected, rejected, timeout,
unreachable, invalid).  The one rule that makes a crash harmless: a phone is
marked ``sending`` and that is *committed* before its NOTIFY leaves.  After a
kill, :meth:`CampaignStore.in_flight` lists exactly the phones whose NOTIFY
may or may not have gone out; ``resume`` pushes those again (the only
duplicates) and everything still ``queued``, and never touches a phone whose
result was committed.

Writes are grouped: the runner marks a whole batch ``sending`` in one
transaction, and results are buffered and committed together every few
milliseconds (:meth:`flush`), so 10,000 phones do not cost 30,000 fsyncs.
A result not yet flushed at a kill leaves its phone ``sending``: it is
pushed again, which is the promised behaviour for phones in flight.

WAL with ``synchronous=NORMAL`` survives a process kill (committed pages are
in the WAL file); ``durable=True`` selects ``FULL`` for power-loss safety.
Passwords are never stored: a campaign records its inventory's path, and
resume reads the inventory again.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NamedTuple

SCHEMA = """
CREATE TABLE IF NOT EXISTS campaigns (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL,
    params TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS phones (
    campaign TEXT NOT NULL REFERENCES campaigns(id),
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    target TEXT NOT NULL,
    grp TEXT,
    state TEXT NOT NULL,
    outcome TEXT,
    code INTEGER,
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    token TEXT,
    sent_at REAL,
    accepted_at REAL,
    confirmed_at REAL,
    latency_ms REAL,
    sends INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign, name)
);
CREATE INDEX IF NOT EXISTS phones_state ON phones(campaign, state);
CREATE UNIQUE INDEX IF NOT EXISTS phones_token ON phones(token);
CREATE TABLE IF NOT EXISTS fetches (
    campaign TEXT NOT NULL,
    name TEXT NOT NULL,
    at REAL NOT NULL,
    source TEXT
);
"""

#: Each table's columns, to tell a store (or an older one) from other data.
COLUMNS = {
    "campaigns": {"id", "created", "finished", "status", "params"},
    "phones": {
        "campaign", "name", "seq", "target", "grp", "state", "outcome", "code", "reason",
        "attempts", "token", "sent_at", "accepted_at", "confirmed_at", "latency_ms", "sends",
    },
    "fetches": {"campaign", "name", "at", "source"},
}  # fmt: skip

STATES = ("queued", "sending", "accepted", "confirmed", "failed")
#: Campaign statuses ``resume`` takes by default.
UNFINISHED = ("running", "stopped")
#: Report outcomes, best first.
OUTCOMES = (
    "confirmed",
    "accepted",
    "auth_rejected",
    "rejected",
    "timeout",
    "unreachable",
    "invalid",
    "in_flight",  # marked sending, no result: its NOTIFY may or may not have left
    "not_sent",  # never pushed: the run was killed, stopped, or the phone left the inventory
)

#: How long a write waits for another connection's write lock (another
#: campaign of the same store committing) before it is a :class:`StoreBusy`.
BUSY_WAIT = 5.0
#: The pragma that sets that wait (again, after :meth:`CampaignStore.not_waiting`).
_WAITING: Final = f"PRAGMA busy_timeout={int(BUSY_WAIT * 1000)}"


class StoreError(Exception):
    """The campaign store could not be read or written (locked past the busy
    timeout, disk full, not a store): one line naming the file and why, for
    the command to say instead of a traceback."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"campaign store {path}: {problem}")
        self.path = path
        self.problem = problem


class StoreBusy(StoreError):
    """Another connection held the store's write lock (SQLite's
    ``SQLITE_BUSY``) longer than this write would wait: its own class so that
    a caller on an event loop can ask for no wait at all and retry later
    (:meth:`CampaignStore.not_waiting`), where SQLite's wait would stop the
    whole loop."""


class PhoneRow(NamedTuple):
    """A phone's record in a campaign (a named tuple: a report reads 10,000
    of them at once, and a frozen dataclass cost five times as much to build)."""

    name: str
    target: str
    group: str | None
    state: str
    outcome: str | None
    code: int | None
    reason: str | None
    attempts: int
    token: str | None
    sent_at: float | None
    accepted_at: float | None
    confirmed_at: float | None
    latency_ms: float | None
    sends: int


@dataclass(frozen=True, slots=True)
class CampaignRow:
    """A campaign's record."""

    id: str
    created: float
    finished: float | None
    status: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Result:
    """A result to record for one phone (buffered until :meth:`flush`)."""

    name: str
    state: str
    outcome: str | None = None
    code: int | None = None
    reason: str | None = None
    attempts: int | None = None
    latency_ms: float | None = None
    at: float | None = None


class CampaignStore:
    """All campaigns in one SQLite file."""

    def __init__(self, path: str | Path, *, durable: bool = False, readonly: bool = False) -> None:
        """Open (or, unless ``readonly``, create) the store at ``path``.

        Anything that makes it unusable is a :class:`StoreError` naming the
        file and the problem: a directory, a missing directory, a file that
        is not SQLite or is damaged, a database of something else, a full
        disk, a read-only one where writing.  ``readonly`` (what ``list``,
        ``show`` and ``report`` need) writes nothing, so a store on a
        read-only filesystem can still be read."""
        self.path = Path(path)
        self._results: list[tuple[str, Result]] = []
        self._fetches: list[tuple[str, str, float, str]] = []
        self._sends = "sends"
        if self.path.is_dir():
            raise StoreError(self.path, "is a directory, not a store file")
        parent = self.path.parent
        if not parent.is_dir():
            raise StoreError(self.path, f"directory {parent} does not exist")
        if readonly and not self.path.exists():
            raise StoreError(self.path, "no such file")
        try:
            self._db = _connect(self.path, readonly)
            self._db.execute(_WAITING)
            if not readonly:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._check_schema(readonly)
            if not readonly:
                self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            problem = _said(exc)
            if not readonly and not _writable(self.path):
                problem = f"cannot be written (a read-only file or directory): {problem}"
            raise StoreError(self.path, problem) from None

    def _check_schema(self, readonly: bool) -> None:
        """Refuse another program's database; bring an older store's tables
        up to date (``sends`` came later: read as 0 where it cannot be added)."""
        tables = {
            name: {col[1] for col in self._db.execute(f"PRAGMA table_info({name!r})")}
            for (name,) in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if not tables:
            if readonly:
                raise sqlite3.DatabaseError("empty: no campaign was ever stored in it")
            return
        for table, wanted in COLUMNS.items():
            have = tables.get(table)
            if have is None and table != "fetches":
                found = ", ".join(sorted(tables))
                raise sqlite3.DatabaseError(f"not a phonecast campaign store (its tables: {found})")
            lacking = sorted(wanted - (have or wanted) - {"sends"})
            if lacking:
                raise sqlite3.DatabaseError(
                    f"not a phonecast campaign store (table {table} lacks {', '.join(lacking)})"
                )
        if "sends" not in tables["phones"]:
            if readonly:
                self._sends = "0"
            else:
                self._db.execute("ALTER TABLE phones ADD COLUMN sends INTEGER NOT NULL DEFAULT 0")

    def close(self) -> None:
        """Flush and close."""
        self.flush()
        self._db.close()

    # ------------------------------------------------------------- campaigns
    def create(
        self,
        params: dict[str, Any],
        phones: Sequence[tuple[str, str, str | None]],
        *,
        now: float | None = None,
    ) -> str:
        """A new campaign with ``(name, target, group)`` phones, all queued."""
        cid = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        created = time.time() if now is None else now
        with self._tx():
            self._db.execute(
                "INSERT INTO campaigns(id, created, status, params) VALUES (?,?,?,?)",
                (cid, created, "running", json.dumps(params)),
            )
            self._db.executemany(
                "INSERT INTO phones(campaign, name, seq, target, grp, state) "
                "VALUES (?,?,?,?,?,'queued')",
                [(cid, n, i, t, g) for i, (n, t, g) in enumerate(phones)],
            )
        return cid

    def campaigns(self) -> list[CampaignRow]:
        """Every campaign, newest first."""
        rows = self._query(
            "SELECT id, created, finished, status, params FROM campaigns ORDER BY created DESC"
        )
        return [CampaignRow(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def campaign(self, cid: str) -> CampaignRow | None:
        """One campaign, or ``None``."""
        found = self._query(
            "SELECT id, created, finished, status, params FROM campaigns WHERE id=?", (cid,)
        )
        if not found:
            return None
        r = found[0]
        return CampaignRow(r[0], r[1], r[2], r[3], json.loads(r[4]))

    def latest_unfinished(self) -> CampaignRow | None:
        """The newest campaign not finished: still running (or killed), or
        stopped with phones unsent (what ``resume`` takes by default)."""
        for row in self.campaigns():
            if row.status in UNFINISHED:
                return row
        return None

    def finish(self, cid: str, *, now: float | None = None, status: str = "finished") -> None:
        """Mark a campaign ``finished``, or ``stopped``: its run ended (the
        dispatch deadline) with phones never sent, which a plain ``resume``
        takes up again."""
        assert status in ("finished", "stopped"), status
        self.flush()
        with self._tx():
            self._db.execute(
                "UPDATE campaigns SET status=?, finished=? WHERE id=?",
                (status, time.time() if now is None else now, cid),
            )

    # ---------------------------------------------------------------- phones
    def phones(self, cid: str, states: Iterable[str] | None = None) -> list[PhoneRow]:
        """Phones of a campaign in inventory order, optionally by state."""
        sql = (
            "SELECT name, target, grp, state, outcome, code, reason, attempts, token, sent_at, "
            f"accepted_at, confirmed_at, latency_ms, {self._sends} FROM phones WHERE campaign=?"
        )
        args: list[Any] = [cid]
        if states is not None:
            wanted = list(states)
            sql += f" AND state IN ({','.join('?' * len(wanted))})"
            args += wanted
        return list(map(PhoneRow._make, self._query(sql + " ORDER BY seq", args)))

    def states(self, cid: str) -> dict[str, tuple[str, str | None]]:
        """Each phone's ``(state, token)`` by name: what starting a run needs,
        without building a full row per phone (10,000 rows cost 75 ms)."""
        rows = self._query("SELECT name, state, token FROM phones WHERE campaign=?", (cid,))
        return {name: (state, token) for name, state, token in rows}

    def in_flight(self, cid: str) -> list[PhoneRow]:
        """Phones marked sending: their NOTIFY may or may not have left."""
        return self.phones(cid, ["sending"])

    def counts(self, cid: str) -> dict[str, int]:
        """How many phones are in each state."""
        rows = self._query(
            "SELECT state, count(*) FROM phones WHERE campaign=? GROUP BY state", (cid,)
        )
        return {state: n for state, n in rows}

    def set_tokens(self, cid: str, tokens: Sequence[tuple[str, str]]) -> None:
        """Remember each phone's content token (a resumed campaign reuses it)."""
        with self._tx():
            self._db.executemany(
                "UPDATE phones SET token=? WHERE campaign=? AND name=?",
                [(tok, cid, name) for name, tok in tokens],
            )

    def set_targets(self, cid: str, targets: Sequence[tuple[str, str]]) -> None:
        """Record the target each phone is pushed at now (its inventory
        changed between the run and a resume): the report names the target
        actually pushed."""
        with self._tx():
            self._db.executemany(
                "UPDATE phones SET target=? WHERE campaign=? AND name=?",
                [(target, cid, name) for name, target in targets],
            )

    def mark_sending(self, cid: str, names: Sequence[str], *, now: float) -> None:
        """Commit ``sending`` for a batch *before* any of their NOTIFYs leave."""
        self.flush()
        with self._tx():
            self._db.executemany(
                "UPDATE phones SET state='sending', sent_at=?, sends=sends+1 "
                "WHERE campaign=? AND name=? AND state IN ('queued','sending','accepted')",
                [(now, cid, n) for n in names],
            )

    def sending_priors(self, cid: str, names: Sequence[str]) -> dict[str, tuple[str, float | None]]:
        """Each phone's state and ``sent_at`` as they are, for
        :meth:`unmark_sending` to put back if it is not pushed after all."""
        rows = self._query(
            "SELECT name, state, sent_at FROM phones WHERE campaign=? AND name IN "
            f"({','.join('?' * len(names))})",
            (cid, *names),
        )
        return {name: (state, sent_at) for name, state, sent_at in rows}

    def unmark_sending(
        self, cid: str, priors: Sequence[tuple[str, tuple[str, float | None]]]
    ) -> None:
        """Undo :meth:`mark_sending` for phones a run committed ``sending``
        but never pushed (the deadline came first): each gets back the state
        it had, so a phone never sent is reported ``not_sent``, not
        ``in_flight``, and its send is not counted."""
        with self._tx():
            self._db.executemany(
                "UPDATE phones SET state=?, sent_at=?, sends=MAX(sends-1, 0) "
                "WHERE campaign=? AND name=? AND state='sending'",
                [(state, sent_at, cid, name) for name, (state, sent_at) in priors],
            )

    def record(self, cid: str, result: Result) -> None:
        """Buffer a result; it is committed by the next :meth:`flush`."""
        self._results.append((cid, result))

    def record_fetch(self, cid: str, name: str, at: float, source: str) -> None:
        """Buffer a fetch of a phone's content (the proof of delivery)."""
        self._fetches.append((cid, name, at, source))

    @property
    def pending(self) -> int:
        """Buffered writes not yet committed."""
        return len(self._results) + len(self._fetches)

    @property
    def buffered_fetch_phones(self) -> list[str]:
        """The phones whose fetches are buffered, not yet committed."""
        return sorted({name for _, name, _, _ in self._fetches})

    def flush(self) -> None:
        """Commit every buffered result and fetch in one transaction.

        If the commit fails (disk full, database locked) the writes stay
        buffered for the next flush and the error propagates: nothing is lost.
        """
        if not self._results and not self._fetches:
            return
        results, self._results = self._results, []
        fetches, self._fetches = self._fetches, []
        try:
            self._write(results, fetches)
        except BaseException:
            self._results[:0] = results
            self._fetches[:0] = fetches
            raise

    def _write(
        self, results: list[tuple[str, Result]], fetches: list[tuple[str, str, float, str]]
    ) -> None:
        with self._tx():  # one statement per kind of write, not per row
            self._db.executemany(
                # Each result replaces the last one's code, reason and
                # latency: a phone accepted (200) in one run and timed out
                # in its resume was reported "timeout" with code 200.
                "UPDATE phones SET state=?, outcome=coalesce(?, outcome),"
                " code=?, reason=?, attempts=coalesce(?, attempts), latency_ms=?,"
                " accepted_at=CASE WHEN ?='accepted' THEN ? ELSE accepted_at END"
                " WHERE campaign=? AND name=? AND state != 'confirmed'",
                [
                    (
                        r.state,
                        r.outcome,
                        r.code,
                        r.reason,
                        r.attempts,
                        r.latency_ms,
                        r.state,
                        r.at,
                        cid,
                        r.name,
                    )
                    for cid, r in results
                ],
            )
            # A phone whose fetch was committed before its 200 was recorded
            # is confirmed already: the 200's details are still its own.
            self._db.executemany(
                "UPDATE phones SET code=coalesce(code, ?), reason=coalesce(reason, ?),"
                " attempts=coalesce(nullif(attempts, 0), ?),"
                " latency_ms=coalesce(latency_ms, ?)"
                " WHERE campaign=? AND name=? AND state='confirmed'",
                [
                    (r.code, r.reason, r.attempts, r.latency_ms, cid, r.name)
                    for cid, r in results
                    if r.state in ("accepted", "confirmed")
                ],
            )
            self._db.executemany(
                "INSERT INTO fetches(campaign, name, at, source) VALUES (?,?,?,?)", fetches
            )
            self._db.executemany(
                "UPDATE phones SET state='confirmed', outcome='confirmed',"
                " confirmed_at=coalesce(confirmed_at, ?) WHERE campaign=? AND name=?",
                [(at, cid, name) for cid, name, at, _ in fetches],
            )

    def fetch_count(self, cid: str, name: str | None = None) -> int:
        """Fetches recorded for a campaign (or one phone of it)."""
        if name is None:
            rows = self._query("SELECT count(*) FROM fetches WHERE campaign=?", (cid,))
        else:
            rows = self._query(
                "SELECT count(*) FROM fetches WHERE campaign=? AND name=?", (cid, name)
            )
        return int(rows[0][0])

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """The rows of a read, SQLite's errors as :class:`StoreError`."""
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(self.path, str(exc)) from None

    @contextlib.contextmanager
    def not_waiting(self) -> Iterator[None]:
        """Writes made inside fail at once with :class:`StoreBusy` while
        another connection holds the write lock, instead of waiting up to
        :data:`BUSY_WAIT` for it.  SQLite waits by sleeping in the calling
        thread: on an event loop that stops every push, fetch and timer of
        the run for as long (a phone's fetch timed out that way), so the
        runner writes inside this and retries after an ``await``."""
        self._pragma("PRAGMA busy_timeout=0")
        try:
            yield
        finally:
            self._pragma(_WAITING)

    def _pragma(self, sql: str) -> None:
        try:
            self._db.execute(sql)
        except sqlite3.Error as exc:
            raise StoreError(self.path, str(exc)) from None

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error (a failed
        COMMIT too: a transaction left open would refuse every later BEGIN);
        SQLite's errors come out as :class:`StoreError`."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
                raise StoreBusy(self.path, str(exc)) from None
            raise StoreError(self.path, str(exc)) from None
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException as exc:
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(self.path, str(exc)) from None
            raise


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    """A connection; read-only ones by URI, falling back to ``immutable``
    where the WAL's shared-memory file cannot be made (a read-only
    filesystem), as nothing can change the file there anyway."""
    if not readonly:
        return sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError:
        if os.access(path.parent, os.W_OK):
            raise
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        # immutable=1 reads the main file only: what the log holds (a killed
        # run's last commits) would be missing without a word.
        raise StoreError(
            path,
            f"its write-ahead log {wal.name} holds commits that cannot be read without"
            f" write access to {path.parent}: copy the store with its -wal file to a"
            " writable directory and read it there",
        )
    return sqlite3.connect(
        uri + "&immutable=1", uri=True, isolation_level=None, check_same_thread=False
    )


def _writable(path: Path) -> bool:
    """Whether the store and its directory (for the WAL's files) can be written."""
    return os.access(path.parent, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


def _said(exc: sqlite3.Error) -> str:
    """SQLite's words, with what they mean where they are cryptic."""
    text = str(exc)
    if text == "file is not a database":
        return "not an SQLite database (file is not a database)"
    if text == "database disk image is malformed":
        return "damaged or truncated (database disk image is malformed)"
    if text == "attempt to write a readonly database":
        return "read-only (attempt to write a readonly database)"
    return text
