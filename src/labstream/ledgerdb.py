"""The SQLite both ledgers use: WAL, a busy timeout, and errors translated into the tree.

A full disk (or quota) during a ledger write becomes the retriable `OutputError` that the
downloader already waits on; a ledger that cannot be opened or written for any other
reason becomes a `LedgerError` (one clear line), never a traceback.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from labstream.errors import LedgerError, OutputError

__all__ = ["add_column", "connect", "translated"]

BUSY_TIMEOUT_MS = 10_000
# SQLite result codes (primary): the disk or quota is full, or an I/O error from the OS.
_FULL = ("SQLITE_FULL", "SQLITE_IOERR")


def connect(path: Path, *, synchronous: str | None = None) -> sqlite3.Connection:
    """An autocommit connection shared by threads (callers serialise it with a lock)."""
    with translated(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        if synchronous is not None:
            db.execute(f"PRAGMA synchronous={synchronous}")
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        return db


def add_column(db: sqlite3.Connection, table: str, column: str, declaration: str) -> bool:
    """Add `column` to a ledger written by an older version; True if it was added now."""
    columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
    if column in columns:
        return False
    try:
        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
    except sqlite3.OperationalError as exc:  # another process migrated it just now
        if "duplicate column" not in str(exc):
            raise
        return False
    return True


@contextmanager
def translated(path: Path) -> Iterator[None]:
    """`sqlite3.Error` (and OSError creating the folder) -> the labstream error tree."""
    try:
        yield
    except sqlite3.Error as exc:
        name = getattr(exc, "sqlite_errorname", "") or ""
        message = f"ledger {path}: {exc}"
        if name.startswith(_FULL) or "disk is full" in str(exc):
            raise OutputError(message) from exc
        raise LedgerError(message) from exc
    except OSError as exc:
        raise LedgerError(f"ledger {path}: {exc.strerror or exc}") from exc
