"""The download ledger: which file versions are already complete in the output folder."""

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
    PRIMARY KEY (path, sha256, size)
)
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

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(self, path: str, sha256: bytes, size: int, status: str, reason: str = "") -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)",
                (path, sha256.hex(), size, status, reason, time.time()),
            )

    def record_many(self, rows: list[tuple[str, bytes, int, str, str]]) -> None:
        """Record several files in one transaction (one disk flush)."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (path, sha.hex(), size, status, reason, time.time())
                    for path, sha, size, status, reason in rows
                ],
            )

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
