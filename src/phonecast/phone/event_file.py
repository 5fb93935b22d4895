"""The events file, written by a thread of its own.

Written on the event loop, a file whose reader stops reading (a FIFO, a
pipe into a stalled tool) or a disk that hangs blocked the loop in
``write``: every phone of the process stopped answering, and SIGTERM went
unheard until the reader came back.  Here the loop only queues the line;
a daemon thread writes what is queued, in batches.  What the queue holds is
bounded (:data:`MAX_PENDING` lines): past it a line is counted as lost,
and said once, rather than held without end (the phones matter more than
the log).  A write that fails (disk full) is reported once, the line cut
short taken off, and the file dropped, as before.
"""

from __future__ import annotations

import collections
import contextlib
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final

#: Lines the writer may fall behind by before new ones are lost.
MAX_PENDING: Final = 100_000
#: How long :meth:`EventFile.close` waits for the queue to be written.
CLOSE_WAIT: Final = 5.0


class EventFile:
    """Lines appended to ``path`` by a writer thread (see the module docstring)."""

    def __init__(
        self,
        path: str,
        on_failure: Callable[[str], None],
        *,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.path = path
        # Opened here, on the caller's thread: a path that cannot be opened
        # is refused before any phone starts (OSError to the caller).
        self._fh = Path(path).open("a", encoding="utf-8")  # noqa: SIM115 - closed by the writer
        self._on_failure = on_failure
        self._max_pending = max_pending
        self._lines: collections.deque[str] = collections.deque()
        self._ready = threading.Condition()
        self._closing = False
        #: Why the file was dropped ("" while it is written).
        self.failure = ""
        #: Lines lost because the writer fell too far behind.
        self.lost = 0
        self._thread = threading.Thread(target=self._run, name="phonecast-events", daemon=True)
        self._thread.start()

    def write(self, line: str) -> None:
        """Queue one line (with its newline); never blocks on the file."""
        if self.failure:
            return
        with self._ready:
            if len(self._lines) >= self._max_pending:
                self.lost += 1
                if self.lost == 1:
                    self._on_failure(
                        f"the events file {self.path!r} falls behind (its reader is not "
                        f"reading?): events past {self._max_pending} waiting are lost"
                    )
                return
            self._lines.append(line)
            if len(self._lines) == 1:
                self._ready.notify()

    def close(self, timeout: float = CLOSE_WAIT) -> None:
        """Write what is queued (waiting at most ``timeout`` seconds), then
        close the file; lines still queued then are said to be lost."""
        with self._ready:
            self._closing = True
            self._ready.notify()
        self._thread.join(timeout)
        if self._thread.is_alive():
            with self._ready:
                left = len(self._lines)
            self._on_failure(
                f"the events file {self.path!r} was not written to the end: {left} events "
                "still waiting when the phones stopped"
            )

    def _run(self) -> None:
        fh = self._fh
        while True:
            with self._ready:
                while not self._lines and not self._closing:
                    self._ready.wait()
                batch = "".join(self._lines)
                self._lines.clear()
                closing = self._closing
            if batch and not self.failure:
                try:
                    fh.write(batch)
                    fh.flush()
                except OSError as exc:
                    self._drop(exc)
            if closing:
                with contextlib.suppress(OSError):
                    fh.close()
                return

    def _drop(self, exc: OSError) -> None:
        """Stop writing after ``exc``; report it once.  What the buffer held
        is lost either way, and a line cut short (the disk filled mid-line)
        goes too: every line of the file stays JSON, and a later run appends
        after a whole one."""
        self.failure = f"{exc.strerror or exc}"
        with contextlib.suppress(OSError):
            self._fh.close()
        with contextlib.suppress(OSError):
            cut_to_last_line(self.path)
        self._on_failure(
            f"cannot write the events file {self.path!r}: {self.failure}; "
            "the phones go on without the events file"
        )


def cut_to_last_line(path: str) -> None:
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
