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
    from phonecast.phone.events import _cut_to_last_line

    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"event":"a"}\n{"event":"b"}\n{"ev')
    _cut_to_last_line(str(path))
    assert path.read_bytes() == b'{"event":"a"}\n{"event":"b"}\n'
    _cut_to_last_line(str(path))  # whole already: left as it is
    assert path.read_bytes() == b'{"event":"a"}\n{"event":"b"}\n'
    path.write_bytes(b'{"ev')
    _cut_to_last_line(str(path))
    assert path.read_bytes() == b""
