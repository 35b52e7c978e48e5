"""What the watcher makes of a file the ledger knows (labstream.upload.changes)."""

from __future__ import annotations

from labstream.upload.changes import (
    FIRST_RETRY_SECONDS,
    LONGEST_RETRY_SECONDS,
    Change,
    Version,
    change_of,
    retry_delay,
)
from labstream.upload.ledger import LedgerRow

NOW = 1_000_000.0


def row(status: str, *, ctime: int | None = 30, retry_at: float | None = None) -> LedgerRow:
    return LedgerRow("a.dat", 10, 20, "ab" * 32, status, None, NOW - 5, ctime, retry_at)


def change(ledger_row: LedgerRow | None, seen: Version, *, upload_existing: bool = False) -> Change:
    return change_of(ledger_row, seen, NOW, upload_existing=upload_existing)


def test_new_or_resized_or_touched_files_are_sent() -> None:
    assert change(None, Version(10, 20, 30)) is Change.SEND
    assert change(row("sent"), Version(11, 20, 30)) is Change.SEND
    assert change(row("sent"), Version(10, 21, 30)) is Change.SEND


def test_a_sent_file_as_recorded_is_known() -> None:
    assert change(row("sent"), Version(10, 20, 30)) is Change.KNOWN


def test_a_sent_file_whose_ctime_moved_is_a_doubt_settled_by_its_content() -> None:
    # a chmod, or a rewrite with size kept and mtime put back (cp -p, rsync -t, os.utime)
    assert change(row("sent"), Version(10, 20, 31)) is Change.CHECK_CONTENT


def test_a_row_from_an_older_ledger_takes_the_ctime_it_sees() -> None:
    assert change(row("sent", ctime=None), Version(10, 20, 31)) is Change.ADOPT_CTIME


def test_a_failed_file_is_tried_again_when_its_ctime_moves_or_its_back_off_ends() -> None:
    waiting = row("failed", retry_at=NOW + 60)
    assert change(waiting, Version(10, 20, 30)) is Change.KNOWN
    assert change(waiting, Version(10, 20, 31)) is Change.SEND  # chmod fixed it
    assert change(row("failed", retry_at=NOW - 1), Version(10, 20, 30)) is Change.SEND
    assert change(row("failed", retry_at=None), Version(10, 20, 30)) is Change.SEND  # older ledger


def test_ignored_files_follow_upload_existing_and_ignore_a_chmod() -> None:
    assert change(row("ignored", ctime=None), Version(10, 20, 31)) is Change.KNOWN
    assert change(row("ignored"), Version(10, 20, 30), upload_existing=True) is Change.SEND


def test_files_being_sent_or_cleaned_up_are_left_alone() -> None:
    for status in ("queued", "sending", "deleted", "moved"):
        assert change(row(status), Version(10, 20, 31)) is Change.KNOWN


def test_the_back_off_doubles_from_a_minute_to_an_hour() -> None:
    delays = [retry_delay(n) for n in range(1, 10)]
    assert delays[:3] == [FIRST_RETRY_SECONDS, 2 * FIRST_RETRY_SECONDS, 4 * FIRST_RETRY_SECONDS]
    assert delays[-1] == LONGEST_RETRY_SECONDS and delays == sorted(delays)
    assert retry_delay(10_000) == LONGEST_RETRY_SECONDS
