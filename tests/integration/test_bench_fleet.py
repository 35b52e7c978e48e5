"""bench/fleet.py runs end to end on the real broker: a small fleet, every file checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FLEET = Path(__file__).parents[2] / "bench" / "fleet.py"


def test_fleet_bench_reports_every_file_exactly_once(tmp_path: Path, bootstrap: str) -> None:
    out = tmp_path / "fleet.json"
    args = ["--instruments", "2", "--seconds", "15", "--interval", "2", "--max-size", "512KiB"]
    args += ["--partitions", "4", "--downloaders", "2", "--bootstrap", bootstrap]
    args += ["--idle-seconds", "0", "--scratch", str(tmp_path), "--out", str(out)]
    done = subprocess.run([sys.executable, str(FLEET), *args], capture_output=True, text=True, timeout=120)
    assert out.exists(), done.stdout + done.stderr
    once = json.loads(out.read_text())["exactly_once"]
    assert once["written"] >= 10  # 2 instruments, a file every 2 s each, for 15 s
    assert once["verified_receipts"] == once["written"]
    assert {k: v for k, v in once.items() if k not in ("written", "verified_receipts")} == {
        "missing": 0,
        "in_two_folders": 0,
        "extra_files": 0,
        "corrupt": 0,
        "files_without_receipt": 0,
        "files_verified_twice": 0,
        "failed_receipts": 0,
        "ok": True,
    }
