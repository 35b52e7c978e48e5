"""Run the dashboard: reader threads, the lag poller, metrics, and uvicorn, in one ExitStack."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labstream.config import Config
from labstream.dashboard.app import create_app
from labstream.dashboard.metrics import fleet_metrics
from labstream.dashboard.readers import LagPoller, TopicReader, heartbeat_handler, receipt_handler
from labstream.dashboard.store import Store
from labstream.errors import ConfigError
from labstream.heartbeat import DEFAULT_HEARTBEAT_TOPIC
from labstream.heartbeat.format import Verifier
from labstream.kafka import consumer_settings, producer_settings
from labstream.kafka.clients import REAL_CLIENTS, KafkaClients
from labstream.loops import BackgroundLoop, spawn

__all__ = ["DashboardSettings", "run_dashboard"]

logger = logging.getLogger(__name__)

ALL_RECEIPTS = r"^.*\.receipts$"  # a regex subscription: every receipts topic, new ones too
HEARTBEAT_HISTORY_SECONDS = 3600.0  # on start, heartbeats from the last hour rebuild the fleet


@dataclass(frozen=True)
class DashboardSettings:
    state: Path
    host: str = "127.0.0.1"
    port: int = 8470
    heartbeat_topic: str = DEFAULT_HEARTBEAT_TOPIC
    receipts_topics: tuple[str, ...] = ()  # empty: every topic named *.receipts
    token: str | None = None
    keep_days: float = 30.0
    lag_seconds: float = 15.0
    metrics: tuple[str, int] | None = None


def run_dashboard(
    config: Config,
    settings: DashboardSettings,
    *,
    on_ready: Callable[[str], None] = lambda url: None,
    stop: threading.Event | None = None,
    verify: Verifier | None = None,
    clients: KafkaClients = REAL_CLIENTS,
) -> None:
    """Serve until `stop` is set (the CLI sets it on Ctrl+C or SIGTERM)."""
    import uvicorn  # the `dashboard` extra; the CLI checks it is installed

    stop = stop or threading.Event()
    clients.ensure_topic(producer_settings(config), settings.heartbeat_topic, partitions=1)
    digest = hashlib.sha256(str(settings.state.resolve()).encode()).hexdigest()[:12]
    listener = _listen(settings.host, settings.port)
    with ExitStack() as stack:
        store = stack.enter_context(Store(settings.state / "dashboard.sqlite"))
        store.prune(settings.keep_days)
        readers = _readers(config, settings, store, digest, verify, clients)
        for reader in readers:
            stack.enter_context(reader)
        lag = LagPoller(producer_settings(config), store, every=settings.lag_seconds, clients=clients)
        stack.enter_context(lag)
        if settings.metrics is not None:
            from labstream.metrics.exporter import MetricsServer, is_loopback

            # Beyond loopback, the fleet's names and counts are the dashboard's to guard.
            token = None if is_loopback(settings.metrics[0]) else settings.token
            stack.enter_context(MetricsServer(settings.metrics, fleet_metrics(store), token=token))
        stack.enter_context(_Pruner(store, settings.keep_days))
        app = create_app(store, token=settings.token, readers=readers, stop=stop)
        server = _Server(uvicorn.Config(app, log_config=None, timeout_graceful_shutdown=3), stop)
        host, port = listener.getsockname()[:2]
        on_ready(f"http://{host if ':' not in host else f'[{host}]'}:{port}/")
        server.run(sockets=[listener])


def _readers(
    config: Config,
    settings: DashboardSettings,
    store: Store,
    digest: str,
    verify: Verifier | None,
    clients: KafkaClients,
) -> list[TopicReader]:
    base = {"auto.offset.reset": "earliest", "topic.metadata.refresh.interval.ms": 10000}
    receipts = list(settings.receipts_topics) or [ALL_RECEIPTS]
    return [
        TopicReader(
            consumer_settings(config, f"labstream-dashboard-heartbeats-{digest}", base),
            [settings.heartbeat_topic],
            heartbeat_handler(store, verify),
            name="heartbeats",
            start_at_ms=int((time.time() - HEARTBEAT_HISTORY_SECONDS) * 1000),
            clients=clients,
        ),
        TopicReader(
            consumer_settings(config, f"labstream-dashboard-receipts-{digest}", base),
            receipts,
            receipt_handler(store),
            name="receipts",
            clients=clients,
        ),
    ]


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(128)
    return sock


class _Server:
    """uvicorn's Server, stopped by our `stop` event. Signals are the caller's business
    (the CLI's `stop_on_signals`): uvicorn's own handlers would re-raise SIGTERM at exit."""

    def __init__(self, config: Any, stop: threading.Event) -> None:
        import uvicorn

        class Quiet(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        self._server = Quiet(config)
        self._stop = stop
        # A thread that only waits for `stop`: uvicorn's loop must not block on our event.
        self._watch = spawn(self._watch_stop, "labstream-dashboard-stop", start=False)

    def run(self, sockets: list[socket.socket]) -> None:
        self._watch.start()
        try:
            self._server.run(sockets=sockets)
        finally:
            self._stop.set()  # ends the live streams, and the watcher thread
            self._watch.join()

    def _watch_stop(self) -> None:
        self._stop.wait()
        self._server.should_exit = True


class _Pruner(BackgroundLoop):
    """Forgets data older than `keep_days`, hourly."""

    def __init__(self, store: Store, keep_days: float) -> None:
        super().__init__("labstream-dashboard-prune")
        self._store = store
        self._keep_days = keep_days

    def run(self) -> None:
        while not self.wait(3600.0):
            self._store.prune(self._keep_days)
