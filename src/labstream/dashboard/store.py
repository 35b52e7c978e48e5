"""The dashboard's state in SQLite: memory stays bounded however many receipts arrive.

Writers are the reader threads (heartbeats, receipts, lag); readers are the web handlers.
One connection behind one lock: writes come in batches (one transaction per consumed
batch), reads are a handful of indexed queries. Everything shown comes from the topics,
so everything stored is already checked (`parse_heartbeat`, `Receipt.from_bytes`) and
capped: instances, failures and the per-minute series have row limits, receipts an age.

Who may change an instance's row: once a beat with a good signature was applied to it, its
key owns the row. Only a later beat with a good signature by that key changes it ("later":
the same run with a higher sequence number, or a run that started later); a beat signed by
a *trusted* key may also take over a row owned by an untrusted one. Any other beat naming
it (unsigned, badly signed, signed by another key, replayed) is refused: counted on the row
as an alert, never applied. Rows never seen signed take unsigned beats, as before.

When the instances are over their cap, rows owned by a trusted key are never dropped; of the
others, first those heard from once and long silent, then the newest heard from once (a
flood of invented names), and only then the longest silent of the rest.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from labstream.dashboard.reasons import readable
from labstream.heartbeat import Heartbeat, Trust
from labstream.heartbeat.format import SendOutcome
from labstream.outcomes import ReceiptOutcome
from labstream.receipts import Receipt

__all__ = ["DROPPED", "MAX_INSTANCES", "REFUSED", "VERIFIED_FILES", "Store"]

MAX_INSTANCES = 2000  # hostile or forgetful senders cannot grow the fleet table without end
MAX_FAILURES = 1000
MINUTES_KEPT = 48 * 60
MAX_LIVE = 1000  # live files shown; the oldest beyond that are forgotten
LIVE_KEPT_SECONDS = 3600.0  # a live send without news for this long is no longer shown

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    instance TEXT PRIMARY KEY, role TEXT, host TEXT, pid INTEGER, version TEXT, started REAL,
    at REAL, interval REAL, state TEXT, folder TEXT, topic TEXT, grp TEXT,
    queued_files INTEGER, queued_bytes INTEGER, in_flight INTEGER, sent INTEGER, verified INTEGER,
    failed INTEGER, bytes INTEGER, rate REAL, last_file TEXT, last_file_at REAL, last_error TEXT,
    trust TEXT, received REAL,
    last_verified TEXT DEFAULT '', last_verified_at REAL DEFAULT 0, last_verified_by TEXT DEFAULT '',
    downstream_failed INTEGER DEFAULT 0
);
CREATE INDEX IF NOT EXISTS instances_received ON instances (received);
CREATE TABLE IF NOT EXISTS files (
    topic TEXT, path TEXT, sha256 TEXT, size INTEGER, instance TEXT, host TEXT, outcome TEXT,
    reason TEXT, at REAL, PRIMARY KEY (topic, path, sha256)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS files_path ON files (path);
CREATE TABLE IF NOT EXISTS receipts (
    topic TEXT, path TEXT, sha256 TEXT, grp TEXT, host TEXT, outcome TEXT, reason TEXT,
    size INTEGER, at REAL, received REAL, PRIMARY KEY (topic, path, sha256, grp)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS receipts_path ON receipts (path);
CREATE INDEX IF NOT EXISTS receipts_received ON receipts (received);
CREATE TABLE IF NOT EXISTS verdicts (
    topic TEXT, path TEXT, sha256 TEXT, size INTEGER DEFAULT 0, verified_at REAL DEFAULT 0,
    failed_at REAL DEFAULT 0, reason TEXT DEFAULT '', PRIMARY KEY (topic, path, sha256)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS verdicts_failed ON verdicts (failed_at, reason) WHERE failed_at > 0;
CREATE TABLE IF NOT EXISTS groups (
    grp TEXT, topic TEXT, verified INTEGER DEFAULT 0, failed INTEGER DEFAULT 0,
    last_file TEXT DEFAULT '', last_at REAL DEFAULT 0, last_reason TEXT DEFAULT '',
    PRIMARY KEY (grp, topic)
);
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY, at REAL, topic TEXT, path TEXT, source TEXT, reason TEXT
);
CREATE TABLE IF NOT EXISTS minutes (
    minute INTEGER, kind TEXT, files INTEGER, bytes INTEGER, PRIMARY KEY (minute, kind)
);
CREATE TABLE IF NOT EXISTS lag (
    grp TEXT, topic TEXT, messages INTEGER, files INTEGER, at REAL, PRIMARY KEY (grp, topic)
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER);
CREATE TABLE IF NOT EXISTS paths (id INTEGER PRIMARY KEY, path TEXT UNIQUE);
CREATE TABLE IF NOT EXISTS live (
    topic TEXT, source TEXT, path TEXT, file_id TEXT, grp TEXT, size INTEGER, at REAL, received REAL,
    PRIMARY KEY (topic, source, path, file_id, grp)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS live_received ON live (received);
"""
# Columns added after the first release: added to older databases on open.
_ADDED_COLUMNS = (
    ("run", "TEXT DEFAULT ''"),
    ("seq", "INTEGER DEFAULT 0"),
    ("owner_key", "TEXT DEFAULT ''"),  # the key whose good signatures alone change the row
    ("owner_trust", "TEXT DEFAULT ''"),  # "signed" (trusted) or "untrusted-key"
    ("first_seen", "REAL DEFAULT 0"),
    ("beats", "INTEGER DEFAULT 1"),
    ("refused", "INTEGER DEFAULT 0"),  # beats naming it that were not applied
    ("refused_reason", "TEXT DEFAULT ''"),
    ("refused_at", "REAL DEFAULT 0"),
    ("downstream_reason", "TEXT DEFAULT ''"),
    ("downstream_by", "TEXT DEFAULT ''"),
    ("downstream_at", "REAL DEFAULT 0"),
    ("source", "TEXT DEFAULT ''"),  # a watcher's instrument name
)
REFUSED = "forged or replayed heartbeats refused"
VERIFIED_FILES = "verified-file"  # a `minutes` kind: files first verified in that minute
DROPPED = "unknown instances dropped"
# Substring search without a full scan: a trigram index over every path seen (SQLite 3.34+).
_PATH_INDEX = "CREATE VIRTUAL TABLE IF NOT EXISTS path_index USING fts5(path, tokenize='trigram')"

