"""Progress drawn with `rich`: the live display of watch, download and process on a
terminal, and the byte bar of `upload`. The only module that imports rich, and only imported
when something is drawn. Paths come from messages (download, process) or from the
instrument's folder: they are escaped (`shown`) and drawn as literal text, never as markup.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from rich.console import Console as RichConsole
from rich.console import ConsoleOptions, Group
from rich.live import Live
from rich.progress import BarColumn, DownloadColumn, Progress, ProgressColumn, Task, TimeRemainingColumn
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from labstream.logsafe import shown
from labstream.runners.progress import FRESH_WAIT, SHOWN_FILES, RateMeter, Snapshot
from labstream.units import human_bytes, human_rate, percent

__all__ = ["LiveDisplay", "byte_progress"]


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
