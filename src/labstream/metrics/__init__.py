"""Prometheus metrics: a process's counters -> text exposition on `--metrics-port`.

Input: the same `Status` snapshots heartbeats publish, the chunk delivery latencies the
sender records (`CHUNK_LATENCY`, no dependency), and WARNING/ERROR log records counted by
kind (`ErrorLog`). Output: an HTTP endpoint served by prometheus_client, which is the only
module importing it (`exporter`).
"""

from __future__ import annotations

from labstream.metrics.errorlog import ErrorLog
from labstream.metrics.latency import CHUNK_LATENCY, LatencyHistogram

__all__ = ["CHUNK_LATENCY", "ErrorLog", "LatencyHistogram"]
