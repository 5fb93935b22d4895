"""The event log: a file that cannot be written is reported once and dropped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from phonecast.phone.events import EventLog


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_failing_events_file_is_reported_once_and_the_events_go_on() -> None:
    reported: list[str] = []
    seen: list[dict[str, object]] = []
    log = EventLog("/dev/full", on_failure=reported.append)
    log.subscribe(seen.append)
    for _ in range(3):
        log.emit("request", phone="p")  # must not raise into the phone
    log.close()  # nor at exit
    log.close()
    assert len(reported) == 1 and "'/dev/full'" in reported[0]
    assert "No space left on device" in reported[0] and "\n" not in reported[0]
    assert log.failure and len(seen) == 3 and log.counts["request"] == 3


def test_a_line_cut_short_when_the_disk_filled_is_taken_off(tmp_path: Path) -> None:
    """The file ended in ``{"`` and a later run appended to that fragment."""
    from phonecast.phone.event_file import cut_to_last_line

    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"event":"a"}\n{"event":"b"}\n{"ev')
    cut_to_last_line(str(path))
    assert path.read_bytes() == b'{"event":"a"}\n{"event":"b"}\n'
    cut_to_last_line(str(path))  # whole already: left as it is
    assert path.read_bytes() == b'{"event":"a"}\n{"event":"b"}\n'
    path.write_bytes(b'{"ev')
    cut_to_last_line(str(path))
    assert path.read_bytes() == b""


def test_a_reader_that_stops_reading_does_not_stop_the_emitter(tmp_path: Path) -> None:
    """Written on the event loop, a FIFO whose reader stopped blocked the
    loop in write(): every phone stopped answering, SIGTERM went unheard.
    Emitting now never blocks; past the bound, lines are lost and said so,
    and close() gives up waiting after its timeout, saying how many."""
    import threading
    import time

    from phonecast.phone.event_file import EventFile

    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    reader_fd: list[int] = []
    opener = threading.Thread(target=lambda: reader_fd.append(os.open(fifo, os.O_RDONLY)))
    opener.start()
    said: list[str] = []
    events = EventFile(str(fifo), said.append, max_pending=1000)
    opener.join(5)
    try:
        line = '{"event":"request","pad":"' + "x" * 200 + '"}\n'
        start = time.monotonic()
        for _ in range(5000):  # far more than the pipe holds: the writer blocks
            events.write(line)
        assert time.monotonic() - start < 2.0  # the emitter never waited
        assert events.lost > 0 and "falls behind" in said[0]
        events.close(timeout=0.3)
        assert "not written to the end" in said[-1]
    finally:
        os.close(reader_fd[0])  # the writer thread's write fails, it ends
