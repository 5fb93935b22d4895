"""The emulator's event log: one JSON object per line, for tests and tools.

Every observable step of a phone is an event: ``request`` (received),
``auth`` (verdict and why), ``response`` (sent), ``fetch_started``,
``fetch_finished`` (status, content type), ``screen`` (what is shown),
``action`` (an internal URI executed), ``call`` (state changes).  Events
never contain a password or a digest response.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

Listener = Callable[[dict[str, Any]], None]


class EventLog:
    """Append events to a JSONL file (if given) and to listeners; count kinds."""

    def __init__(self, path: str | Path | None = None, *, clock: Callable[[], float] = time.time):
        self._fh: IO[str] | None = None
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
        if self._fh is not None:
            self._fh.write(json.dumps(event, separators=(",", ":"), default=str) + "\n")
        for listener in self._listeners:
            listener(event)

    def close(self) -> None:
        """Close the file."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
