"""Local problems that last (the state folder full, the watched folder gone), said quietly.

A condition that starts is logged in one line, again at most every `every_seconds` while it
lasts, and once when it ends; never with a traceback, whatever it breaks meanwhile (a full
disk fails every ledger write). `current()` is what heartbeats and the console show.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["REPEAT_SECONDS", "Conditions"]

REPEAT_SECONDS = 10.0


@dataclass
class _Active:
    message: str
    since: float
    logged_at: float


class Conditions:
    """Thread-safe; `name` identifies a condition (one line per name per `every_seconds`)."""

    def __init__(
        self,
        log: logging.Logger,
        every_seconds: float = REPEAT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._every = every_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._active: dict[str, _Active] = {}

    def report(self, name: str, message: str) -> None:
        """`name` holds (again): a line now if it is new or its last line is old enough."""
        now = self._clock()
        with self._lock:
            active = self._active.get(name)
            if active is None:
                self._active[name] = _Active(message, now, now)
                line = message
            elif now - active.logged_at >= self._every:
                line = f"{message} (still, for {now - active.since:.0f} s)"
                active.message, active.logged_at = message, now
            else:
                active.message = message
                return
        self._log.error("%s", line)

    def clear(self, name: str, recovered: str) -> None:
        """`name` no longer holds: one line (`recovered`) if it was reported."""
        now = self._clock()
        with self._lock:
            active = self._active.pop(name, None)
        if active is not None:
            self._log.info("%s (after %.0f s)", recovered, now - active.since)

    def holds(self, name: str) -> bool:
        with self._lock:
            return name in self._active

    def current(self) -> dict[str, str]:
        """name -> the latest message of every condition that holds now."""
        with self._lock:
            return {name: active.message for name, active in sorted(self._active.items())}
