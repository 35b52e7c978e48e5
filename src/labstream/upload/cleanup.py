"""Opt-in clean-up of the watched folder, only once downstream verified the exact bytes.

A file is deleted (or moved) when receipts signed by at least N distinct trusted keys say
`verified` for its digest, the ledger says it was sent, and the file on disk still has that
size, mtime and digest (in the file's own algorithm: SHA-256, or SHA-512 for openmsistream).
Never before; never if it changed since. Receipts without a valid signature from a trusted
key are recorded (status shows them as `verified (unsigned)` or `unauthenticated`) but never
count, and several group names signed with one key count once.
"""

from __future__ import annotations

import logging
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from labstream.conditions import Conditions
from labstream.errors import LedgerError, OutputError
from labstream.outcomes import ReceiptOutcome
from labstream.receipts import Receipt
from labstream.receipts.signing import KEYGEN_HINT
from labstream.upload.ledger import UploadLedger, UploadState
from labstream.upload.ledgerwrites import STATE_UNWRITABLE
from labstream.upload.source import hash_file

__all__ = ["Cleaner", "CleanupPolicy"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CleanupPolicy:
    after_verified_by: int = 0  # 0 = never clean up
    move_to: Path | None = None  # None = delete


class Cleaner:
    """Records receipts in the ledger and applies the clean-up policy.

    `source` is this watcher's instrument name: a receipt about another source's file (the
    same path on another instrument) is not ours and is ignored. A receipt is acted upon
    only when it names one of this watcher's own sends of the exact bytes on disk; one that
    arrives before the watcher recorded that send is kept and applied by `settle`, which
    the streamer calls once the send is recorded.
    """

    def __init__(
        self,
        root: Path,
        ledger: UploadLedger,
        policy: CleanupPolicy,
        conditions: Conditions | None = None,
        source: str = "",
        *,
        expects_signed: bool = False,
    ) -> None:
        """`conditions`: where a state folder that cannot take a receipt is said (the
        watcher's, so that one line per 10 s covers every ledger write). `expects_signed`:
        trusted keys are configured, so each unsigned receipt is worth a line."""
        self._root = root
        self._ledger = ledger
        self._policy = policy
        self._conditions = conditions or Conditions(logger)
        self._source = source
        self._lock = threading.Lock()  # receipts and delivery reports settle from two threads
        self._told_unauthenticated = False
        self._expects_signed = expects_signed

    def on_receipt(self, receipt: Receipt) -> None:
        row = self._ledger.get(receipt.path)
        if row is None or not receipt.may_be_from(self._source):
            return  # not one of ours: another instrument's file of the same path
        try:
            self._ledger.add_receipt(receipt)
        except (OutputError, LedgerError) as exc:
            self._conditions.report(
                STATE_UNWRITABLE,
                f"state folder cannot be written; a receipt is not recorded (`labstream status` reads "
                f"receipts again) reason={exc}",
            )
            return
        if not receipt.authenticated:
            self._say_unsigned(receipt)
            return
        if receipt.outcome == ReceiptOutcome.FAILED and self._current(receipt, row.sha256 or ""):
            logger.error(
                "downstream verification failed file=%r group=%r key_id=%s reason=%r",
                receipt.path,
                receipt.group,
                receipt.key_id,
                receipt.reason,
            )
        self.settle(receipt.path)

    def on_live(self, receipt: Receipt) -> None:
        """A live receipt: how much of a live send a group verified so far (status shows it).
        Progress only: it never settles, cleans up or fails a file."""
        if not receipt.may_be_from(self._source):
            return  # another instrument's live file of the same path
        try:
            self._ledger.add_live_receipt(receipt)
        except (OutputError, LedgerError) as exc:
            self._conditions.report(
                STATE_UNWRITABLE,
                f"state folder cannot be written; a live receipt is not recorded reason={exc}",
            )

    def _say_unsigned(self, receipt: Receipt) -> None:
        """A watcher that trusts keys warns about each unsigned receipt (it should have been
        signed). One that trusts none (the default setup) says once per run how to sign, then
        each at debug level: `status` shows such files as `verified (unsigned)`."""
        if self._expects_signed:
            logger.warning(
                "unauthenticated receipt recorded, not acted upon (status lists such receipts; "
                "trust the downstream keys with receipts_trusted_keys) file=%r outcome=%s group=%r key_id=%s",
                receipt.path,
                receipt.outcome,
                receipt.group,
                receipt.key_id or "-",
            )
            return
        if not self._told_unauthenticated:
            self._told_unauthenticated = True
            logger.info(
                "receipts are unsigned: status shows their files as verified (unsigned), clean-up "
                "never acts on them; to sign, %s, set receipts_signing_key = NAME downstream and "
                "receipts_trusted_keys = NAME.pub here",
                KEYGEN_HINT,
            )
        logger.debug(
            "unsigned receipt recorded file=%r outcome=%s group=%r",
            receipt.path,
            receipt.outcome,
            receipt.group,
        )

    def settle(self, relpath: str) -> None:
        """Apply the policy to `relpath` with the receipts recorded so far: on a receipt, and
        when the watcher records a send (its receipts may have come first)."""
        if self._policy.after_verified_by <= 0:
            return
        with self._lock:
            row = self._ledger.get(relpath)
            if row is not None and row.status == UploadState.SENT and row.sha256:
                self._maybe_clean(relpath, row.sha256, row.size, row.mtime_ns)

    def _current(self, receipt: Receipt, sha256: str) -> bool:
        """The receipt is about this watcher's send of the current version (or its send is
        not recorded yet)."""
        if not receipt.file_id:
            return receipt.sha256 == sha256
        sent = self._ledger.send_of(receipt.path, receipt.file_id)
        return sent is None or sent == sha256

    def _maybe_clean(self, relpath: str, digest: str, size: int, mtime_ns: int) -> None:
        keys = self._ledger.verified_keys(relpath, digest)
        if len(keys) < self._policy.after_verified_by:
            return
        groups = sorted({group for names in keys.values() for group in names})
        path = self._root / relpath
        try:
            st = path.stat()
        except OSError:
            return
        if (st.st_size, st.st_mtime_ns) != (size, mtime_ns) or _digest(path, digest) != digest:
            logger.info("not cleaning up a file changed since it was sent file=%r", relpath)
            return
        if self._policy.move_to is None:
            path.unlink()
            status = UploadState.DELETED
        else:
            target = self._policy.move_to / relpath
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), str(target))
            status = UploadState.MOVED
        self._ledger.set(
            relpath,
            size,
            mtime_ns,
            status,
            sha256=bytes.fromhex(digest),
            reason=f"verified by {', '.join(groups)} (keys {', '.join(sorted(keys))})",
        )
        logger.info(
            "file cleaned up after verification file=%r action=%s groups=%s keys=%s",
            relpath,
            status,
            ",".join(groups),
            ",".join(sorted(keys)),
        )


def _digest(path: Path, digest: str) -> str:
    """The file's digest in the algorithm `digest` was made with (told apart by its length)."""
    return hash_file(path, "sha512" if len(digest) == 128 else "sha256")[1].hex()
