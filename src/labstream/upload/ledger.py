"""The upload ledger: every file the watcher has seen, and how far it got. SQLite, durable.

A file is identified by its relative path, size and mtime, with its ctime kept beside them
(labstream.upload.changes); the SHA-256 is added once it is hashed. Status moves
ignored|seen -> queued -> sending -> sent, or -> failed (with `retry_at`); a path that is
not sent by design (labstream.fileaccess) is `skipped`, its reason kept. After a crash, rows
left `queued` or `sending` are sent again; `sent` rows with the same size, mtime and content
are never sent again. While a row is queued or sending it may hold the checkpoint of its send
(the `resume_*` columns, labstream.upload.resume), so that it continues instead of
starting over; any other status clears it.

Every acknowledged wire-v2 send is kept in `sends` (path, file id, digest): a receipt counts
for this watcher only if it names one of its own sends (docs/wire-format.md, "Receipts").
Receipts are stored as they come, also before the send they name is recorded, and are
matched when it is (so no ordering loses a verdict or a clean-up).
"""

from __future__ import annotations

import enum
import hashlib
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from labstream.ledgerdb import add_column, connect, translated
from labstream.outcomes import ReceiptOutcome
from labstream.upload.resume import Checkpoint, LivePoint

if TYPE_CHECKING:
    from labstream.receipts import Receipt

