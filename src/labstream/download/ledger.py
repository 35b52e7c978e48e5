"""The download ledger: which file versions are already complete in the output folder.

With encryption, each row also keeps the file version's authenticated version time
(`version_ns`, docs/wire-format.md); the newest one held per path is what a replayed older
version is refused against.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

__all__ = ["Ledger"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    status TEXT NOT NULL, reason TEXT, finished_at REAL NOT NULL,
    version_ns INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (path, sha256, size)
)
"""
# A version keeps the newest version time it was ever recorded with (a processor's
# "processed" row carries none).
_UPSERT = """
INSERT INTO files (path, sha256, size, status, reason, finished_at, version_ns)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (path, sha256, size) DO UPDATE SET
    status = excluded.status, reason = excluded.reason, finished_at = excluded.finished_at,
    version_ns = max(version_ns, excluded.version_ns)
"""
# Versions that were written to the output folder ("held"): verified, or processed since.
_NEWEST = """
SELECT max(version_ns) FROM files
WHERE path = ? AND status IN ('verified', 'processed', 'process-failed')
"""


class Ledger:
    """SQLite table of finished files; safe to share between download threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute(_SCHEMA)
        _add_version_column(self._db)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(
        self, path: str, sha256: bytes, size: int, status: str, reason: str = "", version_ns: int = 0
    ) -> None:
        with self._lock:
            self._db.execute(_UPSERT, (path, sha256.hex(), size, status, reason, time.time(), version_ns))

    def record_many(self, rows: list[tuple[str, bytes, int, str, str, int]]) -> None:
        """Record several files (path, digest, size, status, reason, version time) in one
        transaction (one disk flush)."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                _UPSERT,
                [
                    (path, sha.hex(), size, status, reason, time.time(), version_ns)
                    for path, sha, size, status, reason, version_ns in rows
                ],
            )

    def newest_version(self, path: str) -> int:
        """The newest version time of any version of `path` written to the output (0: none)."""
        with self._lock:
            row = self._db.execute(_NEWEST, (path,)).fetchone()
        return int(row[0] or 0)

    def status(self, path: str, sha256: bytes, size: int) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT status FROM files WHERE path = ? AND sha256 = ? AND size = ?",
                (path, sha256.hex(), size),
            ).fetchone()
        return None if row is None else str(row[0])

    def with_status(self, status: str) -> list[tuple[str, bytes, int, str]]:
        """(path, digest, size, reason) of every file in `status`."""
        with self._lock:
            rows = self._db.execute(
                "SELECT path, sha256, size, reason FROM files WHERE status = ?", (status,)
            ).fetchall()
        return [(str(p), bytes.fromhex(d), int(n), str(r or "")) for p, d, n, r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _add_version_column(db: sqlite3.Connection) -> None:
    """Ledgers written before version times existed get the column (their versions: 0)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(files)")}
    if "version_ns" not in columns:
        try:
            db.execute("ALTER TABLE files ADD COLUMN version_ns INTEGER NOT NULL DEFAULT 0")
        except sqlite3.OperationalError as exc:  # another process migrated it just now
            if "duplicate column" not in str(exc):
                raise
