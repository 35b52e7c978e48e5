"""Where the stages get their Kafka clients: one small factory, so tests can hand in another.

`KafkaClients` is what a stage needs: a producer, a consumer, "make sure this topic
exists", "is the cluster answering" and a consumer group's lag. `REAL_CLIENTS` opens
librdkafka clients; `labstream.kafka.memory.MemoryBroker` implements the same interface in
memory for unit tests of the threaded stages and the commands.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from labstream.errors import KafkaError
from labstream.kafka.admin import DEFAULT_PARTITIONS, create_topic, ensure_topic, ping
from labstream.kafka.consumer import Consumer, OnPartitions, Record
from labstream.kafka.inspect import DeniedError, broker_config, describe_cluster, describe_topic
from labstream.kafka.lag import GroupLag, group_lag
from labstream.kafka.producer import OnDelivery, Producer
from labstream.kafka.settings import LibrdkafkaConfig

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

    def producer(self, librdkafka: LibrdkafkaConfig) -> ProducerClient: ...

    def consumer(
        self,
        librdkafka: LibrdkafkaConfig,
        topics: list[str],
        *,
        on_assign: OnPartitions | None = None,
        on_revoke: OnPartitions | None = None,
        start_at_ms: int | None = None,
        start_new_at_ms: int | None = None,
    ) -> ConsumerClient: ...

    def ensure_topic(
        self,
        librdkafka: LibrdkafkaConfig,
        topic: str,
        partitions: int = DEFAULT_PARTITIONS,
        timeout: float = 10.0,
    ) -> None: ...

    def message_limit(self, librdkafka: LibrdkafkaConfig, topic: str, timeout: float = 10.0) -> int | None:
        """The largest record batch the cluster takes on `topic` (the topic's max.message.bytes,
        else the broker's message.max.bytes), or None when neither can be read."""

    def ensure_writable(
        self,
        librdkafka: LibrdkafkaConfig,
        topic: str,
        timeout: float = 10.0,
        partitions: int = DEFAULT_PARTITIONS,
    ) -> None:
        """`topic` exists (created with `partitions` if need be) and this principal may produce
        to it, else `KafkaError` (`DeniedError` for a missing right) in one line naming the fix."""

    def ping(self, librdkafka: LibrdkafkaConfig, timeout: float = 10.0) -> list[str]:
        """The cluster's topic names; `BrokerUnreachableError` if nobody answers in time,
        `KafkaError` when it refuses the credentials."""

    def group_lag(
        self, librdkafka: LibrdkafkaConfig, group: str, topic: str, timeout: float = 10.0
    ) -> GroupLag:
        """How far `group` is behind on `topic`; `KafkaError` when the cluster does not say."""


class RealClients:
    """librdkafka clients (confluent-kafka)."""

    def producer(self, librdkafka: LibrdkafkaConfig) -> ProducerClient:
        return Producer(librdkafka)

    def consumer(
        self,
        librdkafka: LibrdkafkaConfig,
        topics: list[str],
        *,
        on_assign: OnPartitions | None = None,
        on_revoke: OnPartitions | None = None,
        start_at_ms: int | None = None,
        start_new_at_ms: int | None = None,
    ) -> ConsumerClient:
        return Consumer(
            librdkafka,
            topics,
            on_assign=on_assign,
            on_revoke=on_revoke,
            start_at_ms=start_at_ms,
            start_new_at_ms=start_new_at_ms,
        )

    def ensure_topic(
        self,
        librdkafka: LibrdkafkaConfig,
        topic: str,
        partitions: int = DEFAULT_PARTITIONS,
        timeout: float = 10.0,
    ) -> None:
        ensure_topic(librdkafka, topic, partitions=partitions, timeout=timeout)

    def message_limit(self, librdkafka: LibrdkafkaConfig, topic: str, timeout: float = 10.0) -> int | None:
        info = describe_topic(librdkafka, topic, timeout)
        topic_max = _int(info.configs.get("max.message.bytes")) if info else None
        broker_max = None
        if topic_max is None:
            try:
                brokers = describe_cluster(librdkafka, timeout).brokers
                if brokers:
                    broker_max = _int(
                        broker_config(librdkafka, brokers[0][0], timeout).get("message.max.bytes")
                    )
            except KafkaError:
                broker_max = None  # needs DESCRIBE_CONFIGS on the cluster
        return topic_max if topic_max is not None else broker_max

    def ensure_writable(
        self,
        librdkafka: LibrdkafkaConfig,
        topic: str,
        timeout: float = 10.0,
        partitions: int = DEFAULT_PARTITIONS,
    ) -> None:
        refused = create_topic(librdkafka, topic, partitions, timeout=timeout)
        principal = librdkafka.get("sasl.username") or "PRINCIPAL"
        try:
            info = describe_topic(librdkafka, topic, timeout)
        except DeniedError as exc:
            raise DeniedError(
                f"may not use topic {topic!r} ({exc}); fix: kafka-acls.sh --add --allow-principal "
                f"User:{principal} --operation Write --operation Describe --topic {topic}"
            ) from exc
        except KafkaError:
            if refused is None:
                raise
            info = None  # e.g. an invalid name: the creation's reason says it best
        if info is None and refused is None:
            info = _described_once_known(librdkafka, topic, timeout)
        if info is None:
            raise KafkaError(
                f"topic {topic!r} does not exist and cannot be created ({refused or 'not found'}); "
                "create it (kafka-topics.sh --create) or check the name"
            )
        if info.operations is not None and not {"WRITE", "ALL"} & info.operations:
            raise DeniedError(
                f"{principal} may not produce to topic {topic!r} (allowed: "
                f"{', '.join(sorted(info.operations)) or 'nothing'}); fix: kafka-acls.sh --add "
                f"--allow-principal User:{principal} --operation Write --topic {topic}"
            )

    def ping(self, librdkafka: LibrdkafkaConfig, timeout: float = 10.0) -> list[str]:
        return ping(librdkafka, timeout)

    def group_lag(
        self, librdkafka: LibrdkafkaConfig, group: str, topic: str, timeout: float = 10.0
    ) -> GroupLag:
        return group_lag(librdkafka, group, topic, timeout)


REAL_CLIENTS: KafkaClients = RealClients()
METADATA_SETTLE_SECONDS = 5.0  # a topic just created may take this long to be known cluster-wide


def _described_once_known(librdkafka: LibrdkafkaConfig, topic: str, timeout: float) -> Any:
    """A topic created a moment ago may not yet be in the metadata of the broker asked (a
    cluster of several): asked again for a few seconds before it counts as not found."""
    deadline = time.monotonic() + min(timeout, METADATA_SETTLE_SECONDS)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        info = describe_topic(librdkafka, topic, timeout)
        if info is not None:
            return info
    return None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