__all__ = [
    "CLEANED",
    "LedgerRow",
    "LiveProgress",
    "UploadLedger",
    "UploadState",
    "default_state_dir",
    "state_digest",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    relpath TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    sha256 TEXT, status TEXT NOT NULL, reason TEXT, updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS files_updated ON files (updated_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sends (
    relpath TEXT NOT NULL, file_id TEXT NOT NULL, sha256 TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (relpath, file_id)
);
CREATE TABLE IF NOT EXISTS live (
    relpath TEXT PRIMARY KEY, file_id BLOB NOT NULL, version_ns INTEGER NOT NULL,
    chunk_size INTEGER NOT NULL, sent INTEGER NOT NULL, sha256 TEXT NOT NULL, seq INTEGER NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS live_receipts (
    relpath TEXT NOT NULL, file_id TEXT NOT NULL, grp TEXT NOT NULL, authenticated INTEGER NOT NULL,
    size INTEGER NOT NULL, sha256 TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (relpath, file_id, grp, authenticated)
);
"""
_BASE = "relpath, size, mtime_ns, sha256, status, reason, updated_at"
# Added to ledgers of older versions on open (their rows have NULL: compared by size and mtime
# only until the watcher next looks at them). ctime_ns: the file's ctime when it was looked at
# or sent, so that a rewrite with the mtime put back or a fixed permission is seen;
# retry_at: time.time() when a `failed` file is tried again even if unchanged.
_CHANGE = (("ctime_ns", "INTEGER"), ("retry_at", "REAL"))
_ROW = f"{_BASE}, ctime_ns, retry_at"
# The checkpoint of a send in progress (added to ledgers of older versions on open), in the
# order of `Checkpoint`'s fields.
_RESUME = (
    ("resume_file_id", "BLOB"),  # the send's random file id (wire v2)
    ("resume_wire", "TEXT"),  # wire format name
    ("resume_chunk_size", "INTEGER"),
    ("resume_acked", "INTEGER"),  # chunks acknowledged from the first without a gap
    ("resume_size", "INTEGER"),  # the file as it was read: size, mtime_ns, ctime_ns
    ("resume_mtime_ns", "INTEGER"),
    ("resume_ctime_ns", "INTEGER"),
    ("resume_version_ns", "INTEGER"),  # the send's version time (envelope v2)
    ("resume_at", "REAL"),  # time.time() of the checkpoint
)
_RESUME_NAMES = ", ".join(name for name, _ in _RESUME)
# One row per (file version, send, claimed group, key id, authenticated): an
# unauthenticated receipt can never overwrite an authentic one, whatever group it claims.
_RECEIPTS = """
CREATE TABLE IF NOT EXISTS {name} (
    relpath TEXT NOT NULL, sha256 TEXT NOT NULL, grp TEXT NOT NULL, host TEXT NOT NULL,
    outcome TEXT NOT NULL, reason TEXT, at REAL NOT NULL,
    key_id TEXT NOT NULL DEFAULT '', authenticated INTEGER NOT NULL DEFAULT 0,
    file_id TEXT NOT NULL DEFAULT '', source TEXT NOT NULL DEFAULT '',
    stored_as TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (relpath, sha256, file_id, grp, key_id, authenticated)
);
"""
_RECEIPT_COLUMNS = "relpath, sha256, grp, host, outcome, reason, at, key_id, authenticated"
# Receipts about this watcher's own sends of a path: naming one of its sends (by file id,
# from its source), or naming none (older downloaders; v1 and openmsistream sends).
_MINE = """
(source = '' OR source = (SELECT value FROM meta WHERE key = 'source'))
AND (file_id = '' OR file_id IN (SELECT file_id FROM sends WHERE sends.relpath = receipts.relpath))
"""


class UploadState(str, enum.Enum):
    """Where one file (path, size, mtime) stands; stored as its value."""

    IGNORED = "ignored"  # there before the first start (new files only): never sent
    QUEUED = "queued"  # finished writing, waiting for a sender
    SENDING = "sending"  # being read and produced; sent again after a crash
    SENT = "sent"  # every chunk acknowledged by the cluster
    FAILED = "failed"  # not sent (unreadable, vanished, not acknowledged)
    SKIPPED = "skipped"  # never sent by design: a link, a special file, a name that cannot travel
    DELETED = "deleted"  # cleaned up after enough trusted receipts
    MOVED = "moved"  # cleaned up by moving it out of the watched folder

    def __str__(self) -> str:
        return self.value


UNFINISHED = (UploadState.QUEUED.value, UploadState.SENDING.value)
CLEANED = (UploadState.DELETED, UploadState.MOVED)


@dataclass(frozen=True)
class LedgerRow:
    relpath: str
    size: int
    mtime_ns: int
    sha256: str | None
    status: str
    reason: str | None
    updated_at: float
    ctime_ns: int | None = None
    retry_at: float | None = None  # `failed` rows: when they are tried again even if unchanged


class UploadLedger:
    """Thread-safe; every change is committed (and so durable) before the call returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        # NORMAL in WAL mode survives a crash of this process; a power cut may lose the last
        # status changes, which only means a file is sent again (harmless), never lost.
        self._db = connect(path, synchronous="NORMAL")
        with translated(path):
            self._db.executescript(_SCHEMA)
            for column, declaration in (*_RESUME, *_CHANGE):
                add_column(self._db, "files", column, declaration)
            self._migrate_receipts()

    def __enter__(self) -> UploadLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def get(self, relpath: str) -> LedgerRow | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_ROW} FROM files WHERE relpath = ?", (relpath,)).fetchone()
        return None if row is None else LedgerRow(*row)

    def set(
        self,
        relpath: str,
        size: int,
        mtime_ns: int,
        status: UploadState,
        *,
        sha256: bytes | None = None,
        reason: str | None = None,
        file_id: bytes = b"",
        ctime_ns: int | None = None,
        retry_at: float | None = None,
    ) -> None:
        """Record a file's status; a checkpoint survives only `queued` and `sending`.
        `file_id`: the acknowledged wire-v2 send that made it `sent` (kept in `sends`)."""
        state = UploadState(status).value
        digest = sha256.hex() if sha256 else None
        row = (relpath, size, mtime_ns, digest, state, reason, time.time(), ctime_ns, retry_at)
        keep = state in UNFINISHED
        # REPLACE deletes the old row, checkpoint included; the upsert keeps it.
        upsert = (
            " ON CONFLICT(relpath) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,"
            " sha256 = excluded.sha256, status = excluded.status, reason = excluded.reason,"
            " updated_at = excluded.updated_at, ctime_ns = excluded.ctime_ns,"
            " retry_at = excluded.retry_at"
        )
        verb = "INSERT" if keep else "INSERT OR REPLACE"
        with self._lock, translated(self.path), self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                f"{verb} INTO files ({_ROW}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?){upsert if keep else ''}", row
            )
            if file_id and sha256:
                self._db.execute(
                    "INSERT OR REPLACE INTO sends VALUES (?, ?, ?, ?)",
                    (relpath, file_id.hex(), sha256.hex(), time.time()),
                )

    def set_ctime(self, relpath: str, ctime_ns: int) -> None:
        """The file is the version recorded (same size, mtime and content); only its ctime moved."""
        with self._lock, translated(self.path):
            self._db.execute("UPDATE files SET ctime_ns = ? WHERE relpath = ?", (ctime_ns, relpath))

    def checkpoint(self, relpath: str) -> Checkpoint | None:
        """The checkpoint of `relpath`'s unfinished send, if one was written."""
        with self._lock, translated(self.path):
            row = self._db.execute(
                f"SELECT {_RESUME_NAMES} FROM files WHERE relpath = ? AND status IN (?, ?)",
                (relpath, *UNFINISHED),
            ).fetchone()
        if row is None or row[0] is None:
            return None
        return Checkpoint(bytes(row[0]), *row[1:])

    def save_checkpoint(self, relpath: str, checkpoint: Checkpoint) -> None:
        """Remember how far a send got, unless the file has finished meanwhile."""
        values = (
            checkpoint.file_id,
            checkpoint.wire,
            checkpoint.chunk_size,
            checkpoint.acked,
            checkpoint.size,
            checkpoint.mtime_ns,
            checkpoint.ctime_ns,
            checkpoint.version_ns,
            checkpoint.at,
        )
        assignments = ", ".join(f"{name} = ?" for name, _ in _RESUME)
        with self._lock, translated(self.path):
            self._db.execute(
                f"UPDATE files SET {assignments} WHERE relpath = ? AND status IN (?, ?)",
                (*values, relpath, *UNFINISHED),
            )

    def live_point(self, relpath: str) -> LivePoint | None:
        """How far the live send of `relpath` got (acknowledged up to its last mark)."""
        with self._lock, translated(self.path):
            row = self._db.execute(
                "SELECT file_id, version_ns, chunk_size, sent, sha256, seq, at FROM live WHERE relpath = ?",
                (relpath,),
            ).fetchone()
        if row is None:
            return None
        return LivePoint(
            bytes(row[0]), int(row[1]), int(row[2]), int(row[3]), bytes.fromhex(row[4]), *row[5:]
        )

    def save_live_point(self, relpath: str, point: LivePoint) -> None:
        values = (relpath, point.file_id, point.version_ns, point.chunk_size, point.sent, point.sha256.hex())
        with self._lock, translated(self.path):
            self._db.execute(
                "INSERT OR REPLACE INTO live VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (*values, point.seq, point.at)
            )

    def drop_live_point(self, relpath: str) -> None:
        with self._lock, translated(self.path):
            self._db.execute("DELETE FROM live WHERE relpath = ?", (relpath,))
            self._db.execute("DELETE FROM live_receipts WHERE relpath = ?", (relpath,))

    def add_live_receipt(self, receipt: Receipt) -> None:
        """Remember how much of this watcher's live send of `receipt.path` a group verified
        (the largest prefix per group); ignored unless it names the live send in progress."""
        with self._lock, translated(self.path):
            self._db.execute(
                "INSERT INTO live_receipts SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS "
                "(SELECT 1 FROM live WHERE relpath = ? AND file_id = ?) "
                "ON CONFLICT (relpath, file_id, grp, authenticated) DO UPDATE SET size = excluded.size, "
                "sha256 = excluded.sha256, "
                "at = excluded.at WHERE excluded.size > size",
                (
                    receipt.path,
                    receipt.file_id,
                    receipt.group,
                    int(receipt.authenticated),
                    receipt.size,
                    receipt.sha256,
                    receipt.at,
                    receipt.path,
                    bytes.fromhex(receipt.file_id),
                ),
            )

    def live_points(self) -> dict[str, LiveProgress]:
        """How far every live send in progress got, by path: acknowledged, and verified
        downstream per the live receipts of its send."""
        with self._lock, translated(self.path):
            rows = self._db.execute("SELECT relpath, sent FROM live").fetchall()
            verified = self._db.execute(
                "SELECT r.relpath, r.grp, r.authenticated, r.size FROM live_receipts r JOIN live l "
                "ON l.relpath = r.relpath AND lower(hex(l.file_id)) = r.file_id ORDER BY r.grp"
            ).fetchall()
        points = {str(path): LiveProgress(int(sent)) for path, sent in rows}
        for path, group, authenticated, size in verified:
            points[path].add(str(group), bool(authenticated), int(size))
        return points

    def set_many(self, rows: list[tuple[str, int, int]], status: UploadState) -> None:
        value = UploadState(status).value
        with self._lock, translated(self.path), self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                f"INSERT OR REPLACE INTO files ({_BASE}) VALUES (?, ?, ?, NULL, ?, NULL, ?)",
                [(relpath, size, mtime, value, time.time()) for relpath, size, mtime in rows],
            )

    def unfinished(self) -> list[LedgerRow]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_ROW} FROM files WHERE status IN (?, ?) ORDER BY updated_at", UNFINISHED
            ).fetchall()
        return [LedgerRow(*row) for row in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM files GROUP BY status").fetchall()
        return {str(status): int(n) for status, n in rows}

    def backlog(self) -> tuple[int, int]:
        """Files (and their bytes) queued or being sent."""
        with self._lock:
            files, size = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM files WHERE status IN (?, ?)", UNFINISHED
            ).fetchone()
        return int(files), int(size)

    def finished_since(self, after: float, limit: int) -> list[LedgerRow]:
        """Rows that became `sent` or `failed` after `after` (a time.time()), oldest first."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_ROW} FROM files WHERE updated_at > ? AND status IN ('sent', 'failed') "
                "ORDER BY updated_at LIMIT ?",
                (after, limit),
            ).fetchall()
        return [LedgerRow(*row) for row in rows]

    def all(self) -> list[LedgerRow]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_ROW} FROM files ORDER BY relpath").fetchall()
        return [LedgerRow(*row) for row in rows]

    def _migrate_receipts(self) -> None:
        """Ledgers from before signed receipts, or before receipts named sends: rebuild the
        table keyed by key id and file id too.

        Receipts from before signatures were never authenticated, and are kept as such.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # another process may be migrating it too
            try:
                columns = {row[1] for row in self._db.execute("PRAGMA table_info(receipts)")}
                if not columns:
                    self._db.execute(_RECEIPTS.format(name="receipts"))
                elif "file_id" not in columns:
                    old = _RECEIPT_COLUMNS
                    if "authenticated" not in columns:
                        old = "relpath, sha256, grp, host, outcome, reason, at, '', 0"
                    self._db.execute(_RECEIPTS.format(name="receipts_v2"))
                    self._db.execute(
                        f"INSERT OR REPLACE INTO receipts_v2 ({_RECEIPT_COLUMNS}) SELECT {old} FROM receipts"
                    )
                    self._db.execute("DROP TABLE receipts")
                    self._db.execute("ALTER TABLE receipts_v2 RENAME TO receipts")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def add_receipt(self, receipt: Receipt) -> None:
        """Remember the latest outcome per (file version, send, group, key id, authenticated)."""
        with self._lock, translated(self.path):
            self._db.execute(
                "INSERT OR REPLACE INTO receipts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    receipt.path,
                    receipt.sha256,
                    receipt.group,
                    receipt.host,
                    receipt.outcome,
                    receipt.reason,
                    receipt.at,
                    receipt.key_id,
                    int(receipt.authenticated),
                    receipt.file_id,
                    receipt.source,
                    receipt.stored_as,
                ),
            )

    def verified_keys(self, relpath: str, sha256: str) -> dict[str, list[str]]:
        """Trusted key id -> the groups it verified this version as, in receipts about this
        watcher's own sends; unauthenticated rows never count."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key_id, grp FROM receipts WHERE relpath = ? AND sha256 = ?"
                f" AND outcome = 'verified' AND authenticated = 1 AND {_MINE} ORDER BY grp",
                (relpath, sha256),
            ).fetchall()
        keys: dict[str, list[str]] = {}
        for key_id, group in rows:
            keys.setdefault(str(key_id), []).append(str(group))
        return keys

    def report(self) -> list[dict[str, object]]:
        """Per file: ledger status plus downstream verdicts for its current version."""
        with self._lock:
            files = self._db.execute(f"SELECT {_ROW} FROM files ORDER BY relpath").fetchall()
            # A receipt of a send that failed before its digest arrived names only the send:
            # it counts for the file's current version, the newest send.
            receipts = self._db.execute(
                "SELECT relpath, CASE WHEN sha256 = '' THEN coalesce((SELECT sha256 FROM sends"
                " WHERE sends.relpath = receipts.relpath AND sends.file_id = receipts.file_id), '')"
                " ELSE sha256 END, grp, outcome, reason, key_id, authenticated, at FROM receipts"
                f" WHERE {_MINE} ORDER BY at"
            ).fetchall()
        verdicts: dict[tuple[str, str], list[tuple[str, str, str, str, int, float]]] = {}
        for relpath, sha, *rest in receipts:
            verdicts.setdefault((relpath, sha), []).append(tuple(rest))
        return [_entry(row, verdicts.get((row.relpath, row.sha256 or ""), [])) for row in map(_row, files)]

    def send_of(self, relpath: str, file_id: str) -> str | None:
        """The digest (hex) of this watcher's send `file_id` of `relpath`; None: not one of ours."""
        with self._lock:
            row = self._db.execute(
                "SELECT sha256 FROM sends WHERE relpath = ? AND file_id = ?", (relpath, file_id)
            ).fetchone()
        return None if row is None else str(row[0])

    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._lock, translated(self.path):
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))


