"""`run_upload`: files -> topic, every chunk acknowledged; optionally wait for receipts."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from labstream.errors import DeliveryError
from labstream.kafka import consumer_settings, producer_settings
from labstream.kafka.clients import REAL_CLIENTS, KafkaClients
from labstream.outcomes import ReceiptOutcome
from labstream.receipts import wait_verified
from labstream.receipts.collector import SentSpec
from labstream.runners.chunking import choose_chunk_size, fit_batches, fit_queue
from labstream.settings import UploadSettings
from labstream.upload import SourceFile, Uploader, UploadReport, raise_if_failed

__all__ = ["UploadOutcome", "run_upload"]

RECEIPT_SLACK_MS = 5000  # receipts are read from this long before the upload began


@dataclass(frozen=True)
class UploadOutcome:
    """What an upload did: the uploader's report, and with `wait_verified` the verdicts."""

    report: UploadReport
    verdicts: dict[str, str] = field(default_factory=dict)  # path -> "verified", "failed: ..."


def run_upload(
    settings: UploadSettings,
    files: list[SourceFile],
    *,
    clients: KafkaClients = REAL_CLIENTS,
    on_progress: Callable[[int], None] | None = None,
    on_waiting: Callable[[str], None] | None = None,
) -> UploadOutcome:
    """Send `files`; returns once every chunk is acknowledged, and with `wait_verified` once
    enough trusted receipts came for every file's own send. Raises `DeliveryError` (one line
    naming the first) if a file was not acknowledged, or not verified downstream.
    `on_waiting(line)` is told when the wait for receipts begins."""
    producer_conf = producer_settings(settings.config)
    started_ms = int(time.time() * 1000) - RECEIPT_SLACK_MS
    # Also the reachability check.
    clients.ensure_topic(producer_conf, settings.topic, settings.partitions, timeout=settings.timeout)
    chunk_size = settings.chunk_size
    if settings.auto_chunk_size:
        # Sized as if encrypted (the worst case): the same size either way.
        chunk_size, limit = choose_chunk_size(clients, producer_conf, settings.topic, encrypted=True)
        producer_conf = fit_batches(producer_conf, limit)
    with clients.producer(fit_queue(producer_conf, chunk_size)) as producer:
        uploader = Uploader(
            producer,
            settings.topic,
            chunk_size=chunk_size,
            threads=settings.threads,
            on_progress=on_progress,
            wire=settings.wire,
            max_rate=settings.max_rate,
            source=settings.source,
        )
        report = uploader.upload(files)
    raise_if_failed(report)
    if not settings.wait_verified:
        return UploadOutcome(report)
    return UploadOutcome(report, _wait(settings, report, started_ms, clients, on_waiting))


def _wait(
    settings: UploadSettings,
    report: UploadReport,
    since_ms: int,
    clients: KafkaClients,
    on_waiting: Callable[[str], None] | None,
) -> dict[str, str]:
    files: dict[str, str | SentSpec] = {
        s.source.relpath: SentSpec(s.sha256.hex(), s.file_id.hex(), settings.source) for s in report.sent
    }
    # Created here if missing: a consumer would not notice it appear for minutes.
    clients.ensure_topic(producer_settings(settings.config), settings.receipts_topic, partitions=1)
    if on_waiting is not None:
        on_waiting(f"waiting up to {settings.wait_timeout:g} s for receipts on {settings.receipts_topic} ...")
    verdicts = wait_verified(
        consumer_settings(settings.config, f"labstream-wait-{uuid.uuid4().hex[:12]}"),
        settings.receipts_topic,
        files,
        settings.trusted,
        since_ms=since_ms,
        verified_by=settings.verified_by,
        timeout=settings.wait_timeout,
        clients=clients,
    )
    bad = {path: v for path, v in verdicts.items() if v != ReceiptOutcome.VERIFIED}
    if bad:
        path, verdict = next(iter(bad.items()))
        raise DeliveryError(
            f"{len(bad)} of {len(files)} file(s) not verified downstream; first: {path}: {verdict}"
        )
    return verdicts
