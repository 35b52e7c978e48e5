"""Opt-in clean-up of the watched folder, only once downstream verified the exact bytes.

A file is deleted (or moved) when at least N distinct consumer groups published a
`verified` receipt for its SHA-256, the ledger says it was sent, and the file on disk
still has that size, mtime and SHA-256. Never before; never if it changed since.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from labstream.receipts import Receipt
from labstream.upload.ledger import UploadLedger
from labstream.upload.source import hash_file

__all__ = ["Cleaner", "CleanupPolicy"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CleanupPolicy:
    after_verified_by: int = 0  # 0 = never clean up
    move_to: Path | None = None  # None = delete


class Cleaner:
    """Records receipts in the ledger and applies the clean-up policy to each."""

    def __init__(self, root: Path, ledger: UploadLedger, policy: CleanupPolicy) -> None:
        self._root = root
        self._ledger = ledger
        self._policy = policy

    def on_receipt(self, receipt: Receipt) -> None:
        row = self._ledger.get(receipt.path)
        if row is None:
            return  # not one of ours
        self._ledger.add_receipt(
            receipt.path,
            receipt.sha256,
            receipt.group,
            receipt.host,
            receipt.outcome,
            receipt.reason,
            receipt.at,
        )
        if receipt.outcome == "failed" and row.sha256 == receipt.sha256:
            logger.error(
                "downstream verification failed file=%s group=%s reason=%s",
                receipt.path,
                receipt.group,
                receipt.reason,
            )
        if self._policy.after_verified_by > 0 and row.status == "sent" and row.sha256 == receipt.sha256:
            self._maybe_clean(receipt.path, row.sha256, row.size, row.mtime_ns)

    def _maybe_clean(self, relpath: str, sha256: str, size: int, mtime_ns: int) -> None:
        groups = self._ledger.verified_groups(relpath, sha256)
        if len(groups) < self._policy.after_verified_by:
            return
        path = self._root / relpath
        try:
            st = path.stat()
        except OSError:
            return
        if (st.st_size, st.st_mtime_ns) != (size, mtime_ns) or hash_file(path)[1].hex() != sha256:
            logger.info("not cleaning up a file changed since it was sent file=%s", relpath)
            return
        if self._policy.move_to is None:
            path.unlink()
            status = "deleted"
        else:
            target = self._policy.move_to / relpath
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), str(target))
            status = "moved"
        self._ledger.set(
            relpath,
            size,
            mtime_ns,
            status,
            sha256=bytes.fromhex(sha256),
            reason=f"verified by {', '.join(sorted(groups))}",
        )
        logger.info(
            "file cleaned up after verification file=%s action=%s groups=%s",
            relpath,
            status,
            ",".join(sorted(groups)),
        )
