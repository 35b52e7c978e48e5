"""The download ledger: which file versions are already complete in the output folder.

With encryption, each row also keeps the file version's authenticated version time
(`version_ns`, docs/wire-format.md); the newest one held per (source, path) is what a
replayed older version is refused against. Each row names the hash algorithm of its digest
(`hash_name`), the instrument that sent it (`source`) and, when it was stored under another
name than it was sent with, that name (`sent_path`; `path` is where it is).

`owners` says which source each stored path belongs to: a file of one source never replaces
another source's (labstream.download.owners).
"""

from __future__ import annotations

import enum
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

from labstream.ledgerdb import add_column, connect, translated

__all__ = ["DONE_STATUSES", "FileState", "Ledger", "LedgerEntry"]


class FileState(str, enum.Enum):
    """What happened to one file version (path, digest, size)."""

    VERIFIED = "verified"  # written to the output folder, digest checked
    FAILED = "failed"  # verification failed or given up: kept in .labstream/failed/
    PROCESSED = "processed"  # a processor returned (the file is then removed)
    PROCESS_FAILED = "process-failed"  # the processor failed for good: in failed-processing/

    def __str__(self) -> str:
        return self.value


# A processor is done with these: a new copy of the same version is a duplicate.
DONE_STATUSES = (FileState.PROCESSED, FileState.PROCESS_FAILED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    status TEXT NOT NULL, reason TEXT, finished_at REAL NOT NULL,
    version_ns INTEGER NOT NULL DEFAULT 0, hash_name TEXT NOT NULL DEFAULT 'sha256',
    PRIMARY KEY (path, sha256, size)
)
"""
# A version keeps the newest version time it was ever recorded with (a processor's
# "processed" row carries none).
_UPSERT = """
INSERT INTO files (
    path, sha256, size, status, reason, finished_at, version_ns, hash_name, source, sent_path
)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (path, sha256, size) DO UPDATE SET
    status = excluded.status, reason = excluded.reason, finished_at = excluded.finished_at,
    version_ns = max(version_ns, excluded.version_ns), hash_name = excluded.hash_name,
    source = excluded.source, sent_path = excluded.sent_path
