"""Calm logs during an outage: one line per condition per interval, one "back" line after.

librdkafka reports a dead broker on every reconnect attempt (several per second, per client,
per connection). `OutageFilter` is a `logging.Filter` on the loggers that carry those reports
(our error callbacks and librdkafka's own log lines): a WARNING or worse passes only if the
same condition (its text with the numbers taken out) has not passed in the last `interval`
seconds in this process. `note_success()` is called where the cluster demonstrably answered
(a delivery acknowledged, records fetched, a metadata probe answered); after a suppressed or
logged problem it logs a single "Kafka answers again" line.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

__all__ = ["OutageFilter", "in_outage", "note_success", "outage_filter"]

logger = logging.getLogger(__name__)
INTERVAL_SECONDS = 10.0
_NUMBERS = re.compile(r"\d+")
# librdkafka facilities that describe a symptom it handles itself (requests timed out while a
# broker was away are retried): information, not a problem, and often the last straggler of
# an outage already over. The failures that matter reach us through the error callbacks.
# FAIL (a broker connection failed) is the log twin of the error callback's report of the
# same failure, text for text: it doubled every outage line (measured 46 lines per outage).
_SYMPTOMS = ("REQTMOUT ", "FAIL ")


class OutageFilter(logging.Filter):
    """Passes a problem record at most once per `interval` seconds per condition."""

    def __init__(
        self, interval: float = INTERVAL_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[tuple[str, int, str], float] = {}
        self._since: float | None = None  # when the current run of problems began

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        if record.getMessage().startswith(_SYMPTOMS):
            record.levelno, record.levelname = logging.INFO, "INFO"
            return logging.getLogger(record.name).isEnabledFor(logging.INFO)
        key = (record.name, record.levelno, _NUMBERS.sub("#", record.getMessage()))
        now = self._clock()
        with self._lock:
            if self._since is None:
                self._since = now
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                return False
            self._last[key] = now
            return True

    def in_outage(self) -> bool:
        with self._lock:
            return self._since is not None

    def recovered(self) -> float | None:
        """Seconds the problems lasted if some were seen (and forget them), else None.

        The per-condition memory stays, so a straggler report of the outage just over is not
        logged after the "back" line."""
        with self._lock:
            since, self._since = self._since, None
        return None if since is None else self._clock() - since


outage_filter = OutageFilter()


def in_outage() -> bool:
    """True while problems were reported and no success seen since."""
    return outage_filter.in_outage()


def note_success(what: str) -> None:
    """The cluster answered; ends an outage with one line if one was in progress."""
    lasted = outage_filter.recovered()
    if lasted is not None:
        logger.info("Kafka answers again; resuming seen_by=%s problems_for=%.1fs", what, lasted)
