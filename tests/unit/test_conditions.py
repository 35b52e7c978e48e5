"""Lasting local problems said quietly (labstream.conditions) and ledger writes that wait for
a writable state folder (labstream.upload.ledgerwrites)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from labstream.conditions import Conditions
from labstream.errors import OutputError
from labstream.receipts import Receipt
from labstream.upload.cleanup import Cleaner, CleanupPolicy
from labstream.upload.ledger import UploadLedger, UploadState
from labstream.upload.ledgerwrites import STATE_UNWRITABLE, LedgerWrites


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_condition_is_said_once_per_period_and_once_when_it_ends(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    conditions = Conditions(logging.getLogger("test.conditions"), every_seconds=10.0, clock=clock)
    caplog.set_level(logging.INFO, "test.conditions")
    for tick in range(200):  # 20 s of failures, ten a second
        clock.now = tick / 10
        conditions.report("disk", f"disk full try={tick}")
    assert [r.levelno for r in caplog.records] == [logging.ERROR] * 2
    assert conditions.current() == {"disk": "disk full try=199"}
    clock.now = 25.0
    conditions.clear("disk", "disk writable again")
    conditions.clear("disk", "disk writable again")  # said once
    assert [r.getMessage() for r in caplog.records][2:] == ["disk writable again (after 25 s)"]
    assert conditions.current() == {} and not any(r.exc_info for r in caplog.records)


class FlakyLedger:
    """Fails every write while `full`, like a ledger on a full disk."""

    def __init__(self, ledger: UploadLedger) -> None:
        self.ledger = ledger
        self.full = False


def _write(flaky: FlakyLedger, relpath: str, status: UploadState) -> None:
    if flaky.full:
        raise OutputError("ledger: database or disk is full")
    flaky.ledger.set(relpath, 1, 1, status)


def test_writes_that_must_not_be_lost_wait_in_order_and_the_end_is_said(tmp_path: Path) -> None:
    with UploadLedger(tmp_path / "ledger.sqlite") as ledger:
        flaky = FlakyLedger(ledger)
        conditions = Conditions(logging.getLogger("test.writes"))
        writes = LedgerWrites(ledger, conditions)
        flaky.full = True
        writes.must(lambda _: _write(flaky, "a", UploadState.SENDING))
        writes.must(lambda _: _write(flaky, "a", UploadState.SENT))
        assert not writes.attempt(lambda _: _write(flaky, "b", UploadState.QUEUED))  # caller redoes it
        assert conditions.holds(STATE_UNWRITABLE) and writes.waiting() == 2
        assert not writes.catch_up()
        flaky.full = False
        assert not writes.attempt(lambda _: _write(flaky, "b", UploadState.QUEUED))  # not before "a"
        assert writes.catch_up() and writes.waiting() == 0
        assert ledger.get("a").status == "sent"  # type: ignore[union-attr]
        assert not conditions.holds(STATE_UNWRITABLE)


class FullLedger(UploadLedger):
    """A ledger whose receipts table is on a full disk."""

    def add_receipt(self, receipt: Receipt) -> None:
        raise OutputError(f"ledger {self.path}: database or disk is full")


def test_a_receipt_the_state_folder_cannot_take_is_one_condition_not_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a.dat").write_bytes(b"a")
    conditions = Conditions(logging.getLogger("test.receipts"))
    caplog.set_level(logging.INFO)
    with FullLedger(tmp_path / "ledger.sqlite") as ledger:
        ledger.set("a.dat", 1, 1, UploadState.SENT, sha256=b"\1" * 32)
        cleaner = Cleaner(tmp_path, ledger, CleanupPolicy(), conditions)
        for _ in range(50):
            cleaner.on_receipt(Receipt("a.dat", "01" * 32, 1, "verified", "g", "host", "", 1.0))
    assert conditions.holds(STATE_UNWRITABLE)
    lines = [r for r in caplog.records if "receipt is not recorded" in r.getMessage()]
    assert len(lines) == 1 and not any(r.exc_info for r in caplog.records)
