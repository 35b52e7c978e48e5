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
from labstream.wire.chunk import LIVE_DATA, LIVE_END, LIVE_MARK

__all__ = ["FileEntry", "FileIndex", "list_topic"]

# ident: the file id of a wire-v2 send, else the file digest the chunks carry. digest: the
# file's digest once known (a v2 send's last chunk brings it), else NULL. A live send
# (docs/wire-format.md, "Live files"): live 1 while open, 2 once its closing mark is in the
# topic; marked: the length of the longest prefix a mark in the topic gives the hash of.
_SCHEMA = """
CREATE TABLE files (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL, ident BLOB NOT NULL, size INTEGER NOT NULL,
    n_chunks INTEGER NOT NULL, source TEXT NOT NULL, wire TEXT NOT NULL, hash_name TEXT NOT NULL,
    encrypted INTEGER NOT NULL, digest BLOB, aborted INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0, first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL,
    live INTEGER NOT NULL DEFAULT 0, marked INTEGER NOT NULL DEFAULT 0,
    UNIQUE (path, ident, size, n_chunks, source)
);
CREATE TABLE chunks (file INTEGER NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (file, idx))
    WITHOUT ROWID;
"""
_LISTING = """
SELECT path, ident, size, n_chunks, source, wire, hash_name, encrypted, digest, aborted, bytes,
       first_ms, last_ms, (SELECT count(*) FROM chunks WHERE file = files.id), live, marked
FROM files ORDER BY path, first_ms
"""
IDS_CACHED = 4096  # file ids kept in memory; the rest are looked up in SQLite
COMMIT_EVERY = 5000
LIVE_OPEN, LIVE_CLOSED = 1, 2  # the `live` column
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
    live: int = 0  # a live send: 1 still growing, 2 closed (its `size`: the bytes marked so far)

    @property
    def complete(self) -> bool:
        """Every chunk is in the topic, the last one (with the digest) included; a live send:
        its closing mark is."""
        if self.live:
            return not self.aborted and self.live == LIVE_CLOSED
        return not self.aborted and bool(self.digest) and self.chunks_present >= self.chunks_expected

    @property
    def state(self) -> str:
        if self.aborted:
            return "aborted"
        return "complete" if self.complete else "live" if self.live else "partial"

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
            "live": bool(self.live),
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
        elif chunk.live in (LIVE_MARK, LIVE_END):
            self._live_mark(row, chunk)
        else:
            added = self._db.execute(
                "INSERT OR IGNORE INTO chunks VALUES (?, ?)", (row, chunk.index)
            ).rowcount
        if chunk.live == LIVE_DATA:
            self._db.execute("UPDATE files SET live = max(live, ?) WHERE id = ?", (LIVE_OPEN, row))
        elif (
            chunk.wire_version == 2 and chunk.file_digest and not chunk.live
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

    def _live_mark(self, row: int, chunk: Chunk) -> None:
        """A mark of a live send: the prefix it hashes is in the topic; a closing mark also
        brings the whole file's digest (the first one read: a copy cannot change it)."""
        if chunk.live == LIVE_END:
            self._db.execute(
                "UPDATE files SET live = ?, marked = ?, digest = coalesce(digest, ?) WHERE id = ?",
                (LIVE_CLOSED, chunk.offset, chunk.file_digest, row),
            )
        else:
            self._db.execute(
                "UPDATE files SET live = max(live, ?), marked = max(marked, ?) WHERE id = ?",
                (LIVE_OPEN, chunk.offset, row),
            )

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
            live,
            marked,
        ) in self._db.execute(_LISTING):
            yield FileEntry(
                path,
                marked if live else size,
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
                live=live,
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
