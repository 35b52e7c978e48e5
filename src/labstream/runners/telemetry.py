"""Heartbeats and metrics around one long-running process: one context manager."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from labstream.config import Config
from labstream.heartbeat import HeartbeatPublisher, Signer, Status
from labstream.kafka import group_lag, producer_settings
from labstream.kafka.clients import REAL_CLIENTS, KafkaClients
from labstream.kafka.settings import LibrdkafkaConfig
from labstream.metrics import ErrorLog
from labstream.receipts import SigningKey
from labstream.receipts.signing import heartbeat_signer
from labstream.runners.sources import counts_source
from labstream.settings import Telemetry

__all__ = ["group_monitoring", "lag_query", "monitoring"]

LAG_TIMEOUT = 2.0  # seconds
# Given "the last error logged", a snapshot callable for this process.
SourceFactory = Callable[[Callable[[], str]], Callable[[], Status]]


@contextmanager
def monitoring(
    config: Config,
    options: Telemetry,
    *,
    role: str,
    subject: str,
    source: SourceFactory,
    lag_of: tuple[str, str] | None = None,
    sign: Signer | None = None,
    clients: KafkaClients = REAL_CLIENTS,
) -> Iterator[None]:
    """Heartbeats and metrics for one process while the block runs; `lag_of` = (group,
    topic) adds that group's consumer lag to the metrics. Heartbeats are signed with the
    telemetry's own key when it has one, else with `sign`."""
    if options.signing_key is not None:
        sign = heartbeat_signer(options.signing_key)
    with ExitStack() as stack:
        errors = stack.enter_context(ErrorLog())
        snapshot = source(lambda: errors.last_error)
        if options.metrics_port is not None:
            from labstream.metrics.exporter import CachedLag, MetricsServer, parse_address, process_metrics

            lag = None
            if lag_of is not None:
                group, topic = lag_of
                settings = producer_settings(config)
                lag = CachedLag(lambda: _lag_row(settings, group, topic))
            collect = process_metrics(role, snapshot, errors, lag)
            stack.enter_context(MetricsServer(parse_address(options.metrics_port), collect))
        if options.heartbeat_seconds > 0:
            settings = producer_settings(config)
            clients.ensure_topic(settings, options.heartbeat_topic, partitions=1)
            producer = stack.enter_context(clients.producer(settings))
            stack.enter_context(
                HeartbeatPublisher(
                    producer,
                    options.heartbeat_topic,
                    role=role,
                    subject=subject,
                    snapshot=snapshot,
                    interval=options.heartbeat_seconds,
                    sign=sign,
                )
            )
        yield


def _lag_row(librdkafka: LibrdkafkaConfig, group: str, topic: str) -> tuple[str, str, int]:
    lag = group_lag(librdkafka, group, topic)
    return lag.group, lag.topic, lag.messages


def lag_query(
    config: Config, group: str, topic: str, positions: Callable[[], Mapping[int, int]] | None = None
) -> Callable[[], int]:
    """The group's lag on the topic in messages, asked of the cluster when called (at most
    LAG_TIMEOUT: the console's question, never long). `positions()`: this member's next
    offset to read per partition, so the lag moves as messages are read, not only when a
    file is complete and its offsets committed."""
    settings = producer_settings(config)

    def query() -> int:
        read = positions() if positions is not None else None
        return group_lag(settings, group, topic, LAG_TIMEOUT, read).messages

    return query


def group_monitoring(
    config: Config,
    telemetry: Telemetry,
    *,
    role: str,
    topic: str,
    group: str,
    place: Path,
    report: Callable[[], Any],
    key: SigningKey | None,
    clients: KafkaClients = REAL_CLIENTS,
) -> Any:
    """`monitoring` for a consumer group's member (download, process): its report's counts,
    the group's lag, heartbeats signed with the group's receipt key when it has one.

    `place` (the output or work folder, which one process holds at a time) is part of the
    heartbeat's instance: members of one group on one host are one dashboard row each, and a
    restarted member keeps its row (as its static group membership is derived from it)."""
    folder = str(Path(place).resolve())
    return monitoring(
        config,
        telemetry,
        role=role,
        subject=f"{topic}/{group}:{folder}",
        source=lambda last_error: counts_source(report, topic, group, last_error, folder=folder),
        lag_of=(group, topic),
        sign=heartbeat_signer(key) if key is not None else None,
        clients=clients,
    )
