"""Where the stages get their Kafka clients: one small factory, so tests can hand in another.

`KafkaClients` is what a stage needs: a producer, a consumer, and "make sure this topic
exists". `REAL_CLIENTS` opens librdkafka clients; `labstream.kafka.memory.MemoryBroker`
implements the same interface in memory for unit tests of the threaded stages.
"""

from __future__ import annotations

from typing import Any, Protocol

from labstream.kafka.admin import ensure_topic
from labstream.kafka.consumer import Consumer, OnPartitions, Record
from labstream.kafka.producer import OnDelivery, Producer

__all__ = ["REAL_CLIENTS", "ConsumerClient", "KafkaClients", "ProducerClient", "RealClients"]


class ProducerClient(Protocol):
    """What `labstream.kafka.Producer` offers a stage."""

    def __enter__(self) -> ProducerClient: ...

    def __exit__(self, *exc: object) -> None: ...

    def send(self, topic: str, key: bytes, value: bytes, on_delivery: OnDelivery) -> None: ...

    def poll(self, timeout: float = 0.0) -> None: ...

    def flush(self, timeout: float) -> int: ...

    def raise_if_fatal(self) -> None: ...


class ConsumerClient(Protocol):
    """What `labstream.kafka.Consumer` offers a stage."""

    def __enter__(self) -> ConsumerClient: ...

    def __exit__(self, *exc: object) -> None: ...

    def consume(self, max_records: int, timeout: float) -> list[Record]: ...

    def store(self, topic: str, partition: int, offset: int) -> None: ...

    def close(self) -> None: ...


class KafkaClients(Protocol):
    """Opens clients; the settings are librdkafka's (`producer_settings`, `consumer_settings`)."""

    def producer(self, settings: dict[str, Any]) -> ProducerClient: ...

    def consumer(
        self,
        settings: dict[str, Any],
        topics: list[str],
        *,
        on_assign: OnPartitions | None = None,
        on_revoke: OnPartitions | None = None,
        start_at_ms: int | None = None,
        start_new_at_ms: int | None = None,
    ) -> ConsumerClient: ...

    def ensure_topic(
        self, settings: dict[str, Any], topic: str, partitions: int = 4, timeout: float = 10.0
    ) -> None: ...


class RealClients:
    """librdkafka clients (confluent-kafka)."""

    def producer(self, settings: dict[str, Any]) -> ProducerClient:
        return Producer(settings)

    def consumer(
        self,
        settings: dict[str, Any],
        topics: list[str],
        *,
        on_assign: OnPartitions | None = None,
        on_revoke: OnPartitions | None = None,
        start_at_ms: int | None = None,
        start_new_at_ms: int | None = None,
    ) -> ConsumerClient:
        return Consumer(
            settings,
            topics,
            on_assign=on_assign,
            on_revoke=on_revoke,
            start_at_ms=start_at_ms,
            start_new_at_ms=start_new_at_ms,
        )

    def ensure_topic(
        self, settings: dict[str, Any], topic: str, partitions: int = 4, timeout: float = 10.0
    ) -> None:
        ensure_topic(settings, topic, partitions=partitions, timeout=timeout)


REAL_CLIENTS: KafkaClients = RealClients()
