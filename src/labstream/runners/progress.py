"""What a long-running stage shows while it runs: one snapshot, as a line or a live display.

The only module that draws progress with `rich`: the live display of watch, download and
process on a terminal, and the byte bar of `upload`. Sizes and rates are binary units
(labstream.units), as in the summaries. Paths come from messages (download, process) or
from the instrument's folder: they are escaped (`shown`) and drawn as literal text, never
as markup.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from typing import Any

from rich.console import Console as RichConsole
from rich.console import ConsoleOptions, Group
from rich.live import Live
from rich.progress import BarColumn, DownloadColumn, Progress, ProgressColumn, Task, TimeRemainingColumn
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from labstream.logsafe import shown
from labstream.units import human_bytes, human_rate, percent

__all__ = [
    "FileProgress",
    "FileRates",
    "LiveDisplay",
    "RateMeter",
    "Snapshot",
    "byte_progress",
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


class _FreshFrame:
    """What the live display draws, made afresh at each draw: the periodic refresh and the
    redraw under every log line. (rich redraws its last frame under a log line, so the line
    "file sent" had a frame from before it under it: `0 sent`, the file at 96%.)

    A log line may be written by a thread holding a lock the snapshot needs: the frame is made
    on a thread of its own and waited for at most FRESH_WAIT seconds, else the last one is
    drawn (and the next refresh draws a fresh one)."""

    def __init__(self, render: Callable[[], Any]) -> None:
        self._render = render
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="labstream-display")
        self._last: Any = Text("")

    def __rich_console__(self, console: RichConsole, options: ConsoleOptions) -> Iterator[Any]:
        with contextlib.suppress(FutureTimeout):
            self._last = self._pool.submit(self._render).result(timeout=FRESH_WAIT)
        yield self._last

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class LiveDisplay:
    """A live view on stderr, redrawn `refresh_per_second` and under every log line printed
    above it, always from a new snapshot. Drawn for a terminal even when stderr is not one
    (the caller asked for it: `--progress`)."""

    def __init__(
        self,
        headline: str,
        snapshot: Callable[[], Snapshot],
        rate: RateMeter,
        *,
        refresh_per_second: float = 2,
    ) -> None:
        self._headline = headline
        self._snapshot = snapshot
        self._rate = rate
        self._frame = _FreshFrame(self._render)
        self._live = Live(
            self._frame,
            console=RichConsole(stderr=True, force_terminal=True),
            refresh_per_second=refresh_per_second,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=True,
        )

    def __enter__(self) -> LiveDisplay:
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.stop()
        self._frame.close()

    def _render(self) -> Any:
        snapshot = self._snapshot()
        rate = self._rate.update(snapshot.bytes)
        head = Text(self._headline, style="bold")
        counts = Text(snapshot.counts(rate))
        files = Table.grid(padding=(0, 1))
        for current in snapshot.current[:SHOWN_FILES]:
            size = current.size if current.size > 0 else None
            files.add_row(
                Text(shown(current.path, 60), overflow="ellipsis", no_wrap=True),
                ProgressBar(total=size, completed=current.done, width=30),
                Text(percent(current.done, current.size)),
                Text(human_bytes(current.done) + (f" / {human_bytes(current.size)}" if size else "")),
                Text(current.left()),
            )
        more = len(snapshot.current) - SHOWN_FILES
        rows: list[Any] = [head, counts, files]
        if more > 0:
            rows.append(Text(f"and {more} more file(s) in progress"))
        return Group(*rows)


class _BinarySpeed(ProgressColumn):
    """Transfer speed in binary units (rich's own column is decimal)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(human_rate(speed) if speed is not None else "?", style="progress.data.speed")


def byte_progress(total: int, description: str, *, enabled: bool | None = None) -> Progress:
    """A byte bar on stderr; `enabled` None: only on a terminal."""
    shown_now = sys.stderr.isatty() if enabled is None else enabled
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(binary_units=True),
        _BinarySpeed(),
        TimeRemainingColumn(),
        console=RichConsole(stderr=True, force_terminal=True if shown_now else None),
        disable=not shown_now,
        transient=False,
    )
    progress.add_task(description, total=total)
    return progress
