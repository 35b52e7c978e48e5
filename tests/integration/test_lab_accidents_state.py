"""Lab accidents on the watcher's side, against the real broker: its state lost, damaged or
on a full disk, the watched folder gone and back, permissions fixed, rewrites with the mtime
put back, crash loops, a secret in a broken config line."""

from __future__ import annotations

import shutil
from pathlib import Path

from .conftest import labstream
from .watchproc import Watcher, chunk_counts, wait_for

WATCH_ARGS = ("--settle-seconds", "1", "--rescan-seconds", "2", "--update-seconds", "-1")


def _watch_once(root: Path, config: Path, topic: str, state: Path, *extra: str) -> tuple[int, str]:
    """`labstream watch` expected to stop by itself: (exit status, stderr)."""
    done = labstream(
        "watch", root, "--config", config, "--topic", topic, "--state", state, *WATCH_ARGS, *extra,
        timeout=90, check=False,
    )  # fmt: skip
    return done.returncode, done.stderr


def test_a_lost_ledger_stops_with_the_choice_instead_of_ignoring_files_written_meanwhile(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    root, state = tmp_path / "instrument", tmp_path / "state"
    root.mkdir()
    first = Watcher(root, config_file, topic, state)
    (root / "before.txt").write_text("sent by the first watcher")
    wait_for(lambda: first.statuses().get("before.txt") == "sent")
    assert first.stop() == 0
    shutil.rmtree(state)  # a reinstall, a cleaned profile
    (root / "while-down.txt").write_text("written while the ledger was gone")
    code, err = _watch_once(root, config_file, topic, state)
    assert code == 1 and "Traceback" not in err
    [line] = [line for line in err.splitlines() if "--upload-existing" in line]
    assert "--ignore-existing" in line and "2 file(s)" in line and "lost ledger" in line
    again = Watcher(root, config_file, topic, state, "--upload-existing")
    wait_for(lambda: again.statuses().get("while-down.txt") == "sent")
    assert "new ledger: the files already in the folder are sent" in again.text()
    assert again.stop() == 0
    assert chunk_counts(config_file, topic)["while-down.txt"] == 1


def test_a_first_start_in_an_empty_folder_needs_no_choice(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    root = tmp_path / "instrument"
    root.mkdir()
    watcher = Watcher(root, config_file, topic, tmp_path / "state")
    (root / "new.txt").write_text("new")
    wait_for(lambda: watcher.statuses().get("new.txt") == "sent")
    assert watcher.stop() == 0


def test_a_damaged_ledger_stops_with_one_line_and_is_left_as_it_was(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    root, state = tmp_path / "instrument", tmp_path / "state"
    root.mkdir()
    state.mkdir()
    garbage = b"this is not a SQLite database\n" * 100
    (state / "ledger.sqlite").write_bytes(garbage)
    code, err = _watch_once(root, config_file, topic, state)
    assert code == 1 and "Traceback" not in err
    [line] = [line for line in err.splitlines() if "ledger.sqlite" in line]
    assert "not a database" in line
    assert (state / "ledger.sqlite").read_bytes() == garbage


def test_a_config_line_without_equals_never_shows_the_secret(tmp_path: Path, bootstrap: str) -> None:
    config = tmp_path / "lab.config"
    config.write_text(f"[cluster]\nbootstrap.servers = {bootstrap}\nsasl.password Hunter2-s3cret\n")
    root = tmp_path / "instrument"
    root.mkdir()
    for args in (("config", "show", config), ("watch", root, "--config", config, "--topic", "t")):
        done = labstream(*args, check=False, timeout=60)
        assert done.returncode == 1
        assert "Hunter2" not in done.stdout + done.stderr
        assert "line 3" in done.stderr
