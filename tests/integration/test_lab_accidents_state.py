"""Lab accidents on the watcher's side, against the real broker: its state lost, damaged or
on a full disk, the watched folder gone and back, permissions fixed, rewrites with the mtime
put back, crash loops, a secret in a broken config line."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
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


# Tests run as root, who reads any file: the watcher runs without the capabilities that
# bypass file permissions, so a mode-000 file is unreadable to it as to an ordinary user.
NO_DAC_OVERRIDE = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search")


def _row(state: Path, relpath: str) -> dict[str, object]:
    db = sqlite3.connect(f"file:{state / 'ledger.sqlite'}?mode=ro", uri=True)
    try:
        db.row_factory = sqlite3.Row
        found = db.execute("SELECT * FROM files WHERE relpath = ?", (relpath,)).fetchone()
        return dict(found) if found else {}
    finally:
        db.close()


def test_a_file_that_could_not_be_read_is_sent_once_chmod_fixes_it(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    root, state = tmp_path / "instrument", tmp_path / "state"
    root.mkdir()
    watcher = Watcher(root, config_file, topic, state, prefix=NO_DAC_OVERRIDE)
    locked = root / "locked.dat"
    locked.write_bytes(os.urandom(5000))
    locked.chmod(0)
    wait_for(lambda: watcher.statuses().get("locked.dat") == "failed")
    report = json.loads(labstream("status", "--state", state, "--no-refresh", "--json").stdout)
    [entry] = [f for f in report["files"] if f["path"] == "locked.dat"]
    assert "Permission denied" in entry["reason"] and entry["retry_at"]  # why, and when again
    locked.chmod(0o644)  # only the ctime changes
    wait_for(lambda: watcher.statuses().get("locked.dat") == "sent", timeout=60)
    assert watcher.stop() == 0
    out = tmp_path / "out"
    labstream("download", out, "--config", config_file, "--topic", topic, "--exit-when-idle", "4")
    assert (out / "locked.dat").read_bytes() == locked.read_bytes()


def test_a_rewrite_with_the_mtime_put_back_is_sent_again_and_a_chmod_alone_is_not(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    root, state = tmp_path / "instrument", tmp_path / "state"
    root.mkdir()
    watcher = Watcher(root, config_file, topic, state)
    data = root / "data.bin"
    data.write_bytes(os.urandom(4000))
    wait_for(lambda: watcher.statuses().get("data.bin") == "sent")
    first = _row(state, "data.bin")["sha256"]
    before = data.stat()
    new = os.urandom(4000)
    data.write_bytes(new)  # what `cp -p` and `rsync -t` do: same size, mtime put back
    os.utime(data, ns=(before.st_atime_ns, before.st_mtime_ns))
    wanted = hashlib.sha256(new).hexdigest()
    wait_for(lambda: _row(state, "data.bin")["sha256"] == wanted and watcher.statuses()["data.bin"] == "sent")
    assert first != wanted and "file rewritten with its size and mtime kept" in watcher.text()
    data.chmod(0o600)  # same bytes: looked at, hashed, not sent again
    wait_for(lambda: _row(state, "data.bin")["ctime_ns"] == data.stat().st_ctime_ns, timeout=60)
    assert watcher.stop() == 0
    assert chunk_counts(config_file, topic)["data.bin"] == 2