_INSTANCE_COLUMNS = [
    "instance",
    "role",
    "host",
    "pid",
    "version",
    "started",
    "at",
    "interval",
    "state",
    "folder",
    "topic",
    "grp",
    "queued_files",
    "queued_bytes",
    "in_flight",
    "sent",
    "verified",
    "failed",
    "bytes",
    "rate",
    "last_file",
    "last_file_at",
    "last_error",
    "trust",
    "received",
    "run",
    "seq",
    "source",
]


class Store:
    """Thread-safe; `version` grows with every write (the live page pushes on change)."""

    def __init__(self, path: Path | str, *, cache_mib: int = 16) -> None:
        if isinstance(path, Path):
            path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(f"PRAGMA cache_size=-{int(cache_mib) * 1024}")
        self._db.execute("PRAGMA temp_store=FILE")
        self._db.executescript(_SCHEMA)
        _migrate(self._db)
        try:
            self._db.execute(_PATH_INDEX)
            self.indexed = True
        except sqlite3.OperationalError:  # an SQLite without FTS5 trigrams: search scans instead
            self.indexed = False
        self.version = 0

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self.version += 1

    def read(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        """Rows of one query as dicts (column -> value)."""
        with self._lock:
            cursor = self._db.execute(sql, tuple(params))
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    # -- writers ---------------------------------------------------------------------------

    def add_heartbeats(self, beats: Iterable[Heartbeat], received: float | None = None) -> None:
        """Apply each beat its instance's owner would accept (see the module); count the rest."""
        now = time.time() if received is None else received
        with self._write() as db:
            for beat in beats:
                refusal = _refusal(beat, db)
                if refusal == _AGAIN:
                    continue  # the owner's last beat delivered again (at least once): no news
                if refusal:
                    _refuse(db, beat.instance, refusal, now)
                    continue
                _upsert_instance(db, beat, now)
                for item in beat.status.recent:
                    _add_sent(db, beat, item, now)
            _cap_instances(db, MAX_INSTANCES, now)

    def add_receipts(self, receipts: Iterable[tuple[str, Receipt]], received: float | None = None) -> None:
        """(data topic, receipt) pairs; a receipt seen before (same outcome) counts once."""
        now = time.time() if received is None else received
        with self._write() as db:
            for topic, receipt in receipts:
                _add_receipt(db, topic, receipt, now)

    def find_paths(self, text: str, limit: int) -> list[str]:
        """Paths containing `text` (case-sensitive for 3+ characters, through the index)."""
        if "\x00" in text:
            return []  # no path holds a NUL (the wire refuses them), and FTS5 cannot parse one
        rows = None
        if self.indexed and len(text) >= 3:
            quoted = '"' + text.replace('"', '""') + '"'
            with contextlib.suppress(sqlite3.OperationalError):  # a query FTS5 cannot parse: scan
                rows = self.read(
                    "SELECT path FROM path_index WHERE path_index MATCH ? AND instr(path, ?) > 0 LIMIT ?",
                    (quoted, text, limit),
                )
        if rows is None:
            rows = self.read("SELECT path FROM paths WHERE instr(path, ?) > 0 LIMIT ?", (text, limit))
        return [str(r["path"]) for r in rows]

    def count(self, name: str, n: int = 1) -> None:
        """A named counter (rejected messages, ...), shown on the page and in metrics."""
        with self._write() as db:
            db.execute(
                "INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
                (name, n, n),
            )

    def set_lag(self, group: str, topic: str, messages: int, files: int) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO lag VALUES (?, ?, ?, ?, ?)",
                (group, topic, messages, files, time.time()),
            )

    def files_waiting(self, group: str, topic: str, days: float = 7.0) -> int:
        """Files sent to `topic` (as heartbeats told) that `group` has no receipt for yet."""
        rows = self.read(
            "SELECT COUNT(*) AS n FROM files f WHERE f.topic = ? AND f.outcome = 'sent' AND f.at > ? "
            "AND NOT EXISTS (SELECT 1 FROM receipts r WHERE r.topic = f.topic AND r.path = f.path "
            "AND r.sha256 = f.sha256 AND r.grp = ?)",
            (topic, time.time() - days * 86400, group),
        )
        return int(rows[0]["n"])

    def prune(self, keep_days: float) -> None:
        """Forget receipts and files older than `keep_days`, and old series minutes."""
        cutoff = time.time() - keep_days * 86400
        with self._write() as db:
            db.execute("DELETE FROM receipts WHERE received < ?", (cutoff,))
            db.execute("DELETE FROM files WHERE at < ?", (cutoff,))
            db.execute("DELETE FROM verdicts WHERE MAX(verified_at, failed_at) < ?", (cutoff,))
            db.execute("DELETE FROM minutes WHERE minute < ?", (int(time.time() // 60) - MINUTES_KEPT,))


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a database of an older version up to this one (its rows kept)."""
    present = {row[1] for row in db.execute("PRAGMA table_info(instances)")}
    for name, declared in _ADDED_COLUMNS:
        if name not in present:
            db.execute(f"ALTER TABLE instances ADD COLUMN {name} {declared}")
    if "receipted" not in {row[1] for row in db.execute("PRAGMA table_info(files)")}:
        db.execute("ALTER TABLE files ADD COLUMN receipted INTEGER DEFAULT 0")
        db.execute(
            "UPDATE files SET receipted = 1 WHERE EXISTS (SELECT 1 FROM receipts r WHERE r.topic = "
            "files.topic AND r.path = files.path AND r.sha256 = files.sha256)"
        )
        db.execute(
            "INSERT OR IGNORE INTO verdicts SELECT topic, path, sha256, MAX(size), "
            "MAX(CASE WHEN outcome = 'verified' THEN at ELSE 0 END), "
            "MAX(CASE WHEN outcome = 'failed' THEN at ELSE 0 END), MAX(reason) "
            "FROM receipts GROUP BY topic, path, sha256"
        )
        db.execute(
            "INSERT OR REPLACE INTO minutes SELECT CAST(verified_at / 60 AS INTEGER), ?, COUNT(*), SUM(size) "
            "FROM verdicts WHERE verified_at > 0 GROUP BY 1",
            (VERIFIED_FILES,),
        )
    # Sent files no group has answered for yet, oldest first: the summary's "oldest backlog".
    db.execute(
        "CREATE INDEX IF NOT EXISTS files_waiting ON files (at) WHERE outcome = 'sent' AND receipted = 0"
    )
    db.execute("CREATE INDEX IF NOT EXISTS files_failed ON files (at, reason) WHERE outcome = 'failed'")


def _upsert_instance(db: sqlite3.Connection, beat: Heartbeat, received: float) -> None:
    s = beat.status
    values = (
        beat.instance, beat.role, beat.host, beat.pid, beat.version, beat.started, beat.at,
        beat.interval, beat.state, s.folder, s.topic, s.group, s.queued_files, s.queued_bytes,
        s.in_flight, s.sent, s.verified, s.failed, s.bytes, beat.rate, s.last_file, s.last_file_at,
        s.last_error, beat.trust.value, received, beat.run, beat.seq, s.source,
    )  # fmt: skip
    updates = ", ".join(f"{c} = excluded.{c}" for c in _INSTANCE_COLUMNS[1:])
    db.execute(
        f"INSERT INTO instances ({', '.join(_INSTANCE_COLUMNS)}, first_seen, beats) "
        f"VALUES ({', '.join('?' * len(values))}, ?, 1) "
        f"ON CONFLICT(instance) DO UPDATE SET {updates}, beats = beats + 1",
        (*values, received),
    )
    if beat.trust.proven:
        db.execute(
            "UPDATE instances SET owner_key = ?, owner_trust = ? WHERE instance = ?",
            (beat.key_id, beat.trust.value, beat.instance),
        )


_NOT_PROVEN = {
    Trust.UNSIGNED: "unsigned beat",
    Trust.BAD_SIGNATURE: "bad signature",
    Trust.UNCHECKED: "signed by a key that cannot be checked",
}


_AGAIN = "again"


def _refusal(beat: Heartbeat, db: sqlite3.Connection) -> str:
    """Why the owner of `beat.instance` would not accept `beat`; "" if it would."""
    row = db.execute(
        "SELECT owner_key, owner_trust, run, seq, started, at FROM instances WHERE instance = ?",
        (beat.instance,),
    ).fetchone()
    if row is None or not row[1]:
        return ""  # never seen signed: anyone's beat is as good as another
    owner_key, owner_trust, run, seq, started, at = row
    if not beat.trust.proven:
        return _NOT_PROVEN.get(beat.trust, beat.trust.value)
    if beat.key_id != owner_key:
        if beat.trust is Trust.SIGNED and owner_trust != Trust.SIGNED.value:
            return ""  # a trusted key takes over from one nobody vouched for
        return f"signed by another key ({beat.key_id or '?'})"
    if beat.run and beat.run == run:
        if beat.seq == seq and beat.at == at:
            return _AGAIN
        newer = beat.seq > seq
    elif beat.started != started:
        newer = beat.started > started
    else:
        newer = beat.at > at
    return "" if newer else "replayed or older beat"


def _refuse(db: sqlite3.Connection, instance: str, reason: str, now: float) -> None:
    db.execute(
        "UPDATE instances SET refused = refused + 1, refused_reason = ?, refused_at = ? WHERE instance = ?",
        (reason, now, instance),
    )
    db.execute(
        "INSERT INTO counters VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1", (REFUSED,)
    )


def _add_sent(db: sqlite3.Connection, beat: Heartbeat, item: Any, now: float) -> None:
    topic = beat.status.topic
    known = db.execute(
        "SELECT 1 FROM files WHERE topic = ? AND path = ? AND sha256 = ?", (topic, item.path, item.sha256)
    ).fetchone()
    receipts = db.execute(
        "SELECT grp, outcome, at, reason FROM receipts WHERE topic = ? AND path = ? AND sha256 = ?",
        (topic, item.path, item.sha256),
    ).fetchall()
    db.execute(
        "INSERT OR REPLACE INTO files (topic, path, sha256, size, instance, host, outcome, reason, at, "
        "receipted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            topic,
            item.path,
            item.sha256,
            item.size,
            beat.instance,
            beat.host,
            item.outcome,
            item.reason,
            item.at,
            int(bool(receipts)),
        ),
    )
    if known:
        return
    _remember_path(db, item.path)
    _bump_minute(db, now, item.outcome, item.size)
    if item.outcome == SendOutcome.FAILED:
        _add_failure(db, now, topic, item.path, beat.instance, item.reason)
    for row in receipts:
        _credit_instance(db, beat.instance, item.path, row[0], row[1], min(row[2] or now, now), row[3])


def _add_live(db: sqlite3.Connection, topic: str, r: Receipt, now: float) -> None:
    """A live receipt: the prefix of a live send one group verified so far (the largest
    kept). Not a verdict: no counts, no failures; the send's verdict removes the row."""
    db.execute(
        "INSERT INTO live VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (topic, source, path, file_id, grp) DO UPDATE SET size = excluded.size, "
        "at = excluded.at, received = excluded.received WHERE excluded.size > size",
        (topic, r.source, r.path, r.file_id, r.group, r.size, min(r.at or now, now), now),
    )
    db.execute("DELETE FROM live WHERE received < ?", (now - LIVE_KEPT_SECONDS,))
    db.execute(
        "DELETE FROM live WHERE received < (SELECT received FROM live ORDER BY received DESC "
        "LIMIT 1 OFFSET ?)",
        (MAX_LIVE - 1,),
    )


def _add_receipt(db: sqlite3.Connection, topic: str, r: Receipt, now: float) -> None:
    if r.outcome == ReceiptOutcome.LIVE:
        _add_live(db, topic, r, now)
        return
    if r.file_id:  # the send's verdict: it is no longer live
        db.execute(
            "DELETE FROM live WHERE topic = ? AND source = ? AND path = ? AND file_id = ?",
            (topic, r.source, r.path, r.file_id),
        )
    before = db.execute(
        "SELECT outcome FROM receipts WHERE topic = ? AND path = ? AND sha256 = ? AND grp = ?",
        (topic, r.path, r.sha256, r.group),
    ).fetchone()
    reason = r.reason[:4096]
    db.execute(
        "INSERT OR REPLACE INTO receipts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (topic, r.path, r.sha256, r.group, r.host, r.outcome, reason, r.size, r.at, now),
    )
    if before is not None and before[0] == r.outcome:
        return  # redelivered: already counted
    _remember_path(db, r.path)
    verified = int(r.outcome == ReceiptOutcome.VERIFIED)
    db.execute(
        "INSERT INTO groups (grp, topic, verified, failed, last_file, last_at, last_reason) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(grp, topic) DO UPDATE SET "
        "verified = verified + excluded.verified, failed = failed + excluded.failed, "
        "last_file = excluded.last_file, last_at = excluded.last_at, "
        "last_reason = CASE WHEN excluded.failed > 0 THEN excluded.last_reason ELSE last_reason END",
        (r.group, topic, verified, 1 - verified, r.path, now, reason),
    )
    _bump_minute(db, now, r.outcome, r.size)
    if not verified:
        _add_failure(db, now, topic, r.path, r.group, reason)
    # When it happened is the receipt's own time (a clock ahead of ours counts as now).
    at = min(r.at, now) if r.at > 0 else now
    _record_verdict(db, topic, r, at)
    sender = None
    if r.source:  # the receipt names the instrument: no guessing by path
        sender = db.execute(
            "SELECT instance FROM instances WHERE source = ? AND topic = ? ORDER BY at DESC LIMIT 1",
            (r.source, topic),
        ).fetchone()
    if sender is None:
        sender = db.execute(
            "SELECT instance FROM files WHERE topic = ? AND path = ? AND sha256 = ?",
            (topic, r.path, r.sha256),
        ).fetchone()
    if sender is None and not verified:
        # A failure may not know the file's digest (a file id instead, when it could not be
        # decrypted): it is still news for the instrument that last sent that path.
        sender = db.execute(
            "SELECT instance FROM files WHERE topic = ? AND path = ? ORDER BY at DESC LIMIT 1",
            (topic, r.path),
        ).fetchone()
    if sender is not None:
        _credit_instance(db, sender[0], r.path, r.group, r.outcome, at, reason)


def _record_verdict(db: sqlite3.Connection, topic: str, r: Receipt, at: float) -> None:
    """One row per file (whatever the groups): when last verified, when last failed and why."""
    db.execute(
        "UPDATE files SET receipted = 1 WHERE topic = ? AND path = ? AND sha256 = ?",
        (topic, r.path, r.sha256),
    )
    before = db.execute(
        "SELECT verified_at FROM verdicts WHERE topic = ? AND path = ? AND sha256 = ?",
        (topic, r.path, r.sha256),
    ).fetchone()
    if r.outcome == ReceiptOutcome.VERIFIED and not (before and before[0]):
        _bump_minute(db, at, VERIFIED_FILES, r.size)  # a file's first verification, by its own time
    if r.outcome == ReceiptOutcome.VERIFIED:
        db.execute(
            "INSERT INTO verdicts (topic, path, sha256, size, verified_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT DO UPDATE SET size = excluded.size, "
            "verified_at = MAX(verified_at, excluded.verified_at)",
            (topic, r.path, r.sha256, r.size, at),
        )
    else:
        db.execute(
            "INSERT INTO verdicts (topic, path, sha256, size, failed_at, reason) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO UPDATE SET failed_at = MAX(failed_at, excluded.failed_at), "
            "reason = excluded.reason",
            (topic, r.path, r.sha256, r.size, at, readable(r.reason)),
        )


def _credit_instance(
    db: sqlite3.Connection, instance: str, path: str, group: str, outcome: str, at: float, reason: str
) -> None:
    if outcome == ReceiptOutcome.VERIFIED:
        db.execute(
            "UPDATE instances SET last_verified = ?, last_verified_at = ?, last_verified_by = ? "
            "WHERE instance = ? AND last_verified_at <= ?",
            (path, at, group, instance, at),
        )
    else:
        db.execute(
            "UPDATE instances SET downstream_failed = downstream_failed + 1, downstream_reason = ?, "
            "downstream_by = ?, downstream_at = ? WHERE instance = ?",
            (reason, group, at, instance),
        )


def _remember_path(db: sqlite3.Connection, path: str) -> None:
    cursor = db.execute("INSERT OR IGNORE INTO paths (path) VALUES (?)", (path,))
    if cursor.rowcount == 1:
        with contextlib.suppress(sqlite3.OperationalError):  # no FTS5 here: search scans `paths`
            db.execute("INSERT INTO path_index (rowid, path) VALUES (?, ?)", (cursor.lastrowid, path))


def _bump_minute(db: sqlite3.Connection, now: float, kind: str, size: int) -> None:
    db.execute(
        "INSERT INTO minutes VALUES (?, ?, 1, ?) ON CONFLICT(minute, kind) DO UPDATE SET "
        "files = files + 1, bytes = bytes + excluded.bytes",
        (int(now // 60), kind, size),
    )


def _add_failure(db: sqlite3.Connection, now: float, topic: str, path: str, source: str, reason: str) -> None:
    db.execute(
        "INSERT INTO failures (at, topic, path, source, reason) VALUES (?, ?, ?, ?, ?)",
        (now, topic, path, source, reason),
    )
    db.execute("DELETE FROM failures WHERE id <= (SELECT MAX(id) FROM failures) - ?", (MAX_FAILURES,))


def _cap_instances(db: sqlite3.Connection, limit: int, now: float) -> None:
    """Drop rows over `limit`, in the order the module docstring gives; count them."""
    (count,) = db.execute("SELECT COUNT(*) FROM instances").fetchone()
    if count <= limit:
        return
    cursor = db.execute(
        "DELETE FROM instances WHERE rowid IN (SELECT rowid FROM instances WHERE owner_trust != ? "
        "ORDER BY CASE WHEN beats > 1 THEN 2 WHEN received < ? - 3 * MIN(interval, 60.0) THEN 0 ELSE 1 END, "
        "CASE WHEN beats > 1 THEN received ELSE -first_seen END LIMIT ?)",
        (Trust.SIGNED.value, now, count - limit),
    )
    db.execute(
        "INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
        (DROPPED, cursor.rowcount, cursor.rowcount),
    )
