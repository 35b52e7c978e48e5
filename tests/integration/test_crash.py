"""kill -9 of a downloader in the middle of a file: the restart re-reads, nothing is lost."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from labstream.wire import Chunk, encode

from .conftest import labstream
from .test_bad_input import produce_raw
from .watchproc import wait_for

CHUNK = 4096


def test_kill_9_mid_file_then_restart_completes_it(tmp_path: Path, config_file: Path, topic: str) -> None:
    content = os.urandom(40 * CHUNK)
    sha = hashlib.sha256(content).digest()
    values = [
        (
            b"big.bin",
            encode(Chunk("big.bin", len(content), sha, i, 40, CHUNK, content[i * CHUNK : (i + 1) * CHUNK])),
        )
        for i in range(40)
    ]
    small = (
        b"small.txt",
        encode(Chunk("small.txt", 5, hashlib.sha256(b"small").digest(), 0, 1, CHUNK, b"small")),
    )
    produce_raw(config_file, topic, [values[0], small, *values[1:25]])  # one partition: the key
    out = tmp_path / "out"
    args = ["download", out, "--config", config_file, "--topic", topic, "--group", f"{topic}-g"]
    first = subprocess.Popen(
        [sys.executable, "-m", "labstream", *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: (out / "small.txt").exists(), timeout=60, every=0.05)
    time.sleep(2.0)  # the auto-commit interval passes: whatever is stored gets committed
    first.send_signal(signal.SIGKILL)
    first.communicate()
    assert not (out / "big.bin").exists()
    produce_raw(config_file, topic, values[25:])
    report = labstream(*args, "--exit-when-idle", "4").stdout
    assert (out / "big.bin").read_bytes() == content
    assert "downloaded 1 verified file(s)" in report  # small.txt again counts as a duplicate
    assert (out / "small.txt").read_bytes() == b"small"


def test_sigterm_stops_cleanly_with_exit_0(tmp_path: Path, config_file: Path, topic: str) -> None:
    produce_raw(
        config_file,
        topic,
        [(b"a.txt", encode(Chunk("a.txt", 1, hashlib.sha256(b"a").digest(), 0, 1, CHUNK, b"a")))],
    )
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "labstream",
            "download",
            str(out),
            "--config",
            str(config_file),
            "--topic",
            topic,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: (out / "a.txt").exists(), timeout=60, every=0.05)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert time.monotonic() - started < 15
    assert "downloaded 1 verified file(s)" in stdout
    assert "stopping cleanly" in stderr
