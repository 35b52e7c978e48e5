"""bench/live.py --big runs end to end on the real broker: a small file written steadily while
`watch --live` and `download` run, the figures it names reported, the files identical."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LIVE = Path(__file__).parents[2] / "bench" / "live.py"
SIZE = 8 << 20


def test_live_big_bench_reports_identical_files_memory_lag_and_removes_its_files(
    tmp_path: Path, bootstrap: str
) -> None:
    out, scratch = tmp_path / "big.json", tmp_path / "scratch"
    args = ["--big", "--size", "8MiB", "--duration", "4", "--block", "1MiB", "--interval", "1"]
    args += ["--bootstrap", bootstrap, "--scratch", str(scratch), "--json", str(out)]
    done = subprocess.run([sys.executable, str(LIVE), *args], capture_output=True, text=True, timeout=180)
    assert out.exists(), done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert result["identical"] is True
    assert result["sha256_source"] == result["sha256_archive"]
    assert result["final_bytes"] == result["archive_bytes"] == SIZE
    assert result["sends"] == 1
    assert 1.0 <= result["payload_ratio"] <= 1.05
    assert result["message_ratio"] >= result["payload_ratio"]
    for side in ("watcher", "downloader"):
        rss = result["rss_mib"][side]
        assert set(rss) == {"start", "first_minute", "max", "end", "growth"}
        assert 0 < rss["start"] <= rss["max"] and rss["end"] <= rss["max"]
        assert rss["growth"] == rss["end"] - rss["first_minute"]
    for figure in ("lag_bytes", "lag_s", "lag_over_interval"):
        spread = result[figure]
        assert set(spread) == {"p50", "p95", "max"} and 0 <= spread["p50"] <= spread["p95"] <= spread["max"]
    assert result["lag_over_interval"]["max"] == result["lag_s"]["max"] / result["interval_s"]
    assert result["samples"] >= 4  # one a second over 4 s of writing
    assert "files identical" in done.stdout and "x the interval" in done.stdout
    assert list(scratch.iterdir()) == []  # the run folder with both files is gone
