"""`--heartbeat-seconds`, `--heartbeat-topic`, `--metrics-port`: one decorator, one context."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from labstream.config import Config
from labstream.heartbeat import DEFAULT_HEARTBEAT_TOPIC, HeartbeatPublisher, Signer, Status
from labstream.kafka import Producer, ensure_topic, group_lag, producer_settings
from labstream.metrics import ErrorLog

__all__ = ["TelemetryOptions", "monitoring", "telemetry_options"]

F = TypeVar("F", bound=Callable[..., Any])
# Given "the last error logged", a snapshot callable for this process.
SourceFactory = Callable[[Callable[[], str]], Callable[[], Status]]


@dataclass(frozen=True)
class TelemetryOptions:
    heartbeat_seconds: float = 10.0
    heartbeat_topic: str = DEFAULT_HEARTBEAT_TOPIC
    metrics_port: str | None = None


def telemetry_options(command: F) -> F:
    """Adds the three options; the command receives them as `telemetry: TelemetryOptions`."""

    @functools.wraps(command)
    def wrapper(
        *args: Any, heartbeat_seconds: float, heartbeat_topic: str, metrics_port: str | None, **kw: Any
    ) -> Any:
        options = TelemetryOptions(heartbeat_seconds, heartbeat_topic, metrics_port)
        return command(*args, telemetry=options, **kw)

    for option in reversed(_OPTIONS):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


_OPTIONS = (
    click.option(
        "--heartbeat-seconds",
        type=float,
        default=10.0,
        show_default=True,
        help="Publish a heartbeat for `labstream dashboard` this often; 0 turns it off.",
    ),
    click.option(
        "--heartbeat-topic",
        default=DEFAULT_HEARTBEAT_TOPIC,
        show_default=True,
        envvar="LABSTREAM_HEARTBEAT_TOPIC",
        help="Topic the heartbeats go to [LABSTREAM_HEARTBEAT_TOPIC].",
    ),
    click.option(
        "--metrics-port",
        default=None,
        metavar="[HOST:]PORT",
        help="Serve Prometheus metrics here (HOST defaults to 127.0.0.1; 0.0.0.0 for all).",
    ),
)


@contextmanager
def monitoring(
    config: Config,
    options: TelemetryOptions,
    *,
    role: str,
    subject: str,
    source: SourceFactory,
    lag_of: tuple[str, str] | None = None,
    sign: Signer | None = None,
) -> Iterator[None]:
    """Heartbeats and metrics for one process while the block runs; `lag_of` = (group,
    topic) adds that group's consumer lag to the metrics."""
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
            ensure_topic(settings, options.heartbeat_topic, partitions=1)
            producer = stack.enter_context(Producer(settings))
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


def _lag_row(settings: dict[str, Any], group: str, topic: str) -> tuple[str, str, int]:
    lag = group_lag(settings, group, topic)
    return lag.group, lag.topic, lag.messages
