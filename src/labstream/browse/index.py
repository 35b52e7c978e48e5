"""Which sends of which files a topic holds, from the chunk headers alone (no key needed).

A wire-v2 send is (path, file id, size): its chunks carry a random file id and only the
last one the SHA-256, so a send is grouped by its id and learns its digest from its last
chunk; an aborted trailer marks the send aborted. A v1 or openmsistream chunk carries the
file's digest instead, so their rows are file versions (path, digest, size): sends of the
same bytes share a row. See docs/wire-format.md, "What `labstream ls` lists".
"""

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
from labstream.kafka.settings import LibrdkafkaConfig
from labstream.wire import Chunk, decode

__all__ = ["FileEntry", "FileIndex", "list_topic"]

# ident: the file id of a wire-v2 send, else the file digest the chunks carry. digest: the
# file's digest once known (a v2 send's last chunk brings it), else NULL.
_SCHEMA = """
CREATE TABLE files (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL, ident BLOB NOT NULL, size INTEGER NOT NULL,
    n_chunks INTEGER NOT NULL, source TEXT NOT NULL, wire TEXT NOT NULL, hash_name TEXT NOT NULL,
    encrypted INTEGER NOT NULL, digest BLOB, aborted INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0, first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL,
    UNIQUE (path, ident, size, n_chunks, source)
);
CREATE TABLE chunks (file INTEGER NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (file, idx))
    WITHOUT ROWID;
"""
_LISTING = """
SELECT path, ident, size, n_chunks, source, wire, hash_name, encrypted, digest, aborted, bytes,
       first_ms, last_ms, (SELECT count(*) FROM chunks WHERE file = files.id)
FROM files ORDER BY path, first_ms
"""
IDS_CACHED = 4096  # file ids kept in memory; the rest are looked up in SQLite
COMMIT_EVERY = 5000
SendKey = tuple[str, bytes, int, int, str]


@dataclass(frozen=True)
class FileEntry:
    """One send of one file as the topic holds it (wire v1 and openmsistream: one version,
    since their chunks name the file by its digest, not by the send)."""

    path: str
    size: int  # -1: not announced (openmsistream chunks)
    digest: str  # hex; "" while a wire-v2 send's last chunk is missing
    hash_name: str
    chunks_present: int
    chunks_expected: int
    payload_bytes: int  # bytes of distinct chunks present (sealed size if encrypted)
    first_ms: int
    last_ms: int
    encrypted: bool
    file_id: str = ""  # hex, wire v2 only
    source: str = ""  # the sending instrument's name; "" when the chunks carry none
    wire: str = "labstream-v1"  # the --wire name of the format: labstream, labstream-v1, openmsistream
    aborted: bool = False  # the sender sent an aborted trailer: this send never completes

    @property
    def complete(self) -> bool:
        """Every chunk is in the topic, the last one (with the digest) included."""
        return not self.aborted and bool(self.digest) and self.chunks_present >= self.chunks_expected

    @property
    def state(self) -> str:
        return "aborted" if self.aborted else "complete" if self.complete else "partial"

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "source": self.source,
            "file_id": self.file_id or None,
            "size": self.size if self.size >= 0 else None,
            self.hash_name: self.digest or None,
            "chunks_present": self.chunks_present,
            "chunks_expected": self.chunks_expected,
            "first_time_ms": self.first_ms,
            "last_time_ms": self.last_ms,
            "state": self.state,
            "complete": self.complete,
            "aborted": self.aborted,
            "encrypted": self.encrypted,
            "wire": self.wire,
        }


def _wire_name(chunk: Chunk) -> str:
    if chunk.hash_name == "sha512":
        return "openmsistream"
    return "labstream" if chunk.wire_version == 2 else "labstream-v1"


