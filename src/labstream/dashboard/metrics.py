"""Prometheus metrics of the whole fleet, as the dashboard sees it (for alert rules)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric

from labstream import __version__
from labstream.dashboard.store import Store
from labstream.dashboard.views import Liveness, instance_state
from labstream.metrics.exporter import Collect
from labstream.outcomes import ReceiptOutcome

__all__ = ["fleet_metrics"]

_LABELS = ["instance", "role", "host", "topic", "group"]


def fleet_metrics(store: Store) -> Collect:
    def collect() -> Iterator[Metric]:
        now = time.time()
        info = InfoMetricFamily("labstream_build", "labstream version and role")
        info.add_metric([], {"version": __version__, "role": "dashboard"})
        yield info
        up = GaugeMetricFamily("labstream_instance_up", "1 alive, 0 stale (missed 3 beats)", labels=_LABELS)
        stopped = GaugeMetricFamily("labstream_instance_stopped", "1 if it said it stopped", labels=_LABELS)
        age = GaugeMetricFamily(
            "labstream_instance_heartbeat_age_seconds", "since the last beat", labels=_LABELS
        )
        backlog = GaugeMetricFamily(
            "labstream_instance_backlog_files", "files waiting to be sent", labels=_LABELS
        )
        failed = GaugeMetricFamily(
            "labstream_instance_failed_files",
            "files not sent this run (watch); files its group failed, from receipts (download, process)",
            labels=_LABELS,
        )
        groups = {(r["grp"], r["topic"]): int(r["failed"]) for r in store.read("SELECT * FROM groups")}
        for row in store.read("SELECT * FROM instances"):
            state, seconds = instance_state(row, now)
            labels = [row["instance"], row["role"], row["host"], row["topic"], row["grp"]]
            up.add_metric(labels, 1.0 if state is Liveness.ALIVE else 0.0)
            stopped.add_metric(labels, 1.0 if state is Liveness.STOPPED else 0.0)
            age.add_metric(labels, seconds)
            backlog.add_metric(labels, row["queued_files"])
            own = row["role"] == "watch"  # a consumer's beat counts chunks, its receipts files
            failed.add_metric(labels, row["failed"] if own else groups.get((row["grp"], row["topic"]), 0))
        yield from (up, stopped, age, backlog, failed)
        receipts = CounterMetricFamily(
            "labstream_receipts", "receipts seen, by group and outcome", labels=["group", "topic", "outcome"]
        )
        for row in store.read("SELECT * FROM groups"):
            receipts.add_metric([row["grp"], row["topic"], ReceiptOutcome.VERIFIED.value], row["verified"])
            receipts.add_metric([row["grp"], row["topic"], ReceiptOutcome.FAILED.value], row["failed"])
        yield receipts
        lag = GaugeMetricFamily(
            "labstream_consumer_lag_messages", "messages not yet committed", labels=["group", "topic"]
        )
        files = GaugeMetricFamily(
            "labstream_consumer_lag_files", "files sent but not yet receipted", labels=["group", "topic"]
        )
        for row in store.read("SELECT * FROM lag"):
            lag.add_metric([row["grp"], row["topic"]], row["messages"])
            files.add_metric([row["grp"], row["topic"]], row["files"])
        yield from (lag, files)
        rejected = CounterMetricFamily("labstream_rejected_messages", "malformed messages", labels=["kind"])
        for row in store.read("SELECT * FROM counters"):
            rejected.add_metric([row["name"]], row["value"])
        yield rejected

    return collect


def _gauge(name: str, text: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, labels=_LABELS)
