"""Serve metrics over HTTP with prometheus_client (the only module that imports it)."""

from __future__ import annotations

import hmac
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)

from labstream import __version__
from labstream.errors import ConfigError, LabstreamError
from labstream.heartbeat.format import Status
from labstream.loops import spawn
from labstream.metrics.errorlog import ErrorLog
from labstream.metrics.latency import CHUNK_LATENCY

__all__ = ["CachedLag", "MetricsServer", "is_loopback", "parse_address", "process_metrics"]

logger = logging.getLogger(__name__)

Collect = Callable[[], Iterable["Metric"]]
LagReader = Callable[[], list[tuple[str, str, int]]]  # -> (group, topic, messages)


def parse_address(value: str) -> tuple[str, int]:
    """ "9108" -> ("127.0.0.1", 9108); "0.0.0.0:9108" listens on every interface."""
    host, _, port = value.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise ConfigError(f"--metrics-port {value!r}: expected PORT or HOST:PORT")
    return (host.strip("[]") or "127.0.0.1", number)


class MetricsServer:
    """prometheus_client's HTTP server on its own registry, as a context manager.

    With a `token`, every scrape must send `Authorization: Bearer TOKEN` (Prometheus:
    `authorization: {credentials_file: ...}`); anything else is answered 401.
    """

    def __init__(self, address: tuple[str, int], collect: Collect, *, token: str | None = None) -> None:
        self.address = address
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_Collector(collect))
        self._token = token
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> MetricsServer:
        try:
            if self._token is None:
                self._server, self._thread = start_http_server(
                    self.address[1], self.address[0], registry=self._registry
                )
            else:
                self._server, self._thread = _serve_with_token(self.address, self._registry, self._token)
        except OSError as exc:
            raise ConfigError(f"cannot serve metrics on {self.address[0]}:{self.address[1]}: {exc}") from exc
        self.port = int(self._server.server_address[1])
        logger.info("serving metrics address=%s:%d", self.address[0], self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a log line each."""


def _serve_with_token(
    address: tuple[str, int], registry: CollectorRegistry, token: str
) -> tuple[WSGIServer, threading.Thread]:
    metrics = make_wsgi_app(registry)
    expected = f"Bearer {token}".encode()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        given = str(environ.get("HTTP_AUTHORIZATION", "")).encode("latin-1", "replace")
        if not hmac.compare_digest(given, expected):
            start_response(
                "401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")]
            )
            return [b"a bearer token is needed\n"]
        return metrics(environ, start_response)

    class Server(_ThreadingServer):
        address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET

    server = make_server(address[0], address[1], app, Server, handler_class=_Quiet)
    return server, spawn(server.serve_forever, "labstream-metrics")


def is_loopback(host: str) -> bool:
    """`host` is only reachable from this machine (127.0.0.0/8, ::1, localhost)."""
    return host == "localhost" or host.startswith("127.") or host in ("::1", "[::1]")


class _Collector:
    def __init__(self, collect: Collect) -> None:
        self._collect = collect

    def collect(self) -> Iterator[Metric]:
        yield from self._collect()


def process_metrics(
    role: str, snapshot: Callable[[], Status], errors: ErrorLog, lag: LagReader | None = None
) -> Collect:
    """The metrics of one watch/download/process, read fresh at every scrape."""

    def collect() -> Iterator[Metric]:
        info = InfoMetricFamily("labstream_build", "labstream version and role")
        info.add_metric([], {"version": __version__, "role": role})
        yield info
        yield from _status_metrics(snapshot())
        yield _latency()
        kinds = CounterMetricFamily(
            "labstream_log_events", "WARNING and ERROR log records by kind", labels=["level", "kind"]
        )
        for (level, kind), count in sorted(errors.counts().items()):
            kinds.add_metric([level, kind], count)
        yield kinds
        if lag is not None:
            gauge = GaugeMetricFamily(
                "labstream_consumer_lag_messages", "messages not yet committed", labels=["group", "topic"]
            )
            for group, topic, messages in lag():
                gauge.add_metric([group, topic], messages)
            yield gauge

    return collect


def _status_metrics(status: Status) -> Iterator[Metric]:
    for name, value, text in (
        ("labstream_files_sent", status.sent, "files sent and acknowledged"),
        ("labstream_files_verified", status.verified, "files rebuilt and verified by SHA-256"),
        ("labstream_files_failed", status.failed, "files that failed to send or verify"),
        ("labstream_bytes", status.bytes, "bytes sent or received"),
    ):
        yield CounterMetricFamily(name, text, value=value)
    for name, value, text in (
        ("labstream_backlog_files", status.queued_files, "files waiting to be sent"),
        ("labstream_backlog_bytes", status.queued_bytes, "bytes waiting to be sent"),
        ("labstream_in_flight_files", status.in_flight, "files being sent or awaiting acknowledgement"),
    ):
        yield GaugeMetricFamily(name, text, value=value)


def _latency() -> Metric:
    buckets, total = CHUNK_LATENCY.snapshot()
    family = HistogramMetricFamily(
        "labstream_chunk_delivery_seconds", "produce -> acknowledgement time of each chunk"
    )
    family.add_metric([], buckets, sum_value=total)
    return family


class CachedLag:
    """Reads a group's lag at most every `every` seconds (scrapes must stay cheap)."""

    def __init__(self, read: Callable[[], tuple[str, str, int]], every: float = 15.0) -> None:
        self._read = read
        self._every = every
        self._lock = threading.Lock()
        self._value: list[tuple[str, str, int]] = []
        self._at = -float("inf")

    def __call__(self) -> list[tuple[str, str, int]]:
        with self._lock:
            if time.monotonic() - self._at >= self._every:
                self._at = time.monotonic()
                try:
                    self._value = [self._read()]
                except LabstreamError as exc:
                    logger.info("consumer lag not available reason=%s", exc)
            return list(self._value)
