"""How a processor runs: the one home of these settings' defaults.

Fields are named after their `[labstream]` keys, as in `DownloadOptions`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from labstream.download.options import DownloadOptions

__all__ = ["ProcessOptions"]


@dataclass(frozen=True)
class ProcessOptions:
    """`retries`: attempts after a processor's first failure on a file (fewer than none count
    as none), the first after `processor_retry_seconds`, each further one after twice as long.
    `download`: how its files are received."""

    retries: int = 2
    processor_retry_seconds: float = 1.0
    download: DownloadOptions = field(default_factory=DownloadOptions)

    def __post_init__(self) -> None:
        object.__setattr__(self, "retries", max(0, int(self.retries)))
