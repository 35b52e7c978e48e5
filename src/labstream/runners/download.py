"""`run_download`: a topic -> verified files in a folder, with receipts and heartbeats."""

from __future__ import annotations

import threading
from contextlib import ExitStack, nullcontext

from labstream.download import Downloader
from labstream.download.downloader import DownloadReport
from labstream.download.placement import check_writable
from labstream.heartbeat.sources import counts_source
from labstream.kafka import consumer_settings, producer_settings, static_membership
from labstream.kafka.clients import REAL_CLIENTS, KafkaClients
from labstream.locks import InstanceLock
from labstream.receipts.signing import heartbeat_signer
from labstream.runners.receipts import open_publisher
from labstream.runners.telemetry import monitoring
from labstream.runners.watch import Guard
from labstream.settings import DownloadSettings
from labstream.state import OutputState

__all__ = ["run_download"]


def run_download(
    settings: DownloadSettings,
    stop: threading.Event,
    *,
    clients: KafkaClients = REAL_CLIENTS,
    while_running: Guard = nullcontext,
) -> DownloadReport:
    """Download until `stop` is set or idle; the folder's lock is taken before any broker contact."""
    config, topic = settings.config, settings.topic
    consumer_conf = static_membership(consumer_settings(config, settings.group), config, settings.out_dir)
    group = str(consumer_conf["group.id"])
    check_writable(settings.out_dir)
    with ExitStack() as stack:
        stack.enter_context(InstanceLock(OutputState(settings.out_dir).lock, "downloader"))
        # Also the reachability check. A downloader may start before anything was uploaded: the
        # topic it waits for must exist, or the consumer would not notice it appear for minutes.
        clients.ensure_topic(producer_settings(config), topic, timeout=settings.timeout)
        publisher = None
        if settings.receipts:
            publisher = stack.enter_context(
                open_publisher(config, settings.receipts_topic, group, settings.signing_key, clients)
            )
        downloader = Downloader(
            consumer_conf,
            topic,
            settings.out_dir,
            threads=settings.threads,
            exit_when_idle=settings.exit_when_idle,
            stop=stop,
            on_verdict=publisher.publish if publisher else None,
            cipher=settings.cipher,
            limits=settings.limits,
            clients=clients,
            stop_grace=settings.stop_grace,
        )
        key = settings.signing_key
        stack.enter_context(
            monitoring(
                config,
                settings.telemetry,
                role="download",
                subject=f"{topic}/{group}",
                source=lambda last_error: counts_source(lambda: downloader.report, topic, group, last_error),
                lag_of=(group, topic),
                sign=heartbeat_signer(key) if key is not None else None,
                clients=clients,
            )
        )
        with while_running():
            return downloader.run()
