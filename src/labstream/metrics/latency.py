"""A dependency-free, thread-safe latency histogram the data path can feed cheaply."""

from __future__ import annotations

import bisect
import threading

__all__ = ["BUCKETS", "CHUNK_LATENCY", "LatencyHistogram"]

BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class LatencyHistogram:
    """Counts observations (seconds) per bucket; `snapshot()` gives Prometheus' view."""

    def __init__(self, buckets: tuple[float, ...] = BUCKETS) -> None:
        self.buckets = buckets
        self._lock = threading.Lock()
        self._counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self._sum = 0.0

    def observe(self, seconds: float) -> None:
        index = bisect.bisect_left(self.buckets, seconds)
        with self._lock:
            self._counts[index] += 1
            self._sum += seconds

    def snapshot(self) -> tuple[list[tuple[str, int]], float]:
        """Cumulative (upper bound, count) pairs ending with +Inf, and the sum of seconds."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, running = [], 0
        for bound, count in zip((*map(str, self.buckets), "+Inf"), counts, strict=True):
            running += count
            cumulative.append((bound, running))
        return cumulative, total


# Producer -> broker acknowledgement time of every chunk this process sent.
CHUNK_LATENCY = LatencyHistogram()
