"""One process at a time runs a campaign: an exclusive lock file per campaign.

Why: ``campaign resume`` while the alert (or another resume) still ran the
same campaign pushed its phones twice, both processes taking the phones
queued and in flight.  The process running a campaign holds an exclusive
``flock`` on ``<store>.<campaign>.lock`` for as long as it runs, and writes
its pid there for the message another process gives.  The kernel drops the
lock when its process ends, however it ends, so a run killed with SIGKILL
never blocks the resume that finishes it (a pid and heartbeat kept in the
store would have to guess when an owner is dead).

The file is removed when the run ends.  A process that opened it just
before then locks a file no longer at that path: the lock is therefore
taken only once the open file is the one the path names (compared by inode).

Whether a campaign marked "running" in the store still runs is the same
question (:func:`is_live`): a shared lock taken and let go at once.  A run
starting in that instant finds the lock held; it tries again a few times,
over a fifth of a second, before it calls the campaign busy.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path


class CampaignBusy(Exception):
    """Another live process runs the campaign."""

    def __init__(self, cid: str, path: Path, owner: str) -> None:
        who = f"process {owner}" if owner else "another process"
        super().__init__(
            f"campaign {cid} is being run by {who} (lock {path}); wait for it to end"
            " or stop it before resuming"
        )
        self.path = path


def lock_path(db: str | Path, cid: str) -> Path:
    """The lock file of campaign ``cid`` in store ``db``: beside the store."""
    return Path(f"{db}.{cid}.lock")


@contextlib.contextmanager
def campaign_lock(db: str | Path, cid: str) -> Iterator[Path]:
    """Hold the campaign's lock for the ``with`` block, or raise
    :class:`CampaignBusy` at once (never wait: a second runner must not
    start later either).  ``OSError`` when the lock file cannot be made."""
    path = lock_path(db, cid)
    fd = _locked_file(path, cid)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # still ours: unlinked before the lock is let go
        os.close(fd)


#: How often, and how far apart, a run asks again for a lock it found held:
#: long past a probe's microseconds, far short of any run.
BUSY_TRIES = 10
BUSY_PAUSE = 0.02


def is_live(db: str | Path, cid: str) -> bool:
    """Whether a live process holds campaign ``cid``'s lock (never waits).
    No lock file, or one nobody holds (left by a killed run), is not live."""
    try:
        fd = os.open(lock_path(db, cid), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing lets go of a lock this probe took
    return False


def _exclusive(fd: int) -> bool:
    for attempt in range(BUSY_TRIES):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if attempt + 1 < BUSY_TRIES:
                time.sleep(BUSY_PAUSE)
        else:
            return True
    return False


def _locked_file(path: Path, cid: str) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        if not _exclusive(fd):
            owner = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            raise CampaignBusy(cid, path, owner)
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # removed by its last owner meanwhile: take the new one
