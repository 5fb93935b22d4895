"""Random tokens (tags, branches, Call-IDs, nonce salts, cnonces), in blocks.

RFC 3261 wants tags "cryptographically random" (19.3) and branches unique
(8.1.1.7), and a guessable nonce, cnonce or branch lets an off-path attacker
forge messages: every token here comes from the operating system's CSPRNG,
exactly as :mod:`secrets` draws it.  The difference is how: ``secrets`` makes
one ``getrandom`` system call per token (four per push, two per emulated
call; measured ~2 % of the pusher's CPU); here the bytes are read 4 KiB at a
time and handed out in slices, each byte once.  A forked child starts with an empty
block (it must never hand out what its parent does), and a lock keeps two
threads from taking the same slice.
"""

from __future__ import annotations

import os
import threading
from typing import Final

#: Bytes read from the OS at a time.
BLOCK: Final = 4096

_lock = threading.Lock()
_block = b""
_used = 0


def token_bytes(n: int) -> bytes:
    """``n`` random bytes from the OS CSPRNG (``0 < n <= BLOCK``)."""
    global _block, _used
    if not 0 < n <= BLOCK:
        raise ValueError(f"token length must be 1..{BLOCK} bytes, not {n}")
    # acquire/release rather than ``with``: compiled, the statement looks up
    # __enter__ and __exit__ on the lock at each call (three calls a push).
    lock = _lock
    lock.acquire()
    try:
        start = _used
        if start + n > len(_block):
            _block = os.urandom(BLOCK)
            start = 0
        _used = start + n
        return _block[start : start + n]
    finally:
        lock.release()


def token_hex(n: int) -> str:
    """``n`` random bytes as ``2 * n`` lowercase hex digits."""
    return token_bytes(n).hex()


def _forget() -> None:
    """In a forked child: never reuse the parent's bytes (and never wait on a
    lock that a thread of the parent held at the fork)."""
    global _block, _used, _lock
    _lock = threading.Lock()
    _block = b""
    _used = 0


os.register_at_fork(after_in_child=_forget)
