"""Read receipts: continuously for a watcher, or once up to "now" for status/wait."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from labstream.errors import LabstreamError, WireError
from labstream.kafka import Consumer
from labstream.logsafe import shown
from labstream.receipts.format import Receipt

__all__ = ["ReceiptCollector", "read_receipts", "wait_verified"]

logger = logging.getLogger(__name__)


class ReceiptCollector:
    """A thread that hands every receipt to `on_receipt`, storing offsets after it returns."""

    def __init__(self, settings: dict[str, Any], topic: str, on_receipt: Callable[[Receipt], None]) -> None:
        self._settings = settings
        self._topic = topic
        self._on_receipt = on_receipt
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="labstream-receipts", daemon=True)

    def __enter__(self) -> ReceiptCollector:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            with Consumer(self._settings, [self._topic]) as consumer:
                while not self._stop.is_set():
                    for record in consumer.consume(200, 0.5):
                        _deliver(record.value, self._on_receipt)
                        consumer.store(record.topic, record.partition, record.offset + 1)
        except LabstreamError as exc:
            logger.error("receipt collector stopped topic=%s reason=%s", self._topic, shown(exc))


def read_receipts(
    settings: dict[str, Any],
    topic: str,
    on_receipt: Callable[[Receipt], None],
    *,
    until: Callable[[], bool] = lambda: False,
    idle_seconds: float = 3.0,
    timeout: float = 60.0,
    start_at_ms: int | None = None,
) -> None:
    """Read receipts until `until()` is true, nothing arrives for `idle_seconds`, or timeout."""
    deadline = time.monotonic() + timeout
    with Consumer(settings, [topic], start_at_ms=start_at_ms) as consumer:
        last = time.monotonic()
        while time.monotonic() < deadline and not until():
            records = consumer.consume(200, 0.5)
            if records:
                last = time.monotonic()
            elif time.monotonic() - last > idle_seconds:
                return
            for record in records:
                _deliver(record.value, on_receipt)
                consumer.store(record.topic, record.partition, record.offset + 1)


def _deliver(value: bytes, on_receipt: Callable[[Receipt], None]) -> None:
    try:
        receipt = Receipt.from_bytes(value)
    except WireError as exc:
        logger.warning("receipt ignored reason=%s", shown(exc))
        return
    on_receipt(receipt)


def wait_verified(
    settings: dict[str, Any],
    topic: str,
    files: dict[str, str],
    *,
    since_ms: int,
    verified_by: int = 1,
    timeout: float = 300.0,
) -> dict[str, str]:
    """Wait for receipts of `files` (relative path -> SHA-256 hex).

    Returns, per file, "verified", "failed: <reason>" or "no receipt" (timed out).
    A file counts as verified once `verified_by` distinct groups verified that exact hash.
    """
    groups: dict[str, set[str]] = {path: set() for path in files}
    verdict: dict[str, str] = {}

    def on_receipt(receipt: Receipt) -> None:
        if files.get(receipt.path) != receipt.sha256 or receipt.path in verdict:
            return
        if receipt.outcome == "failed":
            verdict[receipt.path] = f"failed: {receipt.reason} (group {receipt.group})"
            return
        groups[receipt.path].add(receipt.group)
        if len(groups[receipt.path]) >= verified_by:
            verdict[receipt.path] = "verified"

    read_receipts(
        settings,
        topic,
        on_receipt,
        until=lambda: len(verdict) == len(files),
        idle_seconds=float("inf"),
        timeout=timeout,
        start_at_ms=since_ms,
    )
    return {path: verdict.get(path, "no receipt") for path in files}
