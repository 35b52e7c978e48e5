"""Has a file changed since the ledger last saw it? What labs do, seen through stat().

Size and mtime catch ordinary writes. ctime catches what they miss: a permission fixed with
`chmod` after a failed read, and a rewrite whose size is kept and whose mtime is put back
(`cp -p`, `rsync -t`, `os.utime`), since no one can set the ctime back. A moved ctime on a
sent file is only a doubt (a `chmod` of a sent file moves it too), settled by hashing the file
and comparing with the ledger's digest: identical bytes are never sent again.

A `failed` file is tried again when it changes, and otherwise after a back-off
(`retry_delay`) doubling from a minute to an hour.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from labstream.upload.ledger import LedgerRow, UploadState

__all__ = ["FIRST_RETRY_SECONDS", "LONGEST_RETRY_SECONDS", "Change", "Version", "change_of", "retry_delay"]

FIRST_RETRY_SECONDS = 60.0
LONGEST_RETRY_SECONDS = 3600.0


class Version(NamedTuple):
    """A file as stat() sees it now."""

    size: int
    mtime_ns: int
    ctime_ns: int


class Change(enum.Enum):
    """What the watcher does with a file it looks at."""

    SEND = "send"  # new, changed, or a failed file due for another try
    KNOWN = "known"  # the version recorded: nothing to do
    ADOPT_CTIME = "adopt-ctime"  # the version recorded, by a ledger that kept no ctime yet
    CHECK_CONTENT = "check-content"  # sent, same size and mtime, ctime moved: hash to decide


def change_of(row: LedgerRow | None, seen: Version, now: float, *, upload_existing: bool) -> Change:
    """The verdict for a file the ledger holds as `row` and stat() shows as `seen`;
    `now` is time.time()."""
    if row is None or (row.size, row.mtime_ns) != (seen.size, seen.mtime_ns):
        return Change.SEND
    if row.status == UploadState.IGNORED:
        return Change.SEND if upload_existing else Change.KNOWN
    ctime_moved = row.ctime_ns is not None and row.ctime_ns != seen.ctime_ns
    if row.status == UploadState.FAILED:
        due = row.retry_at is None or now >= row.retry_at
        return Change.SEND if ctime_moved or due else Change.KNOWN
    if row.status == UploadState.SENT:
        if row.ctime_ns is None:
            return Change.ADOPT_CTIME
        return Change.CHECK_CONTENT if ctime_moved else Change.KNOWN
    return Change.KNOWN  # queued or sending (taken up at start), or cleaned up


def retry_delay(failures: int) -> float:
    """Seconds before a file that has failed `failures` times in a row (this run) is tried
    again even if unchanged: a minute, doubling, at most an hour."""
    return min(LONGEST_RETRY_SECONDS, FIRST_RETRY_SECONDS * float(1 << min(max(failures, 1) - 1, 30)))
