from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from functools import cache
from pathlib import Path

import pytest

from labstream.receipts import Receipt, SigningKey, TrustedKeys
from labstream.receipts.signing import write_keypair
from labstream.upload.cleanup import Cleaner, CleanupPolicy
from labstream.upload.ledger import UploadLedger

TOPIC = "data.receipts"


def sent(ledger: UploadLedger, path: Path, relpath: str, algorithm: str = "sha256") -> str:
    st = path.stat()
    digest = hashlib.new(algorithm, path.read_bytes()).digest()
    ledger.set(relpath, st.st_size, st.st_mtime_ns, "sent", sha256=digest)
    return digest.hex()


@cache
def key_pair(name: str, folder: Path) -> tuple[SigningKey, Path]:
    public, _ = write_keypair(folder / name)
    return SigningKey.load(folder / name), public


def keys(tmp_path: Path, *names: str) -> TrustedKeys:
    """Trust the public keys of `names` (made in tmp_path on first use)."""
    return TrustedKeys.load(",".join(str(key_pair(n, tmp_path)[1]) for n in names))


def signed(
    tmp_path: Path,
    relpath: str,
    sha: str,
    group: str,
    outcome: str = "verified",
    *,
    key: str | None = None,
    trust: tuple[str, ...] | None = None,
) -> Receipt:
    """A receipt as the collector hands it over: signed with `key` (default: one per group)
    and authenticated against `trust` (default: that key)."""
    key = key or group
    plain = Receipt(relpath, sha, 1, outcome, group, "host", "", 1.0)
    wire = plain.signed(key_pair(key, tmp_path)[0], TOPIC).to_bytes()
    return Receipt.from_bytes(wire).authenticate(keys(tmp_path, *(trust or (key,))), TOPIC)


def test_deleted_only_after_n_groups_verified_the_current_version(tmp_path: Path) -> None:
    root = tmp_path / "watched"
    root.mkdir()
    path = root / "data.bin"
    path.write_bytes(b"version 1")
    with UploadLedger(tmp_path / "ledger.sqlite") as ledger:
        old = sent(ledger, path, "data.bin")
        path.write_bytes(b"version 2, longer")
        new = sent(ledger, path, "data.bin")
        cleaner = Cleaner(root, ledger, CleanupPolicy(after_verified_by=2))
        cleaner.on_receipt(signed(tmp_path, "data.bin", old, "archive"))
        cleaner.on_receipt(signed(tmp_path, "data.bin", old, "analysis"))
        assert path.exists(), "receipts for an older version must not delete the new one"
        cleaner.on_receipt(signed(tmp_path, "data.bin", new, "archive"))
        cleaner.on_receipt(signed(tmp_path, "data.bin", new, "archive"))
        assert path.exists(), "one group twice is still one group"
        cleaner.on_receipt(signed(tmp_path, "data.bin", new, "analysis", "failed"))
        assert path.exists()
        cleaner.on_receipt(signed(tmp_path, "data.bin", new, "analysis"))
        assert not path.exists()
        row = ledger.get("data.bin")
        assert row is not None and row.status == "deleted"


def test_never_deleted_if_changed_since_it_was_sent(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"as sent")
    with UploadLedger(tmp_path / "ledger.sqlite") as ledger:
        sha = sent(ledger, path, "f.txt")
        path.write_bytes(b"as sent")  # same size, rewritten: mtime may match, content must
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        Cleaner(tmp_path, ledger, CleanupPolicy(after_verified_by=1)).on_receipt(
            signed(tmp_path, "f.txt", sha, "g")
        )
        assert path.exists()


def test_moved_keeping_subfolders(tmp_path: Path) -> None:
    root, archive = tmp_path / "watched", tmp_path / "archive"
    (root / "run1").mkdir(parents=True)
    path = root / "run1" / "x.csv"
    path.write_text("1,2,3")
    with UploadLedger(tmp_path / "ledger.sqlite") as ledger:
        sha = sent(ledger, path, "run1/x.csv")
        Cleaner(root, ledger, CleanupPolicy(1, archive)).on_receipt(signed(tmp_path, "run1/x.csv", sha, "g"))
    assert not path.exists() and (archive / "run1" / "x.csv").read_text() == "1,2,3"


