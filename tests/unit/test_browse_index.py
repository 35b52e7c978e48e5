"""The `ls` index: one row per send, correct counts past its in-memory id cache, duplicates counted once."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from labstream.browse import index as index_module
from labstream.browse.index import FileIndex
from labstream.kafka import Record, TimedRecord
from labstream.wire import Chunk, encode
from labstream.wire.v2 import aborted_trailer, live_data, live_mark, new_file_id

from .test_wire_v2 import v2_chunks_of


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


def v2_timed(chunk: Chunk, ms: int) -> TimedRecord:
    return TimedRecord(Record("t", 0, ms, chunk.path.encode(), encode(chunk)), ms, False)


def test_a_v2_send_is_one_row_with_the_last_chunks_digest_and_a_trailer_aborts_it() -> None:
    content = b"0123456789"
    sent, changed = v2_chunks_of("a", content, 4), v2_chunks_of("a", content, 4)
    trailer = aborted_trailer("a", len(content), 4, changed[0].file_id, 1)
    with FileIndex() as index:
        for ms, chunk in enumerate([sent[0], changed[0], sent[1], trailer, sent[2], sent[2]]):
            index.add(v2_timed(chunk, ms))
        entries = list(index.files())
    digest = hashlib.sha256(content).hexdigest()
    assert [(e.file_id, e.state, e.chunks_present, e.digest) for e in entries] == [
        (sent[0].file_id.hex(), "complete", 3, digest),
        (changed[0].file_id.hex(), "aborted", 1, ""),  # the trailer is not its chunk 0
    ]
    assert entries[0].as_dict()["sha256"] == digest and entries[1].as_dict()["sha256"] is None
    assert (entries[0].size, entries[0].payload_bytes, entries[0].wire) == (10, 10, "labstream")


def test_a_v2_send_without_its_last_chunk_is_partial() -> None:
    chunks = v2_chunks_of("a", b"0123456789", 4)
    with FileIndex() as index:
        for ms, chunk in enumerate(chunks[:2]):
            index.add(v2_timed(chunk, ms))
        (entry,) = index.files()
    assert (entry.state, entry.complete, entry.digest, entry.chunks_expected) == ("partial", False, "", 3)


def test_sends_from_two_sources_are_two_rows_each_naming_its_source() -> None:
    with FileIndex() as index:
        for ms, source in enumerate(("pc-a", "pc-b")):  # the same bytes from two instruments
            (chunk,) = v2_chunks_of("same.bin", b"1234", 4)
            index.add(v2_timed(dataclasses.replace(chunk, source=source), ms))
        entries = list(index.files())
    assert [(e.source, e.complete) for e in entries] == [("pc-a", True), ("pc-b", True)]
    assert entries[1].as_dict()["source"] == "pc-b"


def test_a_live_send_is_live_with_the_bytes_marked_so_far_then_complete_with_its_digest() -> None:
    fid, data = new_file_id(), b"0123456789" * 30
    messages = [
        live_data("run/shots.log", 0, data[:100], 0, 256, fid, 1, "pc-1"),
        live_mark("run/shots.log", 100, hashlib.sha256(data[:100]).digest(), 1, 256, fid, 1, "pc-1"),
        live_data("run/shots.log", 100, data[100:], 2, 256, fid, 1, "pc-1"),  # not yet marked
    ]
    with FileIndex() as index:
        for i, chunk in enumerate(messages):
            index.add(v2_timed(chunk, 1000 + i))
        (growing,) = list(index.files())
        assert (growing.state, growing.size, growing.digest, growing.complete) == ("live", 100, "", False)
        assert growing.as_dict()["live"] is True
        end = live_mark("run/shots.log", 300, hashlib.sha256(data).digest(), 3, 256, fid, 1, "pc-1", end=True)
        index.add(v2_timed(end, 2000))
        (closed,) = list(index.files())
    assert (closed.state, closed.size, closed.digest) == ("complete", 300, hashlib.sha256(data).hexdigest())
    assert (closed.source, closed.file_id, closed.payload_bytes) == ("pc-1", fid.hex(), 300)