"""
# Versions that were written to the output folder ("held"): verified, or processed since.
_NEWEST = """
SELECT max(v) FROM (
    SELECT version_ns AS v FROM files WHERE path = ? AND +sent_path = '' AND source = ?
    AND status IN ('verified', 'processed', 'process-failed')
    UNION ALL
    SELECT version_ns FROM files WHERE sent_path = ? AND source = ?
    AND status IN ('verified', 'processed', 'process-failed')
)
"""
# Looked up per chunk (version times) and per file (copies): by index, never by a scan.
_INDEXES = """
CREATE INDEX IF NOT EXISTS files_sent_path ON files (sent_path);
CREATE INDEX IF NOT EXISTS files_digest ON files (sha256, size);
"""
_OWNERS = """
CREATE TABLE IF NOT EXISTS owners (
    stored TEXT PRIMARY KEY, source TEXT NOT NULL, sent_path TEXT NOT NULL
)
"""
# Live sends (docs/wire-format.md, "Live files"): how much of each is verified and where it
# is stored, so a restarted downloader continues the send where its offsets resume.
_LIVE = """
CREATE TABLE IF NOT EXISTS live (
    sent_path TEXT NOT NULL, source TEXT NOT NULL, file_id TEXT NOT NULL, stored TEXT NOT NULL,
    verified INTEGER NOT NULL, sha256 TEXT NOT NULL, version_ns INTEGER NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (sent_path, source, file_id)
)
"""
# Rows of ledgers older than the hash_name column: the only digests then were SHA-256
# (32 bytes) and SHA-512 (64), told apart by length once, here.
_OLD_HASHES = "UPDATE files SET hash_name = 'sha512' WHERE length(sha256) = 128"


class LedgerEntry(NamedTuple):
    """One file version as the ledger holds it."""

    path: str
    digest: bytes
    size: int
    reason: str
    hash_name: str


class Ledger:
    """SQLite table of finished files; safe to share between download threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._writes = 0  # bumped by every write of files or owners: prefetched look-ups are stale
        self._hints = threading.local()  # per consumer thread: its batch's prefetched look-ups
        self._db = connect(path)
        with translated(path):
            self._db.execute(_SCHEMA)
            add_column(self._db, "files", "version_ns", "INTEGER NOT NULL DEFAULT 0")
            if add_column(self._db, "files", "hash_name", "TEXT NOT NULL DEFAULT 'sha256'"):
                self._db.execute(_OLD_HASHES)
            add_column(self._db, "files", "source", "TEXT NOT NULL DEFAULT ''")
            add_column(self._db, "files", "sent_path", "TEXT NOT NULL DEFAULT ''")
            self._db.execute(_OWNERS)
            self._db.execute(_LIVE)
            self._db.executescript(_INDEXES)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(
        self,
        path: str,
        sha256: bytes,
        size: int,
        status: FileState | str,
        reason: str = "",
        version_ns: int = 0,
        hash_name: str = "sha256",
        source: str = "",
        sent_path: str = "",
    ) -> None:
        """`path` is where the file is stored; `sent_path` the path it was sent as, when
        that differs."""
        row = (
            path,
            sha256.hex(),
            size,
            str(FileState(status)),
            reason,
            time.time(),
            version_ns,
            hash_name,
            source,
            sent_path if sent_path != path else "",
        )
        with self._lock, translated(self.path):
            self._writes += 1
            self._db.execute(_UPSERT, row)

    def record_many(self, rows: list[tuple[Any, ...]]) -> None:
        """Record several files (stored path, digest, size, status, reason, version time,
        hash name[, source, sent path]) in one transaction (one disk flush)."""
        now = time.time()
        values = [
            (path, sha.hex(), size, str(FileState(status)), reason, now, v_ns, hash_name, source, sent)
            for path, sha, size, status, reason, v_ns, hash_name, source, sent in (
                (*row, "", "")[:9] for row in rows
            )
        ]
        with self._lock, translated(self.path), self._db:
            self._writes += 1
            self._db.execute("BEGIN")
            self._db.executemany(_UPSERT, values)

    def newest_version(self, path: str, source: str = "") -> int:
        """The newest version time of any version of `path` from `source` written to the
        output (0: none)."""
        with self._lock, translated(self.path):
            row = self._db.execute(_NEWEST, (path, source, path, source)).fetchone()
        return int(row[0] or 0)

    def copies(self, sent_path: str, sha256: bytes, size: int) -> list[tuple[str, FileState]]:
        """(stored path, status) of every row of these exact bytes sent as `sent_path`, by
        any source."""
        hinted = self._hinted("copies", (sent_path, sha256, size))
        if hinted is not _UNKNOWN:
            return hinted  # type: ignore[return-value]
        with self._lock, translated(self.path):
            rows = self._db.execute(
                "SELECT path, status FROM files"
                " WHERE sha256 = ? AND size = ? AND (path = ? OR sent_path = ?)",
                (sha256.hex(), size, sent_path, sent_path),
            ).fetchall()
        return [(str(path), FileState(status)) for path, status in rows]

    def owner(self, stored: str) -> tuple[str, str] | None:
        """(source, path it was sent as) of the files stored at `stored`; None: unclaimed."""
        hinted = self._hinted("owners", stored)
        if hinted is not _UNKNOWN:
            return hinted  # type: ignore[return-value]
        with self._lock, translated(self.path):
            row = self._db.execute(
                "SELECT source, sent_path FROM owners WHERE stored = ?", (stored,)
            ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def prefetch(self, stored: list[str], copies: list[tuple[str, bytes, int]]) -> None:
        """Look up, in one query each, the owners of the names in `stored` and the copies
        (`copies`: sent path, digest, size) a consumer batch will ask for, instead of one
        query per file. The answers serve this thread's `owner` and `copies` calls until the
        next prefetch, and only while the ledger is not written meanwhile (any write, by any
        thread, makes them stale: those calls then query as before)."""
        names = list(set(stored))
        owners: dict[object, object] = dict.fromkeys(names)
        found: dict[object, object] = {key: [] for key in copies}
        self._hints.tables = None
        if not names and not copies:
            return
        with self._lock, translated(self.path):
            generation = self._writes
            for part in _parts(names):
                marks = ", ".join("?" * len(part))
                sql = f"SELECT stored, source, sent_path FROM owners WHERE stored IN ({marks})"
                for name, source, sent in self._db.execute(sql, part):
                    owners[str(name)] = (str(source), str(sent))
            digests = list({sha.hex() for _, sha, _ in copies})
            for part in _parts(digests):
                marks = ", ".join("?" * len(part))
                sql = f"SELECT path, sent_path, sha256, size, status FROM files WHERE sha256 IN ({marks})"
                rows = self._db.execute(sql, part).fetchall()
                _add_copies(found, rows)
        self._hints.tables = {"owners": owners, "copies": found}
        self._hints.generation = generation

    def _hinted(self, table: str, key: object) -> object:
        """The prefetched answer for `key`, or _UNKNOWN (none, or stale)."""
        tables = getattr(self._hints, "tables", None)
        if tables is None or self._hints.generation != self._writes:
            return _UNKNOWN
        return tables[table].get(key, _UNKNOWN)

    def claim_many(self, claims: list[tuple[str, str, str]]) -> None:
        """Record (stored path, source, sent path) claims; an existing claim is kept."""
        with self._lock, translated(self.path), self._db:
            self._writes += 1
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR IGNORE INTO owners VALUES (?, ?, ?)", claims)

    def status(self, path: str, sha256: bytes, size: int) -> FileState | None:
        with self._lock, translated(self.path):
            row = self._db.execute(
                "SELECT status FROM files WHERE path = ? AND sha256 = ? AND size = ?",
                (path, sha256.hex(), size),
            ).fetchone()
        return None if row is None else FileState(row[0])

    def with_status(self, status: FileState) -> list[LedgerEntry]:
        """Every file version in `status`."""
        with self._lock, translated(self.path):
            rows = self._db.execute(
                "SELECT path, sha256, size, reason, hash_name FROM files WHERE status = ?", (str(status),)
            ).fetchall()
        return [LedgerEntry(str(p), bytes.fromhex(d), int(n), str(r or ""), str(h)) for p, d, n, r, h in rows]

    def live(self, sent_path: str, source: str, file_id: bytes) -> tuple[str, int] | None:
        """(stored path, bytes verified) of a live send in progress; None: not one here."""
        with self._lock, translated(self.path):
            row = self._db.execute(
                "SELECT stored, verified FROM live WHERE sent_path = ? AND source = ? AND file_id = ?",
                (sent_path, source, file_id.hex()),
            ).fetchone()
        return None if row is None else (str(row[0]), int(row[1]))

    def set_live(
        self,
        sent_path: str,
        source: str,
        file_id: bytes,
        stored: str,
        verified: int,
        sha256: bytes,
        version_ns: int,
    ) -> None:
        """A live send's verified prefix grew to `verified` bytes (digest `sha256`)."""
        row = (sent_path, source, file_id.hex(), stored, verified, sha256.hex(), version_ns, time.time())
        with self._lock, translated(self.path), self._db:
            self._db.execute("INSERT OR REPLACE INTO live VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)

    def end_live(self, sent_path: str, source: str, file_id: bytes) -> None:
        """The live send is closed (an ordinary verified file now) or failed."""
        with self._lock, translated(self.path), self._db:
            self._db.execute(
                "DELETE FROM live WHERE sent_path = ? AND source = ? AND file_id = ?",
                (sent_path, source, file_id.hex()),
            )

    def live_sends(self) -> list[tuple[str, str, int]]:
        """(stored path, source, bytes verified) of every live send in progress."""
        with self._lock, translated(self.path):
            rows = self._db.execute("SELECT stored, source, verified FROM live").fetchall()
        return [(str(a), str(b), int(c)) for a, b, c in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


_UNKNOWN = object()
_PART = 500  # values per IN (...) list: well below SQLite's limit on parameters


def _parts(values: list[str]) -> list[list[str]]:
    return [values[i : i + _PART] for i in range(0, len(values), _PART)]


def _add_copies(found: dict[object, object], rows: list[tuple[Any, ...]]) -> None:
    """File rows (path, sent path, digest hex, size, status) into the `copies` answers of
    the keys (sent path, digest, size) they match: same bytes, stored or sent as that path."""
    for path, sent, digest, size, status in rows:
        row = (str(path), FileState(status))
        sha = bytes.fromhex(digest)
        for name in {str(path), str(sent)} - {""}:
            answer = found.get((name, sha, int(size)))
            if isinstance(answer, list):
                answer.append(row)
