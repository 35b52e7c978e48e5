"""The hashing thread of the downloader gives the same digests, in order, and stops cleanly."""

from __future__ import annotations

import hashlib
import os
import threading

from labstream.hashing import OFFLOAD_BYTES, HashPipe


def test_mixed_sizes_hash_in_order_across_files() -> None:
    pieces = [os.urandom(n) for n in (10, OFFLOAD_BYTES, 5, 3 * OFFLOAD_BYTES, 1, OFFLOAD_BYTES - 1)] * 10
    with HashPipe() as pipe:
        mine, other = hashlib.sha256(), hashlib.sha256()
        for piece in pieces:
            pipe.update(mine, piece)
            pipe.update(other, piece[::-1])
        pipe.wait()
        assert mine.digest() == hashlib.sha256(b"".join(pieces)).digest()
        assert other.digest() == hashlib.sha256(b"".join(p[::-1] for p in pieces)).digest()
        assert any(t.name.startswith("labstream-hash") for t in threading.enumerate())
    assert not any(t.name.startswith("labstream-hash") for t in threading.enumerate())


def test_small_chunks_alone_start_no_thread() -> None:
    before = threading.active_count()
    with HashPipe() as pipe:
        digest = hashlib.sha256()
        pipe.update(digest, b"x" * 100)
        assert threading.active_count() == before and digest.digest() == hashlib.sha256(b"x" * 100).digest()
