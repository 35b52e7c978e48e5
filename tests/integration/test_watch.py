"""`labstream watch` against the real broker; downloaded copies checked byte for byte."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

from .conftest import labstream
from .test_roundtrip import tree
from .watchproc import Watcher, chunk_counts, wait_for


def download(out: Path, config: Path, topic: str) -> str:
    return labstream("download", out, "--config", config, "--topic", topic, "--exit-when-idle", "4").stdout


def test_many_files_at_once_and_new_nested_folders(tmp_path: Path, config_file: Path, topic: str) -> None:
    root = tmp_path / "instrument"
    root.mkdir()
    watcher = Watcher(root, config_file, topic, tmp_path / "state", "--chunk-size", "65536")
    for i in range(500):
        (root / f"s{i:03d}.dat").write_bytes(os.urandom(100 + i * 13))
    for depth in range(1, 4):
        folder = root.joinpath(*[f"level {d} µ" for d in range(depth)])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"nested-{depth}.bin").write_bytes(os.urandom(200_000 * depth))
    wait_for(lambda: list(watcher.statuses().values()).count("sent") == 503)
    assert watcher.stop() == 0
    out = tmp_path / "out"
    assert "downloaded 503 verified file(s)" in download(out, config_file, topic)
    assert tree(out) == tree(root)


def test_slowly_written_file_arrives_once_and_complete(tmp_path: Path, config_file: Path, topic: str) -> None:
    root = tmp_path / "instrument"
    root.mkdir()
    watcher = Watcher(root, config_file, topic, tmp_path / "state")
    with open(root / "slow.csv", "wb") as handle:
        for i in range(25):  # 5 seconds of small appends, longer than the settle time
            handle.write(b"%d,%d\n" % (i, i * i) * 50)
            handle.flush()
            time.sleep(0.2)
    wait_for(lambda: watcher.statuses().get("slow.csv") == "sent")
    assert watcher.stop() == 0
    counts = chunk_counts(config_file, topic)
    assert counts == {"slow.csv": 1}
    out = tmp_path / "out"
    download(out, config_file, topic)
    assert (out / "slow.csv").read_bytes() == (root / "slow.csv").read_bytes()


def test_kill_9_mid_file_resumes_and_never_resends_completed(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    root = tmp_path / "instrument"
    root.mkdir()
    state = tmp_path / "state"
    first = Watcher(root, config_file, topic, state, "--chunk-size", "16384")
    for i in range(5):
        (root / f"done{i}.txt").write_bytes(os.urandom(1000))
    wait_for(lambda: list(first.statuses().values()).count("sent") == 5)
    (root / "big.bin").write_bytes(os.urandom(150 * 1024 * 1024))
    wait_for(lambda: first.statuses().get("big.bin") == "sending", every=0.02)
    first.stop(signal.SIGKILL)
    (root / "while-down.txt").write_bytes(b"appeared while the watcher was down")
    second = Watcher(root, config_file, topic, state, "--chunk-size", "16384")
    wait_for(
        lambda: (
            second.statuses().get("big.bin") == "sent" and second.statuses().get("while-down.txt") == "sent"
        ),
        timeout=180,
    )
    assert second.stop() == 0
    assert "resuming file interrupted by a stop or crash file=big.bin" in second.text()
    counts = chunk_counts(config_file, topic)
    assert all(counts[f"done{i}.txt"] == 1 for i in range(5)), counts
    assert counts["while-down.txt"] == 1
    assert counts["big.bin"] >= 150 * 64  # all of it, at least once
    out = tmp_path / "out"
    download(out, config_file, topic)
    assert tree(out) == tree(root)


def test_existing_files_ignored_or_sent_as_asked(tmp_path: Path, config_file: Path, topic: str) -> None:
    root = tmp_path / "instrument"
    (root / "old").mkdir(parents=True)
    (root / "old" / "before.txt").write_text("was here first")
    default = Watcher(root, config_file, topic, tmp_path / "state-default", "--ignore-existing")
    (root / "after.txt").write_text("new")
    wait_for(lambda: default.statuses().get("after.txt") == "sent")
    assert default.statuses()["old/before.txt"] == "ignored"
    assert default.stop() == 0
    assert set(chunk_counts(config_file, topic)) == {"after.txt"}
    eager = Watcher(root, config_file, topic, tmp_path / "state-eager", "--upload-existing")
    wait_for(lambda: eager.statuses().get("old/before.txt") == "sent")
    assert eager.stop() == 0
    out = tmp_path / "out"
    download(out, config_file, topic)
    assert tree(out) == tree(root)


def test_file_deleted_before_it_was_sent_is_logged_not_fatal(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    root = tmp_path / "instrument"
    root.mkdir()
    watcher = Watcher(root, config_file, topic, tmp_path / "state", "--settle-seconds", "3")
    (root / "ephemeral.tmpdata").write_text("gone soon")
    time.sleep(1.0)
    (root / "ephemeral.tmpdata").unlink()
    (root / "kept.txt").write_text("kept")
    wait_for(lambda: watcher.statuses().get("kept.txt") == "sent")
    wait_for(lambda: "file vanished before it could be sent file=ephemeral.tmpdata" in watcher.text())
    assert watcher.proc.poll() is None
    assert watcher.stop() == 0


def test_sigterm_during_a_busy_stream_exits_0_and_loses_nothing(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    root = tmp_path / "instrument"
    root.mkdir()
    state = tmp_path / "state"
    watcher = Watcher(root, config_file, topic, state, "--chunk-size", "16384")
    for i in range(200):
        (root / f"busy{i:03d}.bin").write_bytes(os.urandom(50_000))
    (root / "large.bin").write_bytes(os.urandom(80 * 1024 * 1024))
    wait_for(lambda: "sent" in watcher.statuses().values(), every=0.02)
    assert watcher.stop(signal.SIGTERM) == 0
    assert watcher.stop_seconds < 30
    restarted = Watcher(root, config_file, topic, state, "--chunk-size", "16384")
    wait_for(lambda: list(restarted.statuses().values()).count("sent") == 201, timeout=180)
    assert restarted.stop() == 0
    out = tmp_path / "out"
    download(out, config_file, topic)
    assert tree(out) == tree(root)
    digest = hashlib.sha256((root / "large.bin").read_bytes()).hexdigest()
    assert tree(out)["large.bin"] == digest


def test_quit_on_the_console(tmp_path: Path, config_file: Path, topic: str) -> None:
    root = tmp_path / "instrument"
    root.mkdir()
    watcher = Watcher(root, config_file, topic, tmp_path / "state")
    (root / "a.txt").write_text("a")
    wait_for(lambda: watcher.statuses().get("a.txt") == "sent")
    assert watcher.proc.stdin is not None
    watcher.proc.stdin.write(b"c\n")
    watcher.proc.stdin.flush()
    wait_for(lambda: "ledger (all time): sent 1" in watcher.text())  # readable, not a Python dict
    watcher.proc.stdin.write(b"q\n")
    watcher.proc.stdin.flush()
    assert watcher.wait(30) == 0
    assert (tmp_path / "state" / "watch.log").read_text().count("file sent file=a.txt") == 1
