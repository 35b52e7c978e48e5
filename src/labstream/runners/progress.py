"""What a long-running stage shows while it runs: one snapshot, its rates, as a line.

Drawing it live with `rich` is labstream.runners.display's, imported only when a display is
shown: a watcher run as a service or in a fleet loads no rich (issue 29, memory per watcher).
Sizes and rates are binary units (labstream.units), as in the summaries.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from labstream.logsafe import shown
from labstream.units import human_bytes, human_rate, percent

__all__ = [
    "FileProgress",
    "FileRates",
    "RateMeter",
    "Snapshot",
    "in_progress",
    "time_left",
]

RATE_WINDOW = 3.0  # seconds: rates are of the last few seconds
FRESH_WAIT = 0.25  # seconds a redraw waits for a new frame before it draws the last one
MAX_LEFT_SECONDS = 24 * 3600.0  # a longer estimate comes from a stalled rate: not shown
SHOWN_FILES = 5  # files in progress drawn one per line; the rest are counted
_WORDS = {  # role -> (what it does, what a finished file is)
    "watch": ("watching", "sent"),
    "download": ("downloading", "verified"),
    "process": ("processing", "processed"),
}


def time_left(remaining: float, rate: float) -> str:
    """ "~N s left", "~N min left" or "~N h left" for `remaining` units at `rate` per second;
    "" when it cannot be known (no rate, nothing left) or is absurd (over a day)."""
    if remaining <= 0 or rate <= 0:
        return ""
    seconds = remaining / rate
    if seconds > MAX_LEFT_SECONDS:
        return ""
    if seconds < 90:
        return f"~{max(1, round(seconds))} s left"
    if seconds < 90 * 60:
        return f"~{round(seconds / 60)} min left"
    return f"~{round(seconds / 3600)} h left"


@dataclass(frozen=True)
class FileProgress:
    """One file in progress: `done` of `size` bytes (size <= 0: not known yet), received or
    sent at `rate` bytes per second lately (0: not known)."""

    path: str
    done: int
    size: int
    rate: float = 0.0

    def left(self) -> str:
        """The time left for this file, or ""."""
        return time_left(self.size - self.done, self.rate) if self.size > 0 else ""

    def line(self) -> str:
        total = f" / {human_bytes(self.size)}" if self.size > 0 else ""
        notes = ", ".join(note for note in (percent(self.done, self.size), self.left()) if note)
        return f"{shown(self.path, 120)} {human_bytes(self.done)}{total}{f' ({notes})' if notes else ''}"


def in_progress(entries: Iterable[tuple[str, int, int]]) -> tuple[FileProgress, ...]:
    """(path, done, size) tuples, as the components report them, as FileProgress."""
    return tuple(FileProgress(path, done, size) for path, done, size in entries)


@dataclass(frozen=True)
class Snapshot:
    """Counts of one stage since it started, the files in progress, and its group's lag."""

    role: str  # watch, download, process
    done: int
    failed: int
    bytes: int
    current: tuple[FileProgress, ...] = ()
    lag: int | None = None  # messages the group has not read yet; None: not known
    detail: str = ""  # role-specific, e.g. the watcher's queue
    records: int | None = None  # messages read (download, process); None: not counted
    message_rate: float = 0.0  # messages read per second lately (set by the console)

    def counts(self, rate: float) -> str:
        finished = _WORDS.get(self.role, (self.role, "done"))[1]
        parts = [f"{self.done} {finished}", f"{self.failed} failed"]
        parts += [human_bytes(self.bytes), human_rate(rate)]
        if self.lag is not None:
            parts.append(f"lag {self.lag} message(s)")
            left = time_left(self.lag, self.message_rate)
            if left:
                parts.append(left)
        if self.detail:
            parts.append(self.detail)
        return ", ".join(parts)

    def line(self, rate: float) -> str:
        """The still-alive line."""
        doing = _WORDS.get(self.role, (self.role, ""))[0]
        now = "; ".join(f.line() for f in self.current[:SHOWN_FILES])
        more = len(self.current) - SHOWN_FILES
        tail = f"; now: {now}{f' and {more} more' if more > 0 else ''}" if now else ""
        return f"still {doing}: {self.counts(rate)}{tail}"


class RateMeter:
    """Per second over the last `window` seconds, from a running total: a sliding window, so
    the rate is 0 once a whole window has passed without growth (not an average that decays
    for long after a transfer ends). Sampled less often than `window` (still-alive lines), it
    is the average since the previous sample."""

    def __init__(self, window: float = RATE_WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def update(self, total: int) -> float:
        now = self._clock()
        with self._lock:
            self._samples.append((now, total))
            # The baseline is the newest sample at or before the window's start.
            while len(self._samples) > 1 and self._samples[1][0] <= now - self._window:
                self._samples.popleft()
            first_time, first_total = self._samples[0]
        elapsed = now - first_time
        return max(0, total - first_total) / elapsed if elapsed > 0 else 0.0


class FileRates:
    """A RateMeter per file in progress (by path), so each file gets its own time left."""

    def __init__(self, window: float = RATE_WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._clock = clock
        self._meters: dict[str, RateMeter] = {}
        self._lock = threading.Lock()

    def rated(self, files: Iterable[FileProgress]) -> tuple[FileProgress, ...]:
        """`files` with their rates; files no longer in progress are forgotten."""
        files = tuple(files)
        with self._lock:
            old = self._meters
            self._meters = {f.path: old.get(f.path) or RateMeter(self._window, self._clock) for f in files}
            meters = self._meters
        return tuple(replace(f, rate=meters[f.path].update(f.done)) for f in files)
