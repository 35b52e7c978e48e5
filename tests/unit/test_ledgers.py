"""The download ledger: states as an enum, the hash algorithm stored, SQLite errors in the tree."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from labstream.download.ledger import DONE_STATUSES, FileState, Ledger
from labstream.errors import LedgerError, OutputError


def test_the_hash_algorithm_is_stored_not_guessed(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        ledger.record("a", b"\x01" * 32, 1, FileState.VERIFIED, hash_name="sha512-truncated")
        ledger.record("b", b"\x02" * 64, 2, "verified", hash_name="sha512")
        entries = {e.path: e for e in ledger.with_status(FileState.VERIFIED)}
        assert entries["a"].hash_name == "sha512-truncated" and entries["b"].hash_name == "sha512"
        assert ledger.status("a", b"\x01" * 32, 1) is FileState.VERIFIED
        assert FileState.PROCESSED in DONE_STATUSES and FileState.VERIFIED not in DONE_STATUSES


def test_an_old_ledger_gets_the_hash_column_once_filled_from_its_digests(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE files (path TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL, "
        "status TEXT NOT NULL, reason TEXT, finished_at REAL NOT NULL, PRIMARY KEY (path, sha256, size))"
    )
    db.execute("INSERT INTO files VALUES ('old256', ?, 1, 'verified', '', 0)", ("ab" * 32,))
    db.execute("INSERT INTO files VALUES ('old512', ?, 1, 'verified', '', 0)", ("cd" * 64,))
    db.commit()
    db.close()
    with Ledger(path) as ledger:
        hashes = {e.path: e.hash_name for e in ledger.with_status(FileState.VERIFIED)}
    assert hashes == {"old256": "sha256", "old512": "sha512"}
    with Ledger(path) as ledger:  # opened again: nothing to migrate, nothing changed
        assert {e.path: e.hash_name for e in ledger.with_status(FileState.VERIFIED)} == hashes


def test_a_full_disk_during_a_ledger_write_is_the_retriable_output_error(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        ledger._db.execute("PRAGMA max_page_count = 4")  # what a full disk looks like to SQLite
        with pytest.raises(OutputError, match="disk is full") as caught:
            ledger.record_many(
                [(f"f{i}", bytes(32), i, "verified", "x" * 2000, 0, "sha256") for i in range(50)]
            )
        assert caught.value.retriable


def test_a_file_that_is_not_a_ledger_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LedgerError, match=r"ledger .*ledger\.sqlite: file is not a database"):
        Ledger(path)


def test_upload_states_are_an_enum_stored_as_their_names(tmp_path: Path) -> None:
    from labstream.upload.ledger import UNFINISHED, UploadLedger, UploadState

    with UploadLedger(tmp_path / "ledger.sqlite") as ledger:
        ledger.set("a", 1, 1, UploadState.SENDING)
        ledger.set_many([("b", 2, 2)], UploadState.IGNORED)
        assert ledger.counts() == {"sending": 1, "ignored": 1}
        assert [row.relpath for row in ledger.unfinished()] == ["a"] and "sending" in UNFINISHED
        with pytest.raises(ValueError):
            ledger.set("c", 1, 1, "snet")  # type: ignore[arg-type]
