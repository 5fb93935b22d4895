"""The event log: a file that cannot be written is reported once and dropped."""

from __future__ import annotations

import os

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