def test_receipts_for_unknown_files_are_ignored(tmp_path: Path) -> None:
    with UploadLedger(tmp_path / "ledger.sqlite") as ledger:
        Cleaner(tmp_path, ledger, CleanupPolicy(1)).on_receipt(signed(tmp_path, "other.txt", "0" * 64, "g"))
        assert ledger.report() == []


def test_receipt_format_round_trip_and_garbage() -> None:
    import pytest

    from labstream.errors import WireError

    original = Receipt("a/b.txt", "ab" * 32, 5, "failed", "grp", "pc-1", "sha256 mismatch", 12.5)
    assert Receipt.from_bytes(original.to_bytes()) == original
    for garbage in (b"", b"[]", b"{}", b'{"v": 1}', b'{"v": 2, "path": "x"}', b"\xff"):
        with pytest.raises(WireError):
            Receipt.from_bytes(garbage)


def watched_file(tmp_path: Path, ledger: UploadLedger, algorithm: str = "sha256") -> tuple[Path, str]:
    root = tmp_path / "watched"
    root.mkdir(exist_ok=True)
    path = root / "only-copy.dat"
    path.write_bytes(os.urandom(1000))
    return path, sent(ledger, path, "only-copy.dat", algorithm)


def test_unauthenticated_receipts_never_delete(tmp_path: Path) -> None:
    with UploadLedger(tmp_path / "ledger.sqlite") as ledger:
        path, sha = watched_file(tmp_path, ledger)
        cleaner = Cleaner(path.parent, ledger, CleanupPolicy(after_verified_by=1))
        unsigned = Receipt("only-copy.dat", sha, 1000, "verified", "archive", "h", "", 1.0)
        cleaner.on_receipt(Receipt.from_bytes(unsigned.to_bytes()).authenticate(keys(tmp_path, "lab"), TOPIC))
        cleaner.on_receipt(signed(tmp_path, "only-copy.dat", sha, "archive", key="attacker", trust=("lab",)))
        # A genuine key's signature does not survive an edit, nor a move to another topic.
        genuine = Receipt("only-copy.dat", sha, 1000, "verified", "archive", "h", "", 1.0).signed(
            key_pair("lab", tmp_path)[0], "other-topic.receipts"
        )
        cleaner.on_receipt(genuine.authenticate(keys(tmp_path, "lab"), TOPIC))
        tampered = signed(tmp_path, "only-copy.dat", sha, "archive", key="lab")
        body = tampered.to_bytes().replace(b'"host": "host"', b'"host": "evil"')
        cleaner.on_receipt(Receipt.from_bytes(body).authenticate(keys(tmp_path, "lab"), TOPIC))
        assert path.exists()
        entry = ledger.report()[0]
        # one row per (group, claimed key): the last two share theirs
        assert entry["verified_by"] == [] and len(entry["unauthenticated"]) == 3  # type: ignore[arg-type]
        cleaner.on_receipt(signed(tmp_path, "only-copy.dat", sha, "archive", key="lab"))
        assert not path.exists()


def test_one_key_counts_once_whatever_group_names_it_signs(tmp_path: Path) -> None:
    with UploadLedger(tmp_path / "ledger.sqlite") as ledger:
        path, sha = watched_file(tmp_path, ledger)
        cleaner = Cleaner(path.parent, ledger, CleanupPolicy(after_verified_by=2))
        for name in ("archive", "mirror", "analysis", "backup"):
            cleaner.on_receipt(signed(tmp_path, "only-copy.dat", sha, name, key="stolen"))
        assert path.exists(), "four group names with one key are one group"
        cleaner.on_receipt(signed(tmp_path, "only-copy.dat", sha, "analysis", key="second"))
        assert not path.exists()


def test_an_unauthenticated_receipt_cannot_overwrite_an_authentic_one(tmp_path: Path) -> None:
    with UploadLedger(tmp_path / "ledger.sqlite") as ledger:
        path, sha = watched_file(tmp_path, ledger)
        cleaner = Cleaner(path.parent, ledger, CleanupPolicy())
        cleaner.on_receipt(signed(tmp_path, "only-copy.dat", sha, "archive"))
        forged = Receipt("only-copy.dat", sha, 1000, "failed", "archive", "h", "forged", 2.0, "ab" * 8)
        cleaner.on_receipt(forged)
        entry = ledger.report()[0]
        assert entry["verified_by"] == ["archive"] and entry["failed_downstream"] == {}
        assert entry["unauthenticated"] == [
            {"group": "archive", "outcome": "failed", "reason": "forged", "key_id": "ab" * 8}
        ]


