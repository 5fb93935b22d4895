"""Report: outcomes, summary, groups, JSON and CSV files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from phonecast.campaign.report import make_report, outcome_of
from phonecast.campaign.store import OUTCOMES, PhoneRow


def _row(
    name: str,
    state: str,
    outcome: str | None = None,
    group: str | None = "B",
    code: int | None = None,
    reason: str | None = None,
) -> PhoneRow:
    return PhoneRow(
        name,
        f"sip:{name}@127.0.0.1",
        group,
        state,
        outcome,
        code,
        reason,
        1,
        None,
        None,
        None,
        12.0 if state == "confirmed" else None,
        1.23456,
        1,
    )


ROWS = [
    _row("a", "confirmed", "confirmed", code=200),
    _row("b", "accepted", code=200),
    _row("c", "failed", "auth_rejected", code=401, reason="Unauthorized"),
    _row("d", "failed", "rejected", "A", code=486),
    _row("e", "sending"),
    _row("f", "queued", group=None),
]


def test_outcomes_and_summary() -> None:
    assert [outcome_of(r) for r in ROWS] == [
        "confirmed",
        "accepted",
        "auth_rejected",
        "rejected",
        "in_flight",
        "not_sent",
    ]
    report = make_report("cid", ROWS)
    summary = report.summary()
    assert list(summary) == list(OUTCOMES)
    assert summary["confirmed"] == 1 and summary["timeout"] == 0 and summary["invalid"] == 0
    assert summary["in_flight"] == 1 and summary["not_sent"] == 1
    assert report.groups()["A"] == {"rejected": 1}
    assert report.groups()["-"] == {"not_sent": 1}
    assert not report.complete()
    assert make_report("x", ROWS[:2]).complete(confirm=False)
    assert not make_report("x", ROWS[:2]).complete(confirm=True)


def test_json_and_csv_files(tmp_path: Path) -> None:
    report = make_report("cid", ROWS)
    report.write(tmp_path / "r.json")
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["campaign"] == "cid" and doc["summary"]["accepted"] == 1
    first = doc["phones"][0]
    assert set(first) == {
        "name",
        "target",
        "outcome",
        "code",
        "reason",
        "attempts",
        "latency_ms",
        "confirmed_at",
    }
    assert doc["phones"][2]["reason"] == "Unauthorized" and first["reason"] is None
    assert first["latency_ms"] == 1.235 and first["confirmed_at"] == 12.0
    report.write(tmp_path / "r.csv")
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [r["outcome"] for r in rows][:3] == ["confirmed", "accepted", "auth_rejected"]
    assert rows[1]["confirmed_at"] == ""
    assert [r["reason"] for r in rows][:3] == ["", "", "Unauthorized"]


def test_the_table_gives_the_reason_of_phones_not_confirmed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from phonecast.cli.campaign_views import print_report

    print_report(make_report("cid", ROWS))
    assert "Unauthorized" in capsys.readouterr().out


def test_a_report_is_replaced_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report was written in place: a failure half-way (a full disk, a
    kill) left half a report where the last whole one had been."""
    path = tmp_path / "r.csv"
    path.write_text("the previous report\n")
    written = [0]
    writerow = csv.DictWriter.writerow

    def failing_second(self: csv.DictWriter[str], row: dict[str, object]) -> object:
        written[0] += 1
        if written[0] == 3:
            raise OSError(28, "No space left on device")
        return writerow(self, row)

    monkeypatch.setattr(csv.DictWriter, "writerow", failing_second)
    with pytest.raises(OSError, match="No space left"):
        make_report("cid", ROWS).write(path)
    assert path.read_text() == "the previous report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]  # no temporary left
    monkeypatch.undo()
    make_report("cid", ROWS).write(path)
    assert len(list(csv.DictReader(path.open()))) == len(ROWS)


def test_the_summary_table_fits_a_terminal_with_every_outcome_had(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from phonecast.cli.campaign_views import print_report

    monkeypatch.setenv("COLUMNS", "80")
    print_report(make_report("cid", ROWS))
    summary = capsys.readouterr().out.split("by group")[0]
    for outcome in ("confirmed", "accepted", "auth_rejected", "rejected", "in_flight", "not_sent"):
        assert outcome in summary  # not cut to "confi…"
    assert "unreachable" not in summary  # no phone has it


def test_a_report_through_a_symlink_writes_the_file_it_names(tmp_path: Path) -> None:
    """The link was replaced by a regular file, its target left empty."""
    from phonecast.campaign.report import check_report_path

    (tmp_path / "reports").mkdir()
    real = tmp_path / "reports" / "real.csv"
    real.write_text("")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    check_report_path(link)
    make_report("cid", ROWS).write(link)
    assert link.is_symlink() and "confirmed" in real.read_text()


def test_a_report_to_a_fifo_is_written_into_it(tmp_path: Path) -> None:
    import os
    import threading

    from phonecast.campaign.report import check_report_path

    fifo = tmp_path / "report.json"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    check_report_path(fifo)
    make_report("cid", ROWS).write(fifo)
    reader.join(10)
    assert json.loads(got[0])["campaign"] == "cid"
    assert not fifo.is_file() and fifo.exists()  # still the FIFO
