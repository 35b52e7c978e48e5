"""Helpers to run `labstream watch` as a real process and inspect a topic."""

from __future__ import annotations

import collections
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from labstream.config import load_config
from labstream.kafka import Consumer, consumer_settings
from labstream.wire import decode


class Watcher:
    def __init__(self, root: Path, config: Path, topic: str, state: Path, *extra: str) -> None:
        self.state = state
        self.log = state.parent / f"{state.name}-stderr.log"
        self._err = open(self.log, "ab")  # noqa: SIM115 - closed in wait()
        args = ["watch", root, "--config", config, "--topic", topic, "--state", state,
                "--settle-seconds", "1", "--rescan-seconds", "5", "--update-seconds", "-1", *extra]
        self.proc = subprocess.Popen([sys.executable, "-m", "labstream", *map(str, args)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err)
        wait_for(lambda: "watching folder=" in self.text() or self.proc.poll() is not None)
        assert self.proc.poll() is None, self.text()

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def statuses(self) -> dict[str, str]:
        db = sqlite3.connect(f"file:{self.state / 'ledger.sqlite'}?mode=ro", uri=True)
        try:
            return dict(db.execute("SELECT relpath, status FROM files").fetchall())
        finally:
            db.close()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.wait(timeout)
        self.stop_seconds = time.monotonic() - started
        return code

    def wait(self, timeout: float) -> int:
        """Wait for the process to end by itself; release its pipes and log file."""
        code = self.proc.wait(timeout)
        self._err.close()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe:
                pipe.close()
        return code


def wait_for(condition: object, timeout: float = 90.0, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(every)


def chunk_counts(config: Path, topic: str, idle: float = 4.0) -> collections.Counter[str]:
    """How many chunk messages the topic holds per relative path."""
    counts: collections.Counter[str] = collections.Counter()
    settings = consumer_settings(load_config(config), f"count-{time.monotonic_ns()}")
    with Consumer(settings, [topic]) as consumer:
        last = time.monotonic()
        while time.monotonic() - last < idle:
            records = consumer.consume(500, 0.5)
            if records:
                last = time.monotonic()
            for record in records:
                counts[decode(record.value).path] += 1
    return counts
