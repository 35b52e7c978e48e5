"""The watcher's side of live files: growth reported while a matching file is written, and a
live file counted as finished only after live_close_seconds."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from labstream.config import load_config
from labstream.errors import ConfigError
from labstream.settings import watch_settings
from labstream.watch import DirectoryWatcher, ReadyFile


def test_a_live_file_is_reported_as_it_grows_and_closed_only_after_its_close_time(tmp_path: Path) -> None:
    grown: list[ReadyFile] = []
    ready: list[tuple[str, float]] = []
    closed = threading.Event()

    def on_ready(found: ReadyFile) -> None:
        ready.append((found.relpath, time.monotonic()))
        if found.relpath == "shots.csv":
            closed.set()

    watcher = DirectoryWatcher(
        tmp_path,
        on_ready,
        is_known=lambda *_: False,
        settle_seconds=0.3,
        rescan_seconds=3600,
        live=("*.csv",),
        live_seconds=0.3,
        live_close_seconds=2.0,
        on_grown=grown.append,
    )
    with watcher:
        (tmp_path / "other.raw").write_bytes(b"r" * 10)
        for i in range(6):
            with open(tmp_path / "shots.csv", "ab") as handle:
                handle.write(f"{i},{time.time()}\n".encode())
            last_write = time.monotonic()
            time.sleep(0.4)
        assert closed.wait(15)
    assert [r.relpath for r in grown] and all(r.grown and r.relpath == "shots.csv" for r in grown)
    sizes = [r.size for r in grown]
    assert sizes == sorted(sizes) and len(set(sizes)) >= 3  # reported as it grew, each size once
    closed_at = dict(ready)["shots.csv"]
    assert closed_at - last_write >= 1.9  # the live close time, not the 0.3 s settle time
    assert "other.raw" in dict(ready)  # other files settle as before


def test_a_live_file_that_gained_a_segment_is_reported_before_its_interval(tmp_path: Path) -> None:
    grown: list[ReadyFile] = []
    watcher = DirectoryWatcher(
        tmp_path,
        lambda _: None,
        is_known=lambda *_: False,
        rescan_seconds=3600,
        live=("*.bin",),
        live_seconds=60.0,
        live_segment_bytes=1000,
        on_grown=grown.append,
    )
    with watcher, open(tmp_path / "run.bin", "ab", buffering=0) as handle:
        handle.write(b"x" * 10)  # less than a segment: waits for the 60 s interval
        time.sleep(1.0)
        assert grown == []
        for _ in range(3):
            handle.write(b"y" * 1500)
            time.sleep(1.0)
    assert [r.size for r in grown] == [1510, 3010, 4510]


def test_live_settings_come_from_the_file_and_need_wire_v2(tmp_path: Path) -> None:
    folder = tmp_path / "instrument"
    folder.mkdir()
    config = tmp_path / "lab.config"
    config.write_text(
        f"[cluster]\nbootstrap.servers = 127.0.0.1:1\n[labstream]\nfile_directory = {folder}\n"
        f"topic_name = t\nstate = {tmp_path / 'state'}\nlive = *.csv, *.log\nlive_interval = 5\n"
    )
    stream = watch_settings(load_config(config), {}).stream
    assert (stream.live, stream.live_interval, stream.live_close_seconds) == (("*.csv", "*.log"), 5.0, 60.0)
    with pytest.raises(ConfigError, match="--live needs labstream's wire format"):
        watch_settings(load_config(config), {"wire": "openmsistream"})
