"""Tokens come from the OS CSPRNG in blocks: each byte once, never shared
with a forked child, never handed to two threads."""

from __future__ import annotations

import itertools
import os
import threading

import pytest

from phonecast.sip import _random, new_branch, new_tag, token_bytes, token_hex


def test_tokens_are_consecutive_slices_of_blocks_read_from_the_os(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counter = itertools.count()
    reads: list[int] = []

    def urandom(n: int) -> bytes:
        reads.append(n)
        return bytes(next(counter) % 256 for _ in range(n))

    monkeypatch.setattr(os, "urandom", urandom)
    _random._forget()  # start from an empty block
    first = token_bytes(4000)
    assert first == bytes(i % 256 for i in range(4000)) and reads == [_random.BLOCK]
    assert token_bytes(96) == bytes(i % 256 for i in range(4000, 4096))  # the rest, exactly
    assert reads == [_random.BLOCK]
    after = token_bytes(8)  # does not fit: a new block, from its start
    assert after == bytes(i % 256 for i in range(4096, 4104)) and len(reads) == 2
    _random._forget()


def test_token_sizes_and_forms() -> None:
    assert len(token_bytes(1)) == 1 and len(token_bytes(_random.BLOCK)) == _random.BLOCK
    for bad in (0, -1, _random.BLOCK + 1):
        with pytest.raises(ValueError):
            token_bytes(bad)
    hexed = token_hex(12)
    assert len(hexed) == 24 and int(hexed, 16) >= 0 and hexed == hexed.lower()
    assert new_branch().startswith("z9hG4bK") and len(new_branch()) == 7 + 24
    assert len(new_tag()) == 12
    assert len({token_hex(6) for _ in range(10_000)}) == 10_000


def test_a_forked_child_never_hands_out_its_parents_bytes() -> None:
    token_bytes(1)  # the parent holds a block with bytes left
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next token and leave at once
        try:
            os.write(write_end, token_bytes(16))
        finally:
            os._exit(0)
    os.close(write_end)
    child = os.read(read_end, 16)
    os.close(read_end)
    os.waitpid(pid, 0)
    assert len(child) == 16 and child != token_bytes(16)


def test_threads_never_share_a_slice() -> None:
    seen: list[list[bytes]] = [[] for _ in range(4)]

    def draw(out: list[bytes]) -> None:
        for _ in range(5000):
            out.append(token_bytes(8))

    threads = [threading.Thread(target=draw, args=(out,)) for out in seen]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [t for out in seen for t in out]
    assert len(set(every)) == len(every) == 20_000
