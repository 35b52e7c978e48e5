"""The console of a long-running stage (watch, download, process).

- `q`/`quit` on stdin stops cleanly, `c`/`check` prints the status; a terminal is read only
  while the stage is in its foreground (`labstream watch ... &` must not stop on SIGTTIN);
- on a terminal (or with `--progress`), a live display: counts, bytes, rate, the files in
  progress with their share, the group's lag;
- otherwise a still-alive line every `update_seconds` (-1: none).

The lag costs a broker round trip: it is asked at most every LAG_SECONDS, on the console's
own thread, never on the stage's.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack

from labstream.errors import LabstreamError
from labstream.loops import spawn
from labstream.runners.progress import FileRates, RateMeter, Snapshot

__all__ = ["INTERACTIVE", "QUIET", "Console", "ConsoleMode", "may_read_keys"]

logger = logging.getLogger("labstream.console")
LAG_SECONDS = 5.0
LIVE_TICK = 0.5
FOREGROUND_POLL = 0.5  # seconds between looks at a terminal we may not read yet


def may_read_keys(is_tty: bool, terminal_group: int | None, own_group: int) -> bool:
    """Whether the console may read stdin now.

    A pipe or a file: yes (no job control; tests and scripts send `q` that way). A terminal:
    only while our process group is its foreground group; a read from the background stops
    the whole process (`Stopped (tty input)`). `terminal_group` None: unknown, do not read.
    """
    if not is_tty:
        return True
    return terminal_group is not None and terminal_group == own_group


def _terminal_group(fd: int) -> int | None:
    try:
        return os.tcgetpgrp(fd)
    except OSError:
        return None


def _stdin_terminal() -> int | None:
    """The descriptor of stdin when it is a terminal with job control (not on Windows)."""
    try:
        fd = sys.stdin.fileno()
    except (OSError, ValueError):
        return None  # replaced by an object without a descriptor (a test runner)
    return fd if hasattr(os, "tcgetpgrp") and os.isatty(fd) else None


def _in_foreground(fd: int) -> bool:
    return may_read_keys(True, _terminal_group(fd), os.getpgrp())


@dataclasses.dataclass(frozen=True)
class ConsoleMode:
    """How a stage talks to a person: `read_stdin` for `q`/`c`, `live` for the live display."""

    read_stdin: bool = False
    live: bool = False


QUIET = ConsoleMode()  # a service, a test: still-alive lines only
INTERACTIVE = ConsoleMode(read_stdin=True)


class Console:
    """Runs for the life of a stage: `with Console(...): stage.run()`."""

    def __init__(
        self,
        headline: str,
        snapshot: Callable[[], Snapshot],
        stop: threading.Event,
        update_seconds: float,
        *,
        mode: ConsoleMode = QUIET,
        lag: Callable[[], int] | None = None,
        details: Callable[[], list[str]] | None = None,
    ) -> None:
        """`lag()`: the group's lag (raises LabstreamError when unknown); `details()`: more
        lines for `c` (the watcher's queue and ledger)."""
        self._headline = headline
        self._snapshot = snapshot
        self._stop = stop
        self._update = update_seconds
        self._mode = mode
        self._lag = lag
        self._details = details
        self._rate = RateMeter()
        self._messages = RateMeter()
        self._files = FileRates()
        self._last_lag: int | None = None
        self._lag_at = float("-inf")
        self._closing = threading.Event()
        self._ticker = spawn(self._tick, "labstream-status", start=False)
        # A blocking stdin read cannot be interrupted; this daemon thread dies with the process.
        self._reader = spawn(self._read, "console-stdin", start=False)
        self._stack = ExitStack()

    def __enter__(self) -> Console:
        if self._mode.live:
            from labstream.runners.display import LiveDisplay  # rich: only when drawn

            self._stack.enter_context(LiveDisplay(self._headline, self.snapshot, self._rate))
        if self._mode.live or self._update > 0:
            self._ticker.start()
        if self._mode.read_stdin and sys.stdin is not None and not sys.stdin.closed:
            if _stdin_terminal() is not None:
                self._stack.callback(_ignore_sigttin())
            self._reader.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._closing.set()
        if self._ticker.is_alive():
            self._ticker.join()
        self._stack.close()

    def snapshot(self) -> Snapshot:
        """The stage's snapshot with the last known lag, the recent message rate and each
        file's rate (from which the times left follow)."""
        snapshot = self._snapshot()
        records = snapshot.records
        return dataclasses.replace(
            snapshot,
            lag=self._last_lag,
            message_rate=self._messages.update(records) if records is not None else 0.0,
            current=self._files.rated(snapshot.current),
        )

    def _tick(self) -> None:
        """Live: keep the lag fresh (the display draws itself). Otherwise: a still-alive line
        every `update_seconds`."""
        period = LIVE_TICK if self._mode.live else self._update
        while not self._closing.wait(period):
            self._refresh_lag()
            if not self._mode.live:
                snapshot = self.snapshot()
                logger.info("%s", snapshot.line(self._rate.update(snapshot.bytes)))

    def _refresh_lag(self) -> None:
        if self._lag is None or time.monotonic() - self._lag_at < LAG_SECONDS:
            return
        self._lag_at = time.monotonic()
        try:
            self._last_lag = self._lag()
        except LabstreamError:
            self._last_lag = None  # broker unreachable: the lag is unknown, not zero

    def _read(self) -> None:
        for line in self._lines():
            command = line.strip().lower()
            if command in ("q", "quit"):
                logger.info("stopping cleanly (asked on the console)")
                self._stop.set()
                return
            if command in ("c", "check"):
                print("\n".join(self._status_lines()), file=sys.stderr, flush=True)
            elif command:
                print("commands: c/check = status, q/quit = stop", file=sys.stderr)

    def _lines(self) -> Iterator[str]:
        """Lines from stdin; a terminal only while we are its foreground (checked before each
        read, which waits at most FOREGROUND_POLL so a job sent to the background stops
        reading)."""
        fd = _stdin_terminal()
        if fd is None:
            yield from sys.stdin
            return
        while not self._closing.is_set():
            if not _in_foreground(fd):
                self._closing.wait(FOREGROUND_POLL)
                continue
            try:
                ready, _, _ = select.select([fd], [], [], FOREGROUND_POLL)
                line = sys.stdin.readline() if ready and _in_foreground(fd) else None
            except OSError:  # EIO: sent to the background between the look and the read
                line = None
            if line == "":
                return  # end of input (Ctrl+D)
            if line:
                yield line

    def _status_lines(self) -> list[str]:
        snapshot = self.snapshot()
        lines = [self._headline, snapshot.counts(self._rate.update(snapshot.bytes))]
        lines += [f"  {current.line()}" for current in snapshot.current]
        return lines + (self._details() if self._details is not None else [])


def _ignore_sigttin() -> Callable[[], None]:
    """A read that races a move to the background then fails with EIO instead of stopping
    the process; returns what puts the previous handler back (children started later must
    not inherit the ignored signal). Only the main thread may set handlers; elsewhere the
    foreground check alone guards."""
    if not hasattr(signal, "SIGTTIN") or threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTTIN, signal.SIG_IGN)

    def restore() -> None:
        signal.signal(signal.SIGTTIN, previous)

    return restore
