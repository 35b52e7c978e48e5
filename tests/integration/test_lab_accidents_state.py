"""Lab accidents on the watcher's side, against the real broker: its state lost, damaged or
on a full disk, the watched folder gone and back, permissions fixed, rewrites with the mtime
put back, crash loops, a secret in a broken config line."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

from labstream.config import load_config
from labstream.kafka import Consumer, consumer_settings

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


def _fill(folder: Path) -> Path:
    """Fill the filesystem of `folder` to the last byte; the filler, to delete later."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for piece in (65536, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * piece)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def _problems(state: Path) -> list[str]:
    report = json.loads(labstream("status", "--state", state, "--no-refresh", "--json").stdout)
    return list(report["problems"])


def _heartbeat_problems(config: Path, topic: str, folder: Path) -> list[str]:
    """The `problems` field of heartbeats from the watcher of `folder`, until one has some."""
    settings = consumer_settings(load_config(config), f"hb-{time.monotonic_ns()}")
    found = []
    deadline = time.monotonic() + 20
    with Consumer(settings, [topic]) as consumer:
        while time.monotonic() < deadline and not any(found):
            for record in consumer.consume(100, 0.5):
                beat = json.loads(record.value)
                if beat.get("folder") == str(folder):
                    found.append(str(beat.get("problems", "")))
    return found


def test_a_full_state_folder_is_said_once_per_10s_without_tracebacks_and_nothing_is_lost(
    small_disk: Path, tmp_path: Path, config_file: Path, topic: str
) -> None:
    # The state folder is the small disk itself: the watcher's stderr log lands beside it.
    root, state, beats = tmp_path / "instrument", small_disk, f"{topic}.heartbeats"
    root.mkdir()
    watcher = Watcher(root, config_file, topic, state, "--heartbeat-seconds", "1", "--heartbeat-topic", beats)
    (root / "first.txt").write_text("before the disk filled")
    wait_for(lambda: watcher.statuses().get("first.txt") == "sent")
    filler = _fill(small_disk)
    started = len(watcher.text().splitlines())
    for i in range(30):
        (root / f"during-{i:02d}.dat").write_bytes(os.urandom(2000))
    wait_for(lambda: "state folder cannot be written" in watcher.text(), timeout=60)
    time.sleep(21)  # two more 10 s periods
    during = watcher.text().splitlines()[started:]
    said = [line for line in during if "state folder cannot be written" in line]
    assert 1 <= len(said) <= 4, said
    assert len(during) < 80, "\n".join(during[:100])
    assert "Traceback" not in watcher.text() and "Logging error" not in watcher.text()
    assert any("its ledger cannot grow" in problem for problem in _problems(state))
    assert any("state folder cannot be written" in p for p in _heartbeat_problems(config_file, beats, root))
    filler.unlink()
    wait_for(lambda: list(watcher.statuses().values()).count("sent") == 31, timeout=120)
    assert "state folder takes writes again" in watcher.text()
    assert watcher.stop() == 0
    assert "Traceback" not in watcher.text()


def test_a_watched_folder_that_disappears_is_reported_and_watched_again_when_back(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    root, away, state = tmp_path / "instrument", tmp_path / "moved-away", tmp_path / "state"
    root.mkdir()
    watcher = Watcher(root, config_file, topic, state)
    (root / "before.txt").write_text("before")
    wait_for(lambda: watcher.statuses().get("before.txt") == "sent")
    root.rename(away)  # deleted, moved, or the share it lives on unmounted
    wait_for(lambda: "watched folder is gone" in watcher.text(), timeout=30)
    assert any("is gone" in problem for problem in _problems(state))
    time.sleep(12)
    said = [line for line in watcher.text().splitlines() if "watched folder is gone" in line]
    assert 1 <= len(said) <= 3, said
    away.rename(root)
    wait_for(lambda: "watched folder is back" in watcher.text(), timeout=30)
    (root / "after.txt").write_text("after it came back")
    wait_for(lambda: watcher.statuses().get("after.txt") == "sent", timeout=60)
    assert watcher.stop() == 0
    assert "Traceback" not in watcher.text() and "vanished" not in watcher.text()


def test_an_unmounted_share_is_reported_and_watched_again_when_mounted(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    root, state = tmp_path / "share", tmp_path / "state"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(root)], check=True)
    try:
        watcher = Watcher(root, config_file, topic, state)
        (root / "before.txt").write_text("before")
        wait_for(lambda: watcher.statuses().get("before.txt") == "sent")
        subprocess.run(["umount", "-l", str(root)], check=True)
        wait_for(lambda: "is no longer mounted" in watcher.text(), timeout=30)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(root)], check=True)
        wait_for(lambda: "watched folder is back" in watcher.text(), timeout=30)
        (root / "after.txt").write_text("after the share came back")
        wait_for(lambda: watcher.statuses().get("after.txt") == "sent", timeout=60)
        assert watcher.stop() == 0
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


def test_a_crash_loop_sends_twice_only_files_sending_at_a_kill_and_loses_none(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    """What the README states: after kill -9 a file may go complete twice only if its send had
    begun and its acknowledgement was not recorded (`sending` in the ledger at the kill)."""
    root, state = tmp_path / "instrument", tmp_path / "state"
    root.mkdir()
    names = {f"f{i:03d}.dat" for i in range(300)}
    for name in names:
        (root / name).write_bytes(os.urandom(2000))  # one chunk each: a send is one message
    at_risk: set[str] = set()
    for _ in range(3):
        # 100 files a second: each kill lands while files are being sent
        watcher = Watcher(root, config_file, topic, state, "--upload-existing", "--max-rate", "200KB/s")
        target = list(watcher.statuses().values()).count("sent") + 50
        wait_for(lambda: list(watcher.statuses().values()).count("sent") >= target)  # noqa: B023
        watcher.proc.kill()
        watcher.wait(30)
        at_risk |= {path for path, status in watcher.statuses().items() if status == "sending"}
    last = Watcher(root, config_file, topic, state, "--upload-existing")
    wait_for(lambda: list(last.statuses().values()).count("sent") == len(names))
    assert last.stop() == 0
    counts = chunk_counts(config_file, topic)
    assert set(counts) == names  # none lost
    twice = {path for path, n in counts.items() if n > 1}
    assert twice <= at_risk, sorted(twice - at_risk)
