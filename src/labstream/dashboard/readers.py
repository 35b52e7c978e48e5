"""Threads that fill the store: heartbeats, receipts (both topics) and consumer-group lag.

Whatever arrives on a topic is checked before it is stored; a message that fails the check
is counted (shown on the page) and skipped, never allowed to stop a reader.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable

from labstream.dashboard.store import Store
from labstream.errors import LabstreamError, WireError
from labstream.heartbeat import Heartbeat, parse_heartbeat
from labstream.heartbeat.format import Verifier
from labstream.kafka import Record
from labstream.kafka.clients import REAL_CLIENTS, ConsumerClient, KafkaClients
from labstream.kafka.settings import LibrdkafkaConfig
from labstream.loops import BackgroundLoop
from labstream.receipts import Receipt

__all__ = ["LagPoller", "TopicReader", "heartbeat_handler", "receipt_handler"]

logger = logging.getLogger(__name__)

MAX_RECEIPT_BYTES = 64 * 1024
BATCH = 500
RETRY_SECONDS = 5.0
Handler = Callable[[list[Record]], None]


class TopicReader(BackgroundLoop):
    """Consumes `topics` on a thread, hands each batch to `handle`, and stores the offsets
    only after it returned (the batch is in SQLite by then)."""

    restart_seconds = RETRY_SECONDS

    def __init__(
        self,
        librdkafka: LibrdkafkaConfig,
        topics: list[str],
        handle: Handler,
        *,
        name: str,
        start_at_ms: int | None = None,
        clients: KafkaClients = REAL_CLIENTS,
    ) -> None:
        super().__init__(f"labstream-dashboard-{name}")
        self._clients = clients
        self._librdkafka = librdkafka
        self._topics = topics
        self._handle = handle
        self._start_at_ms = start_at_ms
        self.error = ""

    def on_error(self, exc: Exception) -> None:
        self.error = str(exc)
        if isinstance(exc, (LabstreamError, sqlite3.Error)):  # the broker or the disk: expected
            logger.warning("dashboard reader retrying topics=%s reason=%s", self._topics, exc)
        else:
            super().on_error(exc)

    def run(self) -> None:
        with self._clients.consumer(
            self._librdkafka, self._topics, start_at_ms=self._start_at_ms
        ) as consumer:
            self._loop(consumer)

    def _loop(self, consumer: ConsumerClient) -> None:
        while self.should_keep_running():
            records = consumer.consume(BATCH, 0.5)
            if not records:
                continue
            self._handle(records)
            self.error = ""
            ends: dict[tuple[str, int], int] = {}
            for record in records:
                ends[(record.topic, record.partition)] = record.offset + 1
            for (topic, partition), offset in ends.items():
                consumer.store(topic, partition, offset)


def heartbeat_handler(store: Store, verify: Verifier | None = None) -> Handler:
    def handle(records: list[Record]) -> None:
        beats: list[Heartbeat] = []
        for record in records:
            try:
                beats.append(parse_heartbeat(record.value, verify))
            except WireError as exc:
                logger.info("heartbeat rejected offset=%d reason=%s", record.offset, exc)
                store.count("rejected heartbeats")
        store.add_heartbeats(beats)

    return handle


def receipt_handler(store: Store) -> Handler:
    def handle(records: list[Record]) -> None:
        receipts: list[tuple[str, Receipt]] = []
        for record in records:
            try:
                receipt = _receipt(record.value)
            except WireError as exc:
                logger.info("receipt rejected topic=%s offset=%d reason=%s", record.topic, record.offset, exc)
                store.count("rejected receipts")
                continue
            receipts.append((record.topic.removesuffix(".receipts"), receipt))
        store.add_receipts(receipts)

    return handle


def _receipt(value: bytes) -> Receipt:
    """`Receipt.from_bytes`, plus the limits a store shared with hostile writers needs."""
    if len(value) > MAX_RECEIPT_BYTES:
        raise WireError(f"receipt of {len(value)} bytes is over the limit")
    try:
        receipt = Receipt.from_bytes(value)
    except RecursionError as exc:
        raise WireError("receipt nested too deep") from exc
    for text, limit in ((receipt.path, 4096), (receipt.group, 255), (receipt.host, 255)):
        if not text or len(text) > limit:
            raise WireError("receipt field empty or too long")
    try:
        (receipt.path + receipt.group + receipt.host + receipt.reason).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise WireError("receipt is not valid text") from exc
    if receipt.size < 0 or receipt.size > 2**63 - 1:
        raise WireError("receipt size out of range")
    return receipt


class LagPoller(BackgroundLoop):
    """Every `every` seconds: the lag (messages, and files not yet receipted) of the groups
    the dashboard knows of, at most `limit` of them, most recently seen first."""

    def __init__(
        self,
        librdkafka: LibrdkafkaConfig,
        store: Store,
        every: float = 15.0,
        limit: int = 50,
        *,
        clients: KafkaClients = REAL_CLIENTS,
    ) -> None:
        super().__init__("labstream-dashboard-lag")
        self._clients = clients
        self._librdkafka = librdkafka
        self._store = store
        self._every = every
        self._limit = limit

    def run(self) -> None:
        while self.should_keep_running():
            started = time.monotonic()
            groups = self.groups()
            for group, topic in groups:
                if not self.should_keep_running():
                    return
                try:
                    lag = self._clients.group_lag(self._librdkafka, group, topic, timeout=5.0)
                    self._store.set_lag(group, topic, lag.messages, self._store.files_waiting(group, topic))
                except LabstreamError as exc:
                    logger.info("lag not available group=%s topic=%s reason=%s", group, topic, exc)
            every = self._every if groups else 1.0  # none known yet: look again soon
            self.wait(max(1.0, every - (time.monotonic() - started)))

    def groups(self) -> list[tuple[str, str]]:
        rows = self._store.read(
            "SELECT grp, topic FROM (SELECT grp, topic, received AS seen FROM instances "
            "WHERE role != 'watch' AND grp != '' AND topic != '' "
            "UNION ALL SELECT grp, topic, last_at AS seen FROM groups) "
            "GROUP BY grp, topic ORDER BY MAX(seen) DESC LIMIT ?",
            (self._limit,),
        )
        return [(str(r["grp"]), str(r["topic"])) for r in rows]
