"""`labstream status` reads as a report: one state per file, human sizes, and it says when
it could not refresh."""

from __future__ import annotations

import dataclasses
import datetime
import json
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from labstream.cli import cli
from labstream.outcomes import ReceiptOutcome
from labstream.receipts import Receipt
from labstream.state import WatchState
from labstream.upload.cleanup import Cleaner, CleanupPolicy
from labstream.upload.ledger import UploadLedger, UploadState
from labstream.upload.resume import LivePoint


def _state(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    config = tmp_path / "gone.config"
    config.write_text("[cluster]\nbootstrap.servers = 127.0.0.1:1\n")  # nobody listens there
    with UploadLedger(WatchState(state).ledger) as ledger:
        ledger.set("run1/big.raw", 3 << 20, 1, UploadState.SENT, sha256=b"\1" * 32)
        ledger.set("run1/queued.raw", 10, 1, UploadState.QUEUED)
        ledger.set_meta("receipts_topic", "t.receipts")
        ledger.set_meta("config", str(config))
        ledger.set_meta("root", str(tmp_path))
    return state


def test_json_has_one_state_per_file_and_says_it_was_not_refreshed(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["status", "--state", str(_state(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {f["path"]: f["state"] for f in report["files"]} == {
        "run1/big.raw": "sent",
        "run1/queued.raw": "waiting",
    }
    assert all("category" not in f and "status" not in f for f in report["files"])
    assert report["refreshed"] is False
    assert "not refreshed: broker unreachable" in result.stderr


def test_the_table_shows_human_sizes(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["status", "--state", str(_state(tmp_path)), "--no-refresh", "--all"])
    assert result.exit_code == 0, result.output
    assert "3.0 MiB" in result.stdout and "3145728" not in result.stdout


def test_times_are_iso_utc_in_json_and_local_in_the_table(tmp_path: Path) -> None:
    state = _state(tmp_path)
    before = time.time()
    with UploadLedger(WatchState(state).ledger) as ledger:
        ledger.set("run1/new.raw", 5, 1, UploadState.SENT, sha256=b"\2" * 32)
    result = CliRunner().invoke(cli, ["status", "--state", str(state), "--json", "--no-refresh"])
    entry = next(f for f in json.loads(result.stdout)["files"] if f["path"] == "run1/new.raw")
    changed = datetime.datetime.fromisoformat(entry["updated_at"])
    assert changed.utcoffset() == datetime.timedelta(0)
    assert before - 1 <= changed.timestamp() <= time.time() + 1
    assert entry["verified_at"] is None  # no trusted receipt yet
    table = CliRunner().invoke(cli, ["status", "--state", str(state), "--no-refresh", "--all"]).stdout
    local = changed.astimezone().strftime("%H:%M:%S")  # today's: the time alone
    assert local in table and "changed" in table and "verified" in table


def _json_report(state: Path) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["status", "--state", str(state), "--json", "--no-refresh"])
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _with_unsigned_receipt(tmp_path: Path, trusted_keys: str) -> Path:
    state = _state(tmp_path)
    with UploadLedger(WatchState(state).ledger) as ledger:
        ledger.set_meta("receipts_trusted_keys", trusted_keys)
        unsigned = Receipt("run1/big.raw", "01" * 32, 3 << 20, "verified", "archive", "h", "", 1.0)
        ledger.add_receipt(Receipt.from_bytes(unsigned.to_bytes()))
    return state


def test_unsigned_verified_receipts_show_as_verified_unsigned_when_no_key_is_trusted(tmp_path: Path) -> None:
    state = _with_unsigned_receipt(tmp_path, "")
    report = _json_report(state)
    assert {f["path"]: f["state"] for f in report["files"]}["run1/big.raw"] == "verified (unsigned)"
    assert report["totals"]["verified (unsigned)"] == 1
    assert report["totals"]["verified"] == 0 and report["totals"]["unauthenticated"] == 0  # keys kept
    table = CliRunner().invoke(cli, ["status", "--state", str(state), "--no-refresh"]).stdout
    assert "verified (unsigned): 1" in table and "unauthenticated: 0" in table


def test_unsigned_receipts_stay_unauthenticated_when_the_watcher_trusts_keys(tmp_path: Path) -> None:
    state = _with_unsigned_receipt(tmp_path, str(tmp_path / "archive.pub"))
    report = _json_report(state)
    assert {f["path"]: f["state"] for f in report["files"]}["run1/big.raw"] == "unauthenticated"
    assert report["totals"]["verified (unsigned)"] == 0


def test_a_live_file_being_sent_shows_as_live_with_the_bytes_acknowledged_so_far(tmp_path: Path) -> None:
    state = _state(tmp_path)
    with UploadLedger(WatchState(state).ledger) as ledger:
        ledger.set("run1/shots.csv", 0, 1, UploadState.SENDING)
        ledger.save_live_point(
            "run1/shots.csv", LivePoint(b"\2" * 16, 1, 1 << 19, 5 << 20, b"\3" * 32, 9, 0.0)
        )
    result = CliRunner().invoke(cli, ["status", "--state", str(state), "--json", "--no-refresh"])
    report = json.loads(result.stdout)
    live = next(f for f in report["files"] if f["path"] == "run1/shots.csv")
    assert (live["state"], live["live_sent"], report["totals"]["live"]) == ("live", 5 << 20, 1)
    shown = CliRunner().invoke(cli, ["status", "--state", str(state), "--no-refresh"])
    assert "live, 5.0 MiB sent and acknowledged so far" in shown.output


def _live_receipt(size: int, file_id: bytes, *, group: str = "archive", source: str = "pc-1") -> Receipt:
    receipt = Receipt.outgoing(
        "run1/shots.csv",
        "ab" * 32,
        size,
        ReceiptOutcome.LIVE,
        group,
        "h",
        source=source,
        file_id=file_id.hex(),
    )
    return dataclasses.replace(receipt, authenticated=True)


def _live_with_receipts(
    tmp_path: Path, receipts: list[Receipt], trusted: str = "archive.pub"
) -> dict[str, Any]:
    """A live send of 5 MiB acknowledged, the `receipts` given to the watcher's cleaner."""
    tmp_path.mkdir(exist_ok=True)
    state = _state(tmp_path)
    with UploadLedger(WatchState(state).ledger) as ledger:
        ledger.set_meta("receipts_trusted_keys", trusted)
        ledger.set("run1/shots.csv", 0, 1, UploadState.SENDING)
        ledger.save_live_point(
            "run1/shots.csv", LivePoint(b"\2" * 16, 1, 1 << 19, 5 << 20, b"\3" * 32, 9, 0.0)
        )
        cleaner = Cleaner(tmp_path, ledger, CleanupPolicy(after_verified_by=1), source="pc-1")
        for receipt in receipts:
            cleaner.on_live(receipt)
    report = _json_report(state)
    return next(f for f in report["files"] if f["path"] == "run1/shots.csv")


def test_a_live_file_shows_the_largest_prefix_verified_downstream_by_trusted_live_receipts(
    tmp_path: Path,
) -> None:
    live = _live_with_receipts(
        tmp_path,
        [_live_receipt(3 << 20, b"\2" * 16), _live_receipt(1 << 20, b"\2" * 16)],  # late, smaller
    )
    assert (live["state"], live["live_verified"], live["live_verified_by"]) == ("live", 3 << 20, ["archive"])
    state = tmp_path / "state"
    shown = CliRunner().invoke(cli, ["status", "--state", str(state), "--no-refresh"]).output
    assert "live, 3.0 MiB verified so far (by archive), 5.0 MiB sent and acknowledged" in shown


def test_live_receipts_of_another_send_or_another_instrument_are_not_counted(tmp_path: Path) -> None:
    live = _live_with_receipts(
        tmp_path,
        [
            _live_receipt(3 << 20, b"\7" * 16),  # an earlier send of that path
            _live_receipt(4 << 20, b"\2" * 16, source="pc-2"),  # another instrument's
        ],
    )
    assert (live["live_verified"], live["live_verified_by"]) == (0, [])


def test_an_unsigned_live_receipt_counts_only_where_no_key_is_trusted(tmp_path: Path) -> None:
    unsigned = dataclasses.replace(_live_receipt(2 << 20, b"\2" * 16), authenticated=False)
    assert _live_with_receipts(tmp_path / "a", [unsigned])["live_verified_unsigned"] == 0
    live = _live_with_receipts(tmp_path / "b", [unsigned], trusted="")
    assert (live["live_verified"], live["live_verified_unsigned"]) == (0, 2 << 20)
