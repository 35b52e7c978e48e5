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

_running: list[Watcher] = []


def kill_leftovers() -> None:
    """Called after each test: a watcher a failed test left running is killed and reaped."""
    while _running:
        watcher = _running.pop()
        if watcher.proc.poll() is None:
            watcher.proc.kill()
        watcher.wait(30)


class Watcher:
    def __init__(
        self, root: Path, config: Path, topic: str, state: Path, *extra: str, prefix: tuple[str, ...] = ()
    ) -> None:
        """`prefix`: a command the watcher runs under (e.g. `setpriv` dropping capabilities)."""
        self.state = state
        self.log = state.parent / f"{state.name}-stderr.log"
        self._err = open(self.log, "ab")  # noqa: SIM115 - closed in wait()
        args = [
            "watch",
            root,
            "--config",
            config,
            "--topic",
            topic,
            "--state",
            state,
            "--settle-seconds",
            "1",
            "--rescan-seconds",
            "5",
            "--update-seconds",
            "-1",
            *extra,
        ]
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "labstream", *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
        )
        _running.append(self)
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
        if self in _running:
            _running.remove(self)
        self._err.close()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe:
                pipe.close()
        return code


def start_download(out: Path, config: Path, topic: str, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """`labstream download` as a long-running process, its output in `log`."""
    with open(log, "wb") as handle:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "labstream",
                "download",
                str(out),
                "--config",
                str(config),
                "--topic",
                topic,
                *extra,
            ],
            stdout=handle,
            stderr=handle,
        )


def wait_for(condition: object, timeout: float = 120.0, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting; {_describe()}")
        time.sleep(every)


def _describe() -> str:
    """What the running watchers were doing, for the failure message."""
    parts = []
    for watcher in _running:
        try:
            counts = collections.Counter(watcher.statuses().values())
        except sqlite3.Error as exc:
            counts = collections.Counter({f"ledger unreadable: {exc}": 1})
        tail = "\n".join(watcher.text().splitlines()[-15:])
        parts.append(f"watcher ledger={dict(counts)} alive={watcher.proc.poll() is None}\n{tail}")
    return "\n".join(parts) or "no watcher running"


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
