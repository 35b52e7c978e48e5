"""`labstream status` reads as a report: one state per file, human sizes, and it says when
it could not refresh."""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path

from click.testing import CliRunner

from labstream.cli import cli
from labstream.state import WatchState
from labstream.upload.ledger import UploadLedger, UploadState


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
