"""Publish receipts with the same guarantees as data: acks=all, idempotent; signed if keyed."""

from __future__ import annotations

import logging
import socket
import threading

from labstream.errors import ConfigError
from labstream.kafka.clients import REAL_CLIENTS, KafkaClients
from labstream.kafka.settings import LibrdkafkaConfig
from labstream.outcomes import Verdict
from labstream.receipts.format import MAX_NAME, Receipt
from labstream.receipts.signing import SigningKey

__all__ = ["ReceiptPublisher"]

logger = logging.getLogger(__name__)
_told_unsigned = threading.Event()  # said once per process, however many publishers it opens


class ReceiptPublisher:
    """One producer per downloader process; `publish` is thread-safe."""

    def __init__(
        self,
        librdkafka: LibrdkafkaConfig,
        topic: str,
        group: str,
        key: SigningKey | None = None,
        *,
        clients: KafkaClients = REAL_CLIENTS,
    ) -> None:
        if not group.isprintable() or not 0 < len(group) <= MAX_NAME:
            raise ConfigError(
                f"consumer group {group!r}: receipts need a printable name of 1 to {MAX_NAME} characters"
            )
        self.topic = topic
        self.group = group
        self.host = socket.gethostname()
        self._key = key
        if key is None:
            _say_unsigned_once()
        self._producer = clients.producer(librdkafka)

    def __enter__(self) -> ReceiptPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def publish(self, verdict: Verdict) -> None:
        path = verdict.path
        receipt = Receipt.outgoing(
            path,
            verdict.digest.hex(),
            verdict.size,
            verdict.outcome,
            self.group,
            self.host,
            verdict.reason,
            source=verdict.source,
            file_id=verdict.file_id.hex(),
            stored_as=verdict.stored_as,
        )
        if self._key is not None:
            receipt = receipt.signed(self._key, self.topic)
        self._producer.send(self.topic, path.encode("utf-8"), receipt.to_bytes(), self._on_delivery)

    def close(self) -> None:
        left = self._producer.flush(30.0)
        if left:
            logger.warning("receipts not delivered before closing count=%d", left)

    def _on_delivery(self, error: str | None) -> None:
        if error is not None:
            logger.warning("receipt not delivered topic=%s error=%s", self.topic, error)


def _say_unsigned_once() -> None:
    if not _told_unsigned.is_set():
        _told_unsigned.set()
        logger.info("receipts unsigned (to sign: labstream keygen --receipts NAME; receipts_signing_key)")