@dataclass
class LiveProgress:
    """A live send in progress: bytes acknowledged, and the largest prefix any group
    verified, by trusted (`verified`) and by unsigned receipts (`unsigned`)."""

    sent: int
    verified: int = 0
    verified_by: list[str] = field(default_factory=list)
    unsigned: int = 0

    def add(self, group: str, authenticated: bool, size: int) -> None:
        if authenticated:
            self.verified = max(self.verified, size)
            self.verified_by.append(group)
        else:
            self.unsigned = max(self.unsigned, size)


def _row(values: tuple[object, ...]) -> LedgerRow:
    return LedgerRow(*values)  # type: ignore[arg-type]


def _entry(row: LedgerRow, mine: list[tuple[str, str, str, str, int, float]]) -> dict[str, object]:
    trusted = [(g, o, r, k, at) for g, o, r, k, a, at in mine if a]
    verified_at = [at for _, o, _, _, at in trusted if o == ReceiptOutcome.VERIFIED]
    return {
        "path": row.relpath,
        "status": row.status,
        "size": row.size,
        "sha256": row.sha256,
        "reason": row.reason,
        "updated_at": row.updated_at,  # time.time() of the watcher's last change of this row
        "retry_at": row.retry_at if row.status == UploadState.FAILED else None,  # tried again then
        "verified_at": max(verified_at) if verified_at else None,  # the latest trusted receipt's
        "verified_by": sorted({g for g, o, _, _, _ in trusted if o == ReceiptOutcome.VERIFIED}),
        "verified_keys": len({k for _, o, _, k, _ in trusted if o == ReceiptOutcome.VERIFIED}),
        "failed_downstream": {g: r for g, o, r, _, _ in trusted if o == ReceiptOutcome.FAILED},
        "unauthenticated": [
            {"group": g, "outcome": o, "reason": r, "key_id": k} for g, o, r, k, a, _ in mine if not a
        ],
    }


def default_state_dir(root: Path, topic: str) -> Path:
    """A per-user folder for one (watched folder, topic) pair; never inside the folder."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "labstream"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support" / "labstream"
    else:
        base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "labstream"
    digest = hashlib.sha256(f"{root.resolve()}\0{topic}".encode()).hexdigest()[:10]
    return base / "watch" / f"{root.resolve().name or 'root'}-{topic}-{digest}"


def state_digest(state: Path) -> str:
    """A short stable name for one state folder (used in consumer group names)."""
    return hashlib.sha256(str(state.resolve()).encode()).hexdigest()[:12]
