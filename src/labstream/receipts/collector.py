"""Read receipts: continuously for a watcher, or once up to "now" for status/wait.

Every receipt is parsed strictly and checked against the trusted keys before the callback
sees it. A "live" receipt (a live send's verified prefix, progress and not a verdict) goes
only to an `on_live` handler, and is dropped where none is given, so that code deciding on
verified and failed never sees one. A message that fails in any way (malformed, or the
callback raising) is logged in one line and skipped, and the reader goes on. The watcher's
collector thread never dies: after a Kafka error it reconnects.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import NamedTuple

from labstream.errors import WireError
from labstream.kafka.clients import REAL_CLIENTS, KafkaClients
from labstream.kafka.settings import LibrdkafkaConfig
from labstream.logsafe import shown
from labstream.loops import BackgroundLoop
from labstream.outcomes import ReceiptOutcome
from labstream.receipts.format import Receipt
from labstream.receipts.signing import TrustedKeys

__all__ = ["ReceiptCollector", "SentSpec", "read_receipts", "wait_verified"]

logger = logging.getLogger(__name__)
RECONNECT_SECONDS = 5.0


class ReceiptCollector(BackgroundLoop):
    """A thread that hands every receipt to `on_receipt`, storing offsets after it returns."""

    restart_seconds = RECONNECT_SECONDS

    def __init__(
        self,
        librdkafka: LibrdkafkaConfig,
        topic: str,
        on_receipt: Callable[[Receipt], None],
        trusted: TrustedKeys,
        *,
        on_live: Callable[[Receipt], None] | None = None,
        clients: KafkaClients = REAL_CLIENTS,
    ) -> None:
        super().__init__("labstream-receipts")
        self._clients = clients
        self._on_live = on_live
        self._librdkafka = librdkafka
        self._topic = topic
        self._on_receipt = on_receipt
        self._trusted = trusted

    def on_error(self, exc: Exception) -> None:
        # A bug or a broker error must not end clean-up for good: logged, then reconnect.
        logger.error("receipt collector restarting topic=%s", shown(self._topic), exc_info=exc)

    def run(self) -> None:
        with self._clients.consumer(self._librdkafka, [self._topic]) as consumer:
            while self.should_keep_running():
                for record in consumer.consume(200, 0.5):
                    deliver(record.value, record.topic, self._trusted, self._on_receipt, self._on_live)
                    consumer.store(record.topic, record.partition, record.offset + 1)


def read_receipts(
    librdkafka: LibrdkafkaConfig,
    topic: str,
    on_receipt: Callable[[Receipt], None],
    trusted: TrustedKeys,
    *,
    until: Callable[[], bool] = lambda: False,
    idle_seconds: float = 3.0,
    timeout: float = 60.0,
    start_at_ms: int | None = None,
    on_live: Callable[[Receipt], None] | None = None,
    clients: KafkaClients = REAL_CLIENTS,
) -> None:
    """Read receipts until `until()` is true, nothing arrives for `idle_seconds`, or timeout."""
    deadline = time.monotonic() + timeout
    with clients.consumer(librdkafka, [topic], start_at_ms=start_at_ms) as consumer:
        last = time.monotonic()
        while time.monotonic() < deadline and not until():
            records = consumer.consume(200, 0.5)
            if records:
                last = time.monotonic()
            elif time.monotonic() - last > idle_seconds:
                return
            for record in records:
                deliver(record.value, record.topic, trusted, on_receipt, on_live)
                consumer.store(record.topic, record.partition, record.offset + 1)


def deliver(
    value: bytes,
    topic: str,
    trusted: TrustedKeys,
    on_receipt: Callable[[Receipt], None],
    on_live: Callable[[Receipt], None] | None = None,
) -> None:
    """Parse, authenticate and hand over one message; never raises (one log line instead).
    A live receipt goes to `on_live`, or nowhere."""
    try:
        receipt = Receipt.from_bytes(value).authenticate(trusted, topic)
    except WireError as exc:
        logger.warning("receipt ignored topic=%s bytes=%d reason=%s", shown(topic), len(value), shown(exc))
        return
    except Exception as exc:
        logger.warning("receipt ignored topic=%s bytes=%d reason=%r", topic, len(value), exc)
        return
    handler = on_live if receipt.outcome == ReceiptOutcome.LIVE else on_receipt
    if handler is None:
        return
    try:
        handler(receipt)
    except Exception:
        logger.exception("receipt not handled file=%s group=%s", shown(receipt.path), shown(receipt.group))


def wait_verified(
    librdkafka: LibrdkafkaConfig,
    topic: str,
    files: dict[str, str | SentSpec],
    trusted: TrustedKeys,
    *,
    since_ms: int,
    verified_by: int = 1,
    timeout: float = 300.0,
    clients: KafkaClients = REAL_CLIENTS,
) -> dict[str, str]:
    """Wait for authenticated receipts of `files` (relative path -> hex digest, or the
    `SentSpec` of the send, which then only receipts naming that send or none can decide).

    Returns, per file, "verified", "failed: <reason> ..." or "no receipt" (timed out). A file
    counts as verified once `verified_by` distinct trusted keys verified that exact digest.
    Receipts not signed by a trusted key never decide anything: they are logged and counted
    ("no receipt (N unauthenticated receipt(s) ignored)").
    """
    keys: dict[str, set[str]] = {path: set() for path in files}
    ignored: dict[str, int] = {path: 0 for path in files}
    verdict: dict[str, str] = {}

    sends = {path: spec if isinstance(spec, SentSpec) else SentSpec(spec) for path, spec in files.items()}

    def on_receipt(receipt: Receipt) -> None:
        sent = sends.get(receipt.path)
        if sent is None or not sent.named_by(receipt) or receipt.path in verdict:
            return
        if not receipt.authenticated:
            ignored[receipt.path] += 1
            logger.warning(
                "unauthenticated receipt ignored file=%r outcome=%s group=%r key_id=%s",
                receipt.path,
                receipt.outcome,
                receipt.group,
                receipt.key_id or "-",
            )
            return
        if receipt.outcome == ReceiptOutcome.FAILED:
            verdict[receipt.path] = (
                f"failed: {receipt.reason!r} (group {receipt.group!r}, key {receipt.key_id})"
            )
            return
        keys[receipt.path].add(receipt.key_id)
        if len(keys[receipt.path]) >= verified_by:
            verdict[receipt.path] = ReceiptOutcome.VERIFIED

    read_receipts(
        librdkafka,
        topic,
        on_receipt,
        trusted,
        until=lambda: len(verdict) == len(files),
        idle_seconds=float("inf"),
        timeout=timeout,
        start_at_ms=since_ms,
        clients=clients,
    )
    return {path: verdict.get(path) or _no_receipt(ignored[path]) for path in files}


class SentSpec(NamedTuple):
    """What a sender knows of one send: the digest (hex), and in wire v2 the send's file id
    (hex) and the instrument's source name."""

    sha256: str
    file_id: str = ""
    source: str = ""

    def named_by(self, receipt: Receipt) -> bool:
        """`receipt` is about this send: its digest (or, for a send that failed before its
        digest arrived, its file id), from this source or one naming none."""
        if not receipt.names_send(self.source, self.file_id):
            return False
        return receipt.sha256 == self.sha256 or (not receipt.sha256 and receipt.file_id == self.file_id)


def _no_receipt(ignored: int) -> str:
    return f"no receipt ({ignored} unauthenticated receipt(s) ignored)" if ignored else "no receipt"
