"""The state folders on disk, named in one place.

A watcher's state folder (per user, outside the watched folder: `default_state_dir`) holds
`ledger.sqlite`, `lock` and `watch.log`. A downloader's or processor's output folder holds
`.labstream/` with `ledger.sqlite`, `lock`, `partial/` (files being rebuilt), `failed/`
(files that failed verification) and, for processors, `failed-processing/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from labstream.wire.paths import STATE_DIRNAME

__all__ = ["LEDGER_NAME", "LOCK_NAME", "STATE_DIRNAME", "OutputState", "WatchState"]

LEDGER_NAME = "ledger.sqlite"
LOCK_NAME = "lock"


@dataclass(frozen=True)
class WatchState:
    """A watcher's state folder."""

    folder: Path

    @property
    def ledger(self) -> Path:
        return self.folder / LEDGER_NAME

    @property
    def lock(self) -> Path:
        return self.folder / LOCK_NAME

    @property
    def log(self) -> Path:
        return self.folder / "watch.log"


@dataclass(frozen=True)
class OutputState:
    """The `.labstream/` folder inside a downloader's output or a processor's work folder."""

    out_dir: Path

    @property
    def folder(self) -> Path:
        return self.out_dir / STATE_DIRNAME

    @property
    def ledger(self) -> Path:
        return self.folder / LEDGER_NAME

    @property
    def lock(self) -> Path:
        return self.folder / LOCK_NAME

    @property
    def partial(self) -> Path:
        return self.folder / "partial"

    @property
    def failed(self) -> Path:
        return self.folder / "failed"

    @property
    def failed_processing(self) -> Path:
        return self.folder / "failed-processing"
