from __future__ import annotations

import hashlib
import os
from pathlib import Path

from labstream.receipts import Receipt
from labstream.upload.cleanup import Cleaner, CleanupPolicy
from labstream.upload.ledger import UploadLedger


def sent(ledger: UploadLedger, path: Path, relpath: str) -> str:
    st = path.stat()
    digest = hashlib.sha256(path.read_bytes()).digest()
    ledger.set(relpath, st.st_size, st.st_mtime_ns, "sent", sha256=digest)
    return digest.hex()


def receipt(relpath: str, sha: str, group: str, outcome: str = "verified") -> Receipt:
    return Receipt(relpath, sha, 1, outcome, group, "host", "", 1.0)


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
        cleaner.on_receipt(receipt("data.bin", old, "archive"))
        cleaner.on_receipt(receipt("data.bin", old, "analysis"))
        assert path.exists(), "receipts for an older version must not delete the new one"
        cleaner.on_receipt(receipt("data.bin", new, "archive"))
        cleaner.on_receipt(receipt("data.bin", new, "archive"))
        assert path.exists(), "one group twice is still one group"
        cleaner.on_receipt(receipt("data.bin", new, "analysis", "failed"))
        assert path.exists()
        cleaner.on_receipt(receipt("data.bin", new, "analysis"))
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
        Cleaner(tmp_path, ledger, CleanupPolicy(after_verified_by=1)).on_receipt(receipt("f.txt", sha, "g"))
        assert path.exists()


def test_moved_keeping_subfolders(tmp_path: Path) -> None:
    root, archive = tmp_path / "watched", tmp_path / "archive"
    (root / "run1").mkdir(parents=True)
    path = root / "run1" / "x.csv"
    path.write_text("1,2,3")
    with UploadLedger(tmp_path / "ledger.sqlite") as ledger:
        sha = sent(ledger, path, "run1/x.csv")
        Cleaner(root, ledger, CleanupPolicy(1, archive)).on_receipt(receipt("run1/x.csv", sha, "g"))
    assert not path.exists() and (archive / "run1" / "x.csv").read_text() == "1,2,3"


def test_receipts_for_unknown_files_are_ignored(tmp_path: Path) -> None:
    with UploadLedger(tmp_path / "ledger.sqlite") as ledger:
        Cleaner(tmp_path, ledger, CleanupPolicy(1)).on_receipt(receipt("other.txt", "0" * 64, "g"))
        assert ledger.report() == []


def test_receipt_format_round_trip_and_garbage() -> None:
    import pytest

    from labstream.errors import WireError

    original = Receipt("a/b.txt", "ab" * 32, 5, "failed", "grp", "pc-1", "sha256 mismatch", 12.5)
    assert Receipt.from_bytes(original.to_bytes()) == original
    for garbage in (b"", b"[]", b"{}", b'{"v": 1}', b'{"v": 2, "path": "x"}', b"\xff"):
        with pytest.raises(WireError):
            Receipt.from_bytes(garbage)
