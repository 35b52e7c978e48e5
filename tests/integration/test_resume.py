"""kill -9 of the watcher (and of the downloader) at ~60 % of a large file: it resumes.

The restarted watcher continues the send from its last acknowledged chunk with the same
file id; the restarted downloader re-reads the send from its first chunk (where its commits
were held) and takes the continuation. Less than half of the file goes twice.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import time
from pathlib import Path

from labstream.config import load_config
from labstream.kafka import Consumer, consumer_settings
from labstream.wire import decode

from .watchproc import Watcher, start_download, wait_for

SIZE = 256 << 20
CHUNK = 512 * 1024


def acked_chunks(state: Path, relpath: str) -> int:
    """The acknowledged prefix the watcher has checkpointed for `relpath` (0 if none)."""
    db = sqlite3.connect(f"file:{state / 'ledger.sqlite'}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT resume_acked FROM files WHERE relpath = ?", (relpath,)).fetchone()
    except sqlite3.OperationalError:  # the ledger is being created
        return 0
    finally:
        db.close()
    return int(row[0] or 0) if row else 0


def payload_bytes(config: Path, topic: str, relpath: str, idle: float = 4.0) -> int:
    """Payload bytes of every chunk of `relpath` in the topic, counted from the topic itself."""
    total = 0
    settings = consumer_settings(load_config(config), f"count-{time.monotonic_ns()}")
    with Consumer(settings, [topic]) as consumer:
        last = time.monotonic()
        while time.monotonic() - last < idle:
            records = consumer.consume(500, 0.5)
            if records:
                last = time.monotonic()
            total += sum(len(c.data) for c in map(decode, (r.value for r in records)) if c.path == relpath)
    return total


def test_kill_9_at_60_percent_resumes_without_sending_the_file_again(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    root, out, state = tmp_path / "instrument", tmp_path / "out", tmp_path / "state"
    root.mkdir()
    content = os.urandom(SIZE)
    staged = tmp_path / "big.bin"
    staged.write_bytes(content)
    # 64 MiB/s: the file takes ~4 s, so the kill lands mid-file on any machine.
    rate = ("--chunk-size", str(CHUNK), "--max-rate", "64MiB/s")
    group = ("--group", f"{topic}-g")
    watcher = Watcher(root, config_file, topic, state, *rate)
    downloader = start_download(out, config_file, topic, tmp_path / "download-1.log", *group)
    staged.rename(root / "big.bin")
    n = SIZE // CHUNK
    wait_for(lambda: acked_chunks(state, "big.bin") >= 0.6 * n, timeout=120, every=0.02)
    watcher.proc.send_signal(signal.SIGKILL)
    watcher.wait(30)
    at_kill = acked_chunks(state, "big.bin")
    assert at_kill < n and not (out / "big.bin").exists()
    downloader.send_signal(signal.SIGKILL)  # its partial copy is lost too
    downloader.wait(30)

    downloader = start_download(out, config_file, topic, tmp_path / "download-2.log", *group)
    watcher = Watcher(root, config_file, topic, state, *rate)
    try:
        wait_for(lambda: watcher.statuses().get("big.bin") == "sent", timeout=120)
        wait_for(lambda: (out / "big.bin").exists(), timeout=120)
    finally:
        downloader.send_signal(signal.SIGTERM)
        downloader.wait(60)
    assert watcher.stop() == 0
    assert f"resuming file=big.bin from chunk={at_kill + 1}/{n}" in watcher.text()
    assert hashlib.sha256((out / "big.bin").read_bytes()).digest() == hashlib.sha256(content).digest()
    produced = payload_bytes(config_file, topic, "big.bin")
    assert SIZE <= produced <= 1.5 * SIZE, produced / SIZE
