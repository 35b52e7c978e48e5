"""Which file versions a topic holds, from the chunk headers alone (no key needed)."""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labstream.errors import WireError
from labstream.kafka import TimedRecord, read_topic
from labstream.wire import decode

__all__ = ["FileEntry", "FileIndex", "list_topic"]

_SCHEMA = """
CREATE TABLE files (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL, digest BLOB NOT NULL, size INTEGER NOT NULL,
    n_chunks INTEGER NOT NULL, hash_name TEXT NOT NULL, encrypted INTEGER NOT NULL,
    bytes INTEGER NOT NULL DEFAULT 0, first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL,
    UNIQUE (path, digest, size, n_chunks)
);
CREATE TABLE chunks (file INTEGER NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (file, idx))
    WITHOUT ROWID;
"""
_LISTING = """
SELECT path, digest, size, n_chunks, hash_name, encrypted, bytes, first_ms, last_ms,
       (SELECT count(*) FROM chunks WHERE file = files.id)
FROM files ORDER BY path, first_ms
"""
IDS_CACHED = 4096  # file ids kept in memory; the rest are looked up in SQLite
COMMIT_EVERY = 5000


@dataclass(frozen=True)
class FileEntry:
    """One version of one file as the topic holds it."""

    path: str
    size: int  # -1: not announced (openmsistream chunks)
    digest: str  # hex
    hash_name: str
    chunks_present: int
    chunks_expected: int
    payload_bytes: int  # bytes of distinct chunks present (sealed size if encrypted)
    first_ms: int
    last_ms: int
    encrypted: bool

    @property
    def complete(self) -> bool:
        return self.chunks_present >= self.chunks_expected

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size if self.size >= 0 else None,
            self.hash_name: self.digest,
            "chunks_present": self.chunks_present,
            "chunks_expected": self.chunks_expected,
            "first_time_ms": self.first_ms,
            "last_time_ms": self.last_ms,
            "complete": self.complete,
            "encrypted": self.encrypted,
        }


class FileIndex:
    """Chunk headers in, file versions out; a temporary SQLite file holds the state."""

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="labstream-ls-")
        self._db = sqlite3.connect(Path(self._folder.name) / "index.sqlite")
        self._db.executescript(_SCHEMA)
        self._ids: OrderedDict[tuple[str, bytes, int, int], int] = OrderedDict()
        self._pending = 0
        self.messages = 0
        self.unreadable = 0

    def __enter__(self) -> FileIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, timed: TimedRecord) -> None:
        self.messages += 1
        try:
            chunk = decode(timed.record.value)
        except WireError:  # foreign, corrupt, or a format this labstream cannot read
            self.unreadable += 1
            return
        key = (chunk.path, chunk.file_digest, chunk.file_size, chunk.n_chunks)
        file_id = self._file_id(key, chunk.hash_name, chunk.encrypted, timed.timestamp_ms)
        added = self._db.execute(
            "INSERT OR IGNORE INTO chunks VALUES (?, ?)", (file_id, chunk.index)
        ).rowcount
        self._db.execute(
            "UPDATE files SET bytes = bytes + ?, first_ms = min(first_ms, ?), last_ms = max(last_ms, ?) "
            "WHERE id = ?",
            (len(chunk.data) if added else 0, timed.timestamp_ms, timed.timestamp_ms, file_id),
        )
        self._pending += 1
        if self._pending >= COMMIT_EVERY:
            self._db.commit()
            self._pending = 0

    def _file_id(self, key: tuple[str, bytes, int, int], hash_name: str, encrypted: bool, ms: int) -> int:
        cached = self._ids.get(key)
        if cached is not None:
            self._ids.move_to_end(key)
            return cached
        row = self._db.execute(
            "SELECT id FROM files WHERE path = ? AND digest = ? AND size = ? AND n_chunks = ?", key
        ).fetchone()
        if row is None:
            cursor = self._db.execute(
                "INSERT INTO files (path, digest, size, n_chunks, hash_name, encrypted, first_ms, last_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (*key, hash_name, int(encrypted), ms, ms),
            )
            row = (cursor.lastrowid,)
        self._ids[key] = int(row[0])
        if len(self._ids) > IDS_CACHED:
            self._ids.popitem(last=False)
        return int(row[0])

    def files(self) -> Iterator[FileEntry]:
        """Every file version, by path then first time; streamed from disk."""
        self._db.commit()
        for (
            path,
            digest,
            size,
            n_chunks,
            hash_name,
            encrypted,
            nbytes,
            first,
            last,
            present,
        ) in self._db.execute(_LISTING):
            yield FileEntry(
                path,
                size,
                bytes(digest).hex(),
                hash_name,
                present,
                n_chunks,
                nbytes,
                first,
                last,
                bool(encrypted),
            )

    def close(self) -> None:
        self._db.close()
        self._folder.cleanup()


def list_topic(
    settings: dict[str, Any],
    topic: str,
    *,
    since_ms: int | None = None,
    stop: threading.Event | None = None,
) -> FileIndex:
    """Read `topic` once (from `since_ms`) into a `FileIndex`; the caller closes it."""
    index = FileIndex()
    try:
        feed(index, read_topic(settings, topic, since_ms=since_ms, stop=stop))
    except BaseException:
        index.close()
        raise
    return index


def feed(index: FileIndex, records: Iterable[TimedRecord]) -> None:
    for timed in records:
        index.add(timed)
