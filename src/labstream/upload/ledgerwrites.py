"""Ledger writes that outlive a full or unwritable state folder.

The watcher's state folder can fill up (or turn read-only) while the instrument keeps
writing. Then every ledger write fails; each failure is one condition (labstream.conditions:
one line per 10 s, no traceback), never an exception through a sender or the watcher. What
must not be lost (a file acknowledged, a file failed) waits in memory, in order, and is
written once the folder takes writes again; what can be redone (a file queued) is refused,
and its caller tries again later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from labstream.conditions import Conditions
from labstream.errors import LedgerError, OutputError
from labstream.upload.ledger import UploadLedger

__all__ = ["STATE_UNWRITABLE", "LedgerWrites"]

STATE_UNWRITABLE = "state-unwritable"  # the condition's name
Write = Callable[[UploadLedger], None]


class LedgerWrites:
    """Thread-safe; `catch_up()` is called now and then (the streamer's main loop)."""

    def __init__(self, ledger: UploadLedger, conditions: Conditions) -> None:
        self._ledger = ledger
        self._conditions = conditions
        self._lock = threading.Lock()
        self._waiting: list[Write] = []

    def attempt(self, write: Write) -> bool:
        """Write now, or report the condition and return False (the caller redoes it)."""
        if self.waiting():
            return False  # keep the order: nothing goes before what waits
        return self._try(write)

    def must(self, write: Write) -> None:
        """Write now, or keep `write` and write it in `catch_up`, after those before it."""
        if not self.attempt(write):
            with self._lock:
                self._waiting.append(write)

    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def catch_up(self) -> bool:
        """Write what waits, oldest first; True once nothing waits and the ledger takes writes
        (then the condition, if reported, is said to be over)."""
        if not self._conditions.holds(STATE_UNWRITABLE):
            return True
        while True:
            with self._lock:
                write = self._waiting[0] if self._waiting else _probe
            if not self._try(write):
                return False
            with self._lock:
                if not self._waiting:
                    break
                self._waiting.pop(0)
        self._conditions.clear(STATE_UNWRITABLE, "state folder takes writes again; ledger up to date")
        return True

    def _try(self, write: Write) -> bool:
        try:
            write(self._ledger)
        except (OutputError, LedgerError) as exc:
            self._conditions.report(
                STATE_UNWRITABLE,
                f"state folder cannot be written; new files wait (nothing is lost) reason={exc}",
            )
            return False
        return True


def _probe(ledger: UploadLedger) -> None:
    ledger.set_meta("written_at", f"{time.time():.3f}")
