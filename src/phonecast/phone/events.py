"""The emulator's event log: one JSON object per line, for tests and tools.

Every observable step of a phone is an event: ``request`` (received),
``auth`` (verdict and why), ``response`` (sent), ``fetch_started``,
``fetch_finished`` (status, content type), ``screen`` (what is shown),
``action`` (an internal URI executed), ``call`` (state changes).  Events
never contain a password or a digest response.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

Listener = Callable[[dict[str, Any]], None]


def _to_stderr(message: str) -> None:
    """Where a failing events file is reported by default: a line on
    stderr, which may itself be gone (a closed pipe); nothing is raised."""
    with contextlib.suppress(OSError, ValueError):
        print(f"phonecast: {message}", file=sys.stderr, flush=True)


class EventLog:
    """Append events to a JSONL file (if given) and to listeners; count kinds.

    A file that cannot be written any more (disk full, a device error) is
    reported once, through ``on_failure``, and dropped: the phones go on
    without it.  Raised into the phone, the error would make it answer
    every request with a 500, and the record of events is not worth the
    phone itself.  :attr:`failure` says what happened, for the caller."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        clock: Callable[[], float] = time.time,
        on_failure: Callable[[str], None] = _to_stderr,
    ):
        self._fh: IO[str] | None = None
        self._path = str(path) if path is not None else ""
        self._on_failure = on_failure
        #: Why the file was dropped, if it was ("" while it is written).
        self.failure = ""
        if path is not None:
            # Long-lived, line-buffered; closed by close().
            self._fh = Path(path).open("a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self._clock = clock
        self._listeners: list[Listener] = []
        # A plain dict: counting into a Counter costs 2.5x as much per event.
        self._counts: dict[str, int] = {}

    @property
    def counts(self) -> Counter[str]:
        """Events so far, by kind (a copy; a kind never seen reads 0)."""
        return Counter(self._counts)

    @property
    def detailed(self) -> bool:
        """True when an event's fields go anywhere (a file, a listener).

        When not, a caller on the hot path calls :meth:`count` instead of
        :meth:`emit` and skips making the fields: a phone under load emits
        eight events per push, and their keyword dicts and strings cost
        more than the counting."""
        return self._fh is not None or bool(self._listeners)

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` with every event (tests, the live summary)."""
        self._listeners.append(listener)

    def count(self, kind: str) -> None:
        """Count one event of ``kind`` whose fields would go nowhere."""
        counts = self._counts
        counts[kind] = counts.get(kind, 0) + 1

    def emit(self, kind: str, **fields: Any) -> None:
        """Record one event."""
        self.count(kind)
        if self._fh is None and not self._listeners:
            return  # counted only: a fleet under load must not pay for a dict
        event = {"t": round(self._clock(), 6), "event": kind, **fields}
        fh = self._fh
        if fh is not None:
            try:
                fh.write(json.dumps(event, separators=(",", ":"), default=str) + "\n")
            except OSError as exc:
                self._drop_file(exc)
        for listener in self._listeners:
            listener(event)

    def close(self) -> None:
        """Close the file (a failure to write its last lines is reported
        like any other, not raised)."""
        fh = self._fh
        if fh is not None:
            self._fh = None
            try:
                fh.close()
            except OSError as exc:
                self._fail(exc)

    def _drop_file(self, exc: OSError) -> None:
        """Stop writing the file after ``exc``; report it once."""
        fh = self._fh
        self._fh = None
        if fh is not None:
            with contextlib.suppress(OSError):
                fh.close()
            # What the buffer held is lost either way; a second close (at
            # exit) must not try to write it again.  A line cut short (the
            # disk filled mid-line) goes too: every line of the file stays
            # JSON, and a later run appends after a whole one.
            with contextlib.suppress(OSError):
                _cut_to_last_line(self._path)
        self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        if self.failure:
            return
        self.failure = f"{exc.strerror or exc}"
        self._on_failure(
            f"cannot write the events file {self._path!r}: {self.failure}; "
            "the phones go on without the events file"
        )


def _cut_to_last_line(path: str) -> None:
    """Truncate the regular file at ``path`` after its last newline (looked
    for in its last 64 KiB: an event is far shorter)."""
    with Path(path).open("rb+") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
            return
        start = max(0, info.st_size - 65536)
        fh.seek(start)
        tail = fh.read()
        end = tail.rfind(b"\n")
        if end >= 0:
            fh.truncate(start + end + 1)
        elif start == 0:
            fh.truncate(0)
