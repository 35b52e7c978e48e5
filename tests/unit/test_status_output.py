"""`labstream status` reads as a report: one state per file, human sizes, and it says when
it could not refresh."""

from __future__ import annotations

import json
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