class FileIndex:
    """Chunk headers in, sends out; a temporary SQLite file holds the state."""

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="labstream-ls-")
        self._db = sqlite3.connect(Path(self._folder.name) / "index.sqlite")
        self._db.executescript(_SCHEMA)
        self._ids: OrderedDict[SendKey, int] = OrderedDict()
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
        row = self._row_id(chunk, timed.timestamp_ms)
        added = 0
        if chunk.aborted:  # a trailer, not chunk 0: it marks the send, it brings no bytes
            self._db.execute("UPDATE files SET aborted = 1 WHERE id = ?", (row,))
        else:
            added = self._db.execute(
                "INSERT OR IGNORE INTO chunks VALUES (?, ?)", (row, chunk.index)
            ).rowcount
        if (
            chunk.wire_version == 2 and chunk.file_digest
        ):  # the last chunk brings the digest; a copy cannot change it
            self._db.execute(
                "UPDATE files SET digest = ? WHERE id = ? AND digest IS NULL", (chunk.file_digest, row)
            )
        self._db.execute(
            "UPDATE files SET bytes = bytes + ?, first_ms = min(first_ms, ?), last_ms = max(last_ms, ?) "
            "WHERE id = ?",
            (len(chunk.data) if added else 0, timed.timestamp_ms, timed.timestamp_ms, row),
        )
        self._pending += 1
        if self._pending >= COMMIT_EVERY:
            self._db.commit()
            self._pending = 0

    def _row_id(self, chunk: Chunk, ms: int) -> int:
        # getattr: wire revisions without a source name (and openmsistream) have none.
        path, ident, size = chunk.key
        key = (path, ident, size, chunk.n_chunks, str(getattr(chunk, "source", "") or ""))
        cached = self._ids.get(key)
        if cached is not None:
            self._ids.move_to_end(key)
            return cached
        row = self._db.execute(
            "SELECT id FROM files WHERE path = ? AND ident = ? AND size = ? AND n_chunks = ? AND source = ?",
            key,
        ).fetchone()
        if row is None:
            cursor = self._db.execute(
                "INSERT INTO files (path, ident, size, n_chunks, source, wire, hash_name, encrypted, "
                "digest, first_ms, last_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    *key,
                    _wire_name(chunk),
                    chunk.hash_name,
                    int(chunk.encrypted),
                    None if chunk.wire_version == 2 else ident,
                    ms,
                    ms,
                ),
            )
            row = (cursor.lastrowid,)
        self._ids[key] = int(row[0])
        if len(self._ids) > IDS_CACHED:
            self._ids.popitem(last=False)
        return int(row[0])

    def files(self) -> Iterator[FileEntry]:
        """Every send, by path then first time; streamed from disk."""
        self._db.commit()
        for (
            path,
            ident,
            size,
            n_chunks,
            source,
            wire,
            hash_name,
            encrypted,
            digest,
            aborted,
            nbytes,
            first,
            last,
            present,
        ) in self._db.execute(_LISTING):
            yield FileEntry(
                path,
                size,
                bytes(digest).hex() if digest is not None else "",
                hash_name,
                present,
                n_chunks,
                nbytes,
                first,
                last,
                bool(encrypted),
                file_id=bytes(ident).hex() if wire == "labstream" else "",
                source=source,
                wire=wire,
                aborted=bool(aborted),
            )

    def close(self) -> None:
        self._db.close()
        self._folder.cleanup()


def list_topic(
    librdkafka: LibrdkafkaConfig,
    topic: str,
    *,
    since_ms: int | None = None,
    stop: threading.Event | None = None,
) -> FileIndex:
    """Read `topic` once (from `since_ms`) into a `FileIndex`; the caller closes it."""
    index = FileIndex()
    try:
        feed(index, read_topic(librdkafka, topic, since_ms=since_ms, stop=stop))
    except BaseException:
        index.close()
        raise
    return index


def feed(index: FileIndex, records: Iterable[TimedRecord]) -> None:
    for timed in records:
        index.add(timed)
