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
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from phonecast.phone.event_file import EventFile

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
    without it.  The file is written by a thread of its own
    (:mod:`phonecast.phone.event_file`): a reader that stops reading, or a
    disk that hangs, must not stop the phones.  Raised into the phone, the
    error would make it answer every request with a 500, and the record of
    events is not worth the phone itself.  :attr:`failure` says what happened, for the caller."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        clock: Callable[[], float] = time.time,
        on_failure: Callable[[str], None] = _to_stderr,
    ):
        # Written by a thread of its own (phone.event_file): a reader that
        # stops reading must not stop the phones.
        self._fh: EventFile | None = None
        self._path = str(path) if path is not None else ""
        if path is not None:
            self._fh = EventFile(str(Path(path)), on_failure)
        self._clock = clock
        self._listeners: list[Listener] = []
        # A plain dict: counting into a Counter costs 2.5x as much per event.
        self._counts: dict[str, int] = {}

    @property
    def failure(self) -> str:
        """Why the file was dropped, if it was ("" while it is written)."""
        return self._fh.failure if self._fh is not None else ""

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
        fh = self._fh
        return (fh is not None and not fh.failure) or bool(self._listeners)

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
        if not self.detailed:
            return  # counted only: a fleet under load must not pay for a dict
        event = {"t": round(self._clock(), 6), "event": kind, **fields}
        fh = self._fh
        if fh is not None:
            fh.write(json.dumps(event, separators=(",", ":"), default=str) + "\n")
        for listener in self._listeners:
            listener(event)

    def close(self) -> None:
        """Write what is queued and close the file (a failure to write its
        last lines is reported like any other, not raised)."""
        fh = self._fh
        if fh is not None:
            fh.close()
