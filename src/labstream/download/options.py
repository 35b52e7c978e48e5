"""How a downloader runs: the one home of these settings' defaults.

Each field is named after its `[labstream]` key; the settings table shows these defaults and
the role builders fill the object from the table by those names (`settings.sections`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from labstream.download.limits import Limits
from labstream.download.owners import BESIDE, BY_SOURCE
from labstream.errors import ConfigError

__all__ = ["PLACEMENTS", "DownloadOptions"]

PLACEMENTS = (BESIDE, BY_SOURCE)


@dataclass(frozen=True)
class DownloadOptions:
    """`consumer_threads`: consumers in this process (fewer than one counts as one).
    `exit_when_idle`: stop after this many seconds without a new message; None: never.
    `stop_grace_seconds`: after a stop, files more than half received may finish this long.
    `placement`: where another source's file of a taken path goes (beside or by-source).
    `start_new_at_ms`: partitions without a committed offset start at the first message at
    or after this time. `limits`: what messages may make the downloader spend."""

    consumer_threads: int = 1
    exit_when_idle: float | None = None
    stop_grace_seconds: float = 10.0
    placement: str = BESIDE
    start_new_at_ms: int | None = None
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        if self.placement not in PLACEMENTS:
            choices = " or ".join(PLACEMENTS)
            raise ConfigError(f"--placement / placement {self.placement!r}: choose {choices}")
        # As the components have always counted them: `--threads 0` is one, a negative grace none.
        object.__setattr__(self, "consumer_threads", max(1, int(self.consumer_threads)))
        object.__setattr__(self, "stop_grace_seconds", max(0.0, float(self.stop_grace_seconds)))