def test_sha512_files_of_the_openmsistream_wire_are_cleaned_up(tmp_path: Path) -> None:
    with UploadLedger(tmp_path / "ledger.sqlite") as ledger:
        path, sha512 = watched_file(tmp_path, ledger, "sha512")
        assert len(sha512) == 128
        Cleaner(path.parent, ledger, CleanupPolicy(after_verified_by=1)).on_receipt(
            signed(tmp_path, "only-copy.dat", sha512, "archive")
        )
        assert not path.exists()
        row = ledger.get("only-copy.dat")
        assert row is not None and row.status == "deleted"


def test_a_ledger_from_before_signed_receipts_is_migrated(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "ledger.sqlite")
    db.executescript("""
        CREATE TABLE files (relpath TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
            sha256 TEXT, status TEXT NOT NULL, reason TEXT, updated_at REAL NOT NULL);
        CREATE TABLE receipts (relpath TEXT NOT NULL, sha256 TEXT NOT NULL, grp TEXT NOT NULL,
            host TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT, at REAL NOT NULL,
            PRIMARY KEY (relpath, sha256, grp));
    """)
    sha = "cd" * 32
    db.execute("INSERT INTO files VALUES ('old.txt', 3, 1, ?, 'sent', NULL, 1.0)", (sha,))
    db.execute("INSERT INTO receipts VALUES ('old.txt', ?, 'archive', 'h', 'verified', '', 1.0)", (sha,))
    db.commit()
    db.close()
    for _ in range(2):  # opening it again is harmless
        with UploadLedger(tmp_path / "ledger.sqlite") as ledger:
            entry = ledger.report()[0]
            assert entry["verified_by"] == [], "an old unsigned receipt is not authentic"
            assert entry["unauthenticated"] == [
                {"group": "archive", "outcome": "verified", "reason": "", "key_id": ""}
            ]
    with UploadLedger(tmp_path / "ledger.sqlite") as ledger:
        ledger.add_receipt(signed(tmp_path, "old.txt", sha, "archive"))
        assert ledger.report()[0]["verified_by"] == ["archive"]


def test_default_setup_says_how_to_sign_once_and_unsigned_receipts_never_delete(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="labstream.upload.cleanup")
    with UploadLedger(tmp_path / "ledger.sqlite") as ledger:
        root = tmp_path / "watched"
        root.mkdir()
        cleaner = Cleaner(root, ledger, CleanupPolicy(after_verified_by=1))  # trusts no key
        for name in ("a.dat", "b.dat", "c.dat"):
            (root / name).write_bytes(os.urandom(100))
            sha = sent(ledger, root / name, name)
            unsigned = Receipt(name, sha, 100, "verified", "archive", "h", "", 1.0)
            arrived = Receipt.from_bytes(unsigned.to_bytes())
            cleaner.on_receipt(arrived.authenticate(TrustedKeys.load(None), TOPIC))
        assert sorted(p.name for p in root.iterdir()) == ["a.dat", "b.dat", "c.dat"]
    above_debug = [r for r in caplog.records if r.levelno > logging.DEBUG]
    assert [r.levelno for r in above_debug] == [logging.INFO]
    assert "labstream keygen --receipts NAME" in above_debug[0].getMessage()
    assert "verified (unsigned)" in above_debug[0].getMessage()


def test_a_watcher_trusting_keys_warns_about_each_unsigned_receipt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with UploadLedger(tmp_path / "ledger.sqlite") as ledger:
        path, sha = watched_file(tmp_path, ledger)
        cleaner = Cleaner(path.parent, ledger, CleanupPolicy(after_verified_by=1), expects_signed=True)
        for group in ("archive", "mirror"):
            unsigned = Receipt("only-copy.dat", sha, 1000, "verified", group, "h", "", 1.0)
            arrived = Receipt.from_bytes(unsigned.to_bytes())
            cleaner.on_receipt(arrived.authenticate(keys(tmp_path, "lab"), TOPIC))
        assert path.exists()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("unauthenticated receipt recorded" in r.getMessage() for r in warnings)
