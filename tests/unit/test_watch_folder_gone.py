"""A watched folder that disappears is a condition, said and ended; once back it is watched
anew (its OS events died with it) and files in it are found again."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from labstream.conditions import Conditions
from labstream.watch import DirectoryWatcher, ReadyFile
from labstream.watch.watcher import FOLDER_GONE


def _until(condition: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_folder_moved_away_is_reported_and_watched_again_when_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root, away = tmp_path / "instrument", tmp_path / "away"
    root.mkdir()
    found: list[str] = []
    seen = threading.Event()

    def on_ready(ready: ReadyFile) -> None:
        found.append(ready.relpath)
        seen.set()

    conditions = Conditions(logging.getLogger("test.gone"))
    caplog.set_level(logging.INFO, "test.gone")
    watcher = DirectoryWatcher(
        root,
        on_ready,
        is_known=lambda *_: False,
        settle_seconds=0.2,
        rescan_seconds=3600,
        conditions=conditions,
    )
    with watcher:
        root.rename(away)
        _until(lambda: conditions.holds(FOLDER_GONE))
        assert "is gone" in conditions.current()[FOLDER_GONE]
        away.rename(root)
        _until(lambda: not conditions.holds(FOLDER_GONE))
        (root / "after.dat").write_bytes(b"x" * 100)  # found by the events of the folder as it is now
        assert seen.wait(15), "a file written after the folder came back was not found"
    assert found == ["after.dat"]
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "is gone" in m]) == 1
    assert len([m for m in messages if "is back" in m]) == 1
