"""When to send again a file the cluster did not acknowledge (an outage longer than
librdkafka's `message.timeout.ms`, a network loss): after a back-off doubling from `first`
to `longest` seconds, for as long as the watcher runs. The file keeps its ledger row
`sending` meanwhile, so a restart resumes it too; a wire v2 send continues from its last
acknowledged chunk (labstream.upload.resume)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["RetrySchedule"]

T = TypeVar("T")


class RetrySchedule(Generic[T]):
    """Items by key, each due after its own back-off; safe from several threads."""

    def __init__(
        self, first: float = 5.0, longest: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._first = first
        self._longest = longest
        self._clock = clock
        self._lock = threading.Lock()
        self._attempts: dict[str, int] = {}
        self._waiting: dict[str, tuple[float, T]] = {}

    def add(self, key: str, item: T) -> float:
        """Schedule `item` again; returns the delay chosen (doubling with each failure)."""
        with self._lock:
            attempts = self._attempts.get(key, 0)
            delay = min(self._longest, self._first * float(1 << min(attempts, 30)))
            self._attempts[key] = attempts + 1
            self._waiting[key] = (self._clock() + delay, item)
        return delay

    def due(self) -> list[T]:
        """Items whose time has come, taken off the schedule (their back-off is kept)."""
        now = self._clock()
        with self._lock:
            ready = [key for key, (at, _) in self._waiting.items() if at <= now]
            return [self._waiting.pop(key)[1] for key in ready]

    def succeeded(self, key: str) -> None:
        """The next failure of `key` starts the back-off again from `first`."""
        with self._lock:
            self._attempts.pop(key, None)
            self._waiting.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._waiting)
