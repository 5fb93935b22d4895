"""The campaign report: per phone outcome, and a summary by outcome and group.

The report's point is the difference between ``accepted`` (the phone said
200 to the NOTIFY) and ``confirmed`` (the phone fetched its content from the
content server): only the second proves the phone acted.  JSON form::

    {"campaign": ID, "summary": {OUTCOME: COUNT, ...},
     "groups": {GROUP: {OUTCOME: COUNT}},
     "phones": [{"name", "target", "outcome", "code", "reason", "attempts",
                 "latency_ms", "confirmed_at"}, ...]}

``reason`` is what the store kept of why: the phone's reason phrase
("Unauthorized") or what the pusher found ("no target answered").
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from phonecast.campaign.store import OUTCOMES, PhoneRow


def outcome_of(row: PhoneRow) -> str:
    """The report outcome of a phone row.

    A phone without a result is said to be what it is, ``not_sent``
    (``queued``: never pushed, after a kill, a dispatch deadline, or a
    phone no longer in the inventory) or ``in_flight`` (``sending``: its
    NOTIFY may or may not have left); both were once reported ``timeout``,
    which says a phone was tried and did not answer."""
    if row.state == "confirmed":
        return "confirmed"
    if row.state == "accepted":
        return "accepted"
    if row.state == "queued":
        return "not_sent"
    if row.state == "sending":
        return "in_flight"
    if row.state == "failed" and row.outcome in OUTCOMES:
        return row.outcome
    return "timeout"


@dataclass(frozen=True, slots=True)
class Report:
    """A finished (or interrupted) campaign's outcome."""

    campaign: str
    phones: tuple[PhoneRow, ...]

    def summary(self) -> dict[str, int]:
        """Count per outcome, every outcome listed."""
        counts = Counter(outcome_of(p) for p in self.phones)
        return {o: counts.get(o, 0) for o in OUTCOMES}

    def groups(self) -> dict[str, dict[str, int]]:
        """Count per outcome within each group (phones without a group: ``-``)."""
        out: dict[str, Counter[str]] = {}
        for p in self.phones:
            out.setdefault(p.group or "-", Counter())[outcome_of(p)] += 1
        return {g: dict(sorted(c.items())) for g, c in sorted(out.items())}

    def complete(self, *, confirm: bool = True) -> bool:
        """True when every phone was confirmed (or accepted, without confirm)."""
        good = {"confirmed"} if confirm else {"confirmed", "accepted"}
        return all(outcome_of(p) in good for p in self.phones)

    def as_dict(self) -> dict[str, Any]:
        """The JSON document."""
        return {
            "campaign": self.campaign,
            "summary": self.summary(),
            "groups": self.groups(),
            "phones": [
                {
                    "name": p.name,
                    "target": p.target,
                    "outcome": outcome_of(p),
                    "code": p.code,
                    "reason": p.reason,
                    "attempts": p.attempts,
                    "latency_ms": None if p.latency_ms is None else round(p.latency_ms, 3),
                    "confirmed_at": p.confirmed_at,
                }
                for p in self.phones
            ],
        }

    def write(self, path: str | Path) -> None:
        """Write JSON (``.json``) or CSV (anything else), atomically: into a
        temporary file beside ``path``, then renamed over it, so a reader
        (or a crash, or a full disk) never leaves half a report where a
        whole one was."""
        doc = self.as_dict()
        if _is_stdout(path):  # through our own stream: reopened, the file is truncated
            self._write_doc(sys.stdout, Path(path), doc)
            sys.stdout.flush()
            return
        if written_in_place(path):
            with Path(path).open("w", newline="", encoding="utf-8") as fh:
                self._write_doc(fh, Path(path), doc)
            return
        path = Path(os.path.realpath(path))  # a symlink's file is replaced, the link stays
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
                self._write_doc(fh, path, doc)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(temporary, 0o666 & ~_umask())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    @classmethod
    def _write_doc(cls, fh: TextIO, path: Path, doc: dict[str, Any]) -> None:
        if path.suffix.lower() == ".json":
            fh.write(json.dumps(doc, indent=2) + "\n")
        else:
            cls._write_csv(fh, doc)

    @staticmethod
    def _write_csv(fh: TextIO, doc: dict[str, Any]) -> None:
        fields = (
            "name",
            "target",
            "outcome",
            "code",
            "reason",
            "attempts",
            "latency_ms",
            "confirmed_at",
        )
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for row in doc["phones"]:
            writer.writerow({k: "" if row[k] is None else row[k] for k in fields})


def check_report_path(path: str | Path) -> None:
    """Raise ``OSError`` (with its file named) now if a report cannot be
    written at ``path``: a campaign once ran to its end and only then
    failed on an unwritable ``--report``.  Tried for real, by making a
    temporary file where the report's will be (a permission check alone
    misses read-only filesystems)."""
    if Path(path).is_dir():
        raise IsADirectoryError(21, "is a directory", str(path))
    if written_in_place(path):
        if not os.access(path, os.W_OK):
            raise PermissionError(13, "not writable", str(path))
        return
    path = Path(os.path.realpath(path))
    if not path.parent.is_dir():
        raise FileNotFoundError(2, "its directory does not exist", str(path.parent))
    if path.exists() and not os.access(path, os.W_OK):
        raise PermissionError(13, "not writable", str(path))
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    os.unlink(temporary)


def written_in_place(path: str | Path) -> bool:
    """Whether a file written at ``path`` is written into what is there
    rather than made beside it and renamed over it: a FIFO, a device, and a
    descriptor's link under ``/dev`` or ``/proc`` (``/dev/stdout``
    redirected to a file is that file, but renamed over, the shell's
    descriptor would keep the old one and what else goes to stdout would
    be lost).  A plain file that merely lies under ``/dev`` (``/dev/shm``)
    is replaced as any other, owner-only: written in place, an inventory
    there kept its 0644 and showed the fleet's passwords to every user."""
    original = Path(path)
    if not original.exists() or original.is_dir():
        return False
    if not original.is_file():
        return True
    return original.is_symlink() and str(original.absolute()).startswith(("/dev/", "/proc/"))


def _is_stdout(path: str | Path) -> bool:
    """Whether ``path`` names this process's standard output (/dev/stdout,
    /proc/self/fd/1, or the file it is redirected to)."""
    try:
        here, there = os.fstat(1), os.stat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_report(campaign: str, phones: Sequence[PhoneRow]) -> Report:
    """A report over a campaign's phone rows."""
    return Report(campaign, tuple(phones))
