"""What became of one send of a file: the verdict receipts are made of (shared by download,
process and receipts, so neither depends on the other for it)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["OnLive", "OnVerdict", "ReceiptOutcome", "Verdict"]


class ReceiptOutcome(str, enum.Enum):
    """What a downloader or processor says of one send, in a `Verdict` and on the wire in a
    receipt's "outcome" (and the ledgers' outcome columns): the value is what is written, so
    the JSON and the SQLite rows are the plain strings they always were."""

    VERIFIED = "verified"
    FAILED = "failed"
    # A live send's prefix verified so far (labstream.download.live): progress, never a
    # verdict. It travels only to handlers that ask for it (`on_live`), so code that knows
    # verified and failed alone never mistakes a prefix for a whole file.
    LIVE = "live"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Verdict:
    """`outcome` is VERIFIED or FAILED (with a `reason`); LIVE only in what an `on_live`
    handler is given (`size` and `digest` are then the verified prefix's).

    `source` and `file_id` name the send (wire v2; "" and b"" for v1 and openmsistream);
    `digest` is b"" for a send that failed before its digest arrived. `stored_as` is where
    the file was put when that is not `path` (another source holds `path`).
    """

    path: str
    digest: bytes
    size: int
    outcome: ReceiptOutcome
    reason: str = ""
    source: str = ""
    file_id: bytes = b""
    stored_as: str = ""
    duplicate: bool = False  # the same bytes were already here: verified again, not counted

    @property
    def verified(self) -> bool:
        return self.outcome == ReceiptOutcome.VERIFIED

    @property
    def names_a_send(self) -> bool:
        """A receipt can name it: by its digest, or by its send's id."""
        return bool(self.digest or self.file_id)


OnVerdict = Callable[[Verdict], None]
OnLive = Callable[[Verdict], None]  # a live send's verified prefix grew (outcome LIVE)
