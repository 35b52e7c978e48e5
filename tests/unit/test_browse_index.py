"""The `ls` index: correct counts past its in-memory id cache, duplicates counted once."""

from __future__ import annotations

import hashlib

import pytest

from labstream.browse import index as index_module
from labstream.browse.index import FileIndex
from labstream.kafka import Record, TimedRecord
from labstream.wire import Chunk, encode


def timed(path: str, content: bytes, i: int, n: int, ms: int, chunk_size: int = 4) -> TimedRecord:
    sha = hashlib.sha256(content).digest()
    value = encode(
        Chunk(path, len(content), sha, i, n, chunk_size, content[i * chunk_size : (i + 1) * chunk_size])
    )
    return TimedRecord(Record("t", 0, ms, path.encode(), value), ms, False)


def test_counts_stay_right_when_file_ids_leave_the_memory_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "IDS_CACHED", 3)
    with FileIndex() as index:
        for ms, i in enumerate((0, 1)):  # two rounds, so each file is looked up after eviction
            for f in range(10):
                index.add(timed(f"f{f}.bin", b"12345678", i, 2, 100 * f + ms))
        index.add(timed("f0.bin", b"12345678", 0, 2, 5000))  # a duplicate chunk
        index.add(TimedRecord(Record("t", 0, 1, None, b"junk"), 1, False))
        entries = list(index.files())
    assert [e.path for e in entries] == [f"f{f}.bin" for f in range(10)]
    assert all((e.chunks_present, e.chunks_expected, e.complete) == (2, 2, True) for e in entries)
    assert (entries[0].first_ms, entries[0].last_ms, entries[0].payload_bytes) == (0, 5000, 8)
    assert (index.messages, index.unreadable) == (22, 1)


def test_two_sends_with_different_layouts_are_two_versions() -> None:
    with FileIndex() as index:
        index.add(timed("a", b"12345678", 0, 2, 1, chunk_size=4))
        index.add(timed("a", b"12345678", 0, 1, 2, chunk_size=8))
        entries = list(index.files())
    assert [(e.chunks_present, e.chunks_expected) for e in entries] == [(1, 2), (1, 1)]
