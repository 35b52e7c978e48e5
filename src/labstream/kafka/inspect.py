"""Read-only questions to the cluster: topics, configs, rights, offsets by time.

Nothing here writes: topic creation is asked with `validate_only`, rights come from the
authorized operations the broker reports (KIP-430), so the answers are what the broker's
authorizer says for this principal, without ACL-describe rights and without probe messages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import confluent_kafka
from confluent_kafka import TopicCollection, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    ConfigResource,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

from labstream.errors import KafkaError
from labstream.kafka.admin import _admin
from labstream.kafka.settings import LibrdkafkaConfig

__all__ = [
    "ClusterInfo",
    "DeniedError",
    "PartitionOffsets",
    "TopicInfo",
    "broker_config",
    "describe_cluster",
    "describe_topic",
    "group_operations",
    "may_create_topic",
    "partition_offsets",
]


_COORDINATOR_MOVING = (
    confluent_kafka.KafkaError.NOT_COORDINATOR,
    confluent_kafka.KafkaError.COORDINATOR_NOT_AVAILABLE,
    confluent_kafka.KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
)


class DeniedError(KafkaError):
    """The broker's authorizer refused the request (an ACL is missing)."""


@dataclass(frozen=True)
class ClusterInfo:
    cluster_id: str
    brokers: tuple[tuple[int, str, int], ...]  # (id, host, port)
    operations: frozenset[str] | None  # what this principal may do on the cluster


@dataclass(frozen=True)
class TopicInfo:
    name: str
    partitions: int
    replication: int  # the smallest replica count of its partitions
    operations: frozenset[str] | None  # e.g. {"READ", "WRITE", "DESCRIBE"}
    configs: dict[str, str] = field(default_factory=dict)  # empty if DescribeConfigs is refused
    configs_error: str = ""


@dataclass(frozen=True)
class PartitionOffsets:
    partition: int
    earliest: int
    latest: int  # the high watermark: the next offset to be written
    at_time: int  # first offset at or after the asked time; `latest` if none


def describe_cluster(librdkafka: LibrdkafkaConfig, timeout: float = 10.0) -> ClusterInfo:
    admin = _admin(librdkafka)
    try:
        found = admin.describe_cluster(include_authorized_operations=True, request_timeout=timeout).result()
    except confluent_kafka.KafkaException as exc:
        raise _mapped(exc, "cannot describe the cluster") from exc
    brokers = tuple((n.id, n.host, n.port) for n in found.nodes)
    return ClusterInfo(str(found.cluster_id), brokers, _names(found.authorized_operations))


def describe_topic(librdkafka: LibrdkafkaConfig, topic: str, timeout: float = 10.0) -> TopicInfo | None:
    """The topic with its configs and this principal's rights; None if it does not exist.
    `DeniedError` if the principal may not even describe it."""
    admin = _admin(librdkafka)
    future = admin.describe_topics(
        TopicCollection([topic]), include_authorized_operations=True, request_timeout=timeout
    )[topic]
    try:
        found = future.result()
    except confluent_kafka.KafkaException as exc:
        if exc.args[0].code() == confluent_kafka.KafkaError.UNKNOWN_TOPIC_OR_PART:
            return None
        raise _mapped(exc, f"cannot describe topic {topic!r}") from exc
    replication = min((len(p.replicas) for p in found.partitions), default=0)
    configs, error = _configs(admin, ConfigResource(ResourceType.TOPIC, topic), timeout)
    operations = _names(found.authorized_operations)
    return TopicInfo(topic, len(found.partitions), replication, operations, configs, error)


def broker_config(librdkafka: LibrdkafkaConfig, broker_id: int, timeout: float = 10.0) -> dict[str, str]:
    """One broker's configs; `DeniedError` without DESCRIBE_CONFIGS on the cluster."""
    configs, error = _configs(
        _admin(librdkafka), ConfigResource(ResourceType.BROKER, str(broker_id)), timeout
    )
    if error:
        raise DeniedError(error) if "AUTHORIZATION" in error else KafkaError(error)
    return configs


def may_create_topic(
    librdkafka: LibrdkafkaConfig, topic: str, partitions: int, replication: int, timeout: float = 10.0
) -> str | None:
    """None if this principal may create `topic`, else the broker's reason. Nothing is created
    (CreateTopics with validate_only)."""
    admin = _admin(librdkafka)
    new = NewTopic(topic, partitions, replication)
    future = admin.create_topics([new], validate_only=True, request_timeout=timeout)[topic]
    try:
        future.result()
    except confluent_kafka.KafkaException as exc:
        error = exc.args[0]
        return f"{error.name()}: {error.str()}"
    return None


def group_operations(librdkafka: LibrdkafkaConfig, group: str, timeout: float = 10.0) -> frozenset[str]:
    """What this principal may do with consumer group `group` (which need not exist yet).
    While the group coordinator is still being set up (a new cluster: the offsets topic is
    created on first use), asks again until `timeout`."""
    admin = _admin(librdkafka)
    deadline = time.monotonic() + timeout
    while True:
        future = admin.describe_consumer_groups(
            [group], include_authorized_operations=True, request_timeout=timeout
        )[group]
        try:
            found = future.result()
        except confluent_kafka.KafkaException as exc:
            if exc.args[0].code() in _COORDINATOR_MOVING and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            raise _mapped(exc, f"cannot describe group {group!r}") from exc
        return _names(found.authorized_operations) or frozenset()


def partition_offsets(
    librdkafka: LibrdkafkaConfig, topic: str, partitions: int, at_ms: int, timeout: float = 10.0
) -> list[PartitionOffsets]:
    """Earliest, latest and first-at-or-after-`at_ms` offsets of each partition."""
    admin = _admin(librdkafka)
    specs = {
        "earliest": OffsetSpec.earliest(),  # type: ignore[no-untyped-call]
        "latest": OffsetSpec.latest(),  # type: ignore[no-untyped-call]
        "at": OffsetSpec.for_timestamp(at_ms),
    }
    found: dict[str, dict[int, int]] = {}
    try:
        for name, spec in specs.items():
            wanted = {TopicPartition(topic, p): spec for p in range(partitions)}
            futures = admin.list_offsets(wanted, request_timeout=timeout)
            found[name] = {tp.partition: f.result().offset for tp, f in futures.items()}
    except confluent_kafka.KafkaException as exc:
        raise _mapped(exc, f"cannot list the offsets of {topic!r}") from exc
    rows = []
    for p in range(partitions):
        at = found["at"][p]
        rows.append(
            PartitionOffsets(
                p, found["earliest"][p], found["latest"][p], at if at >= 0 else found["latest"][p]
            )
        )
    return rows


def _configs(admin: Any, resource: Any, timeout: float) -> tuple[dict[str, str], str]:
    try:
        found = admin.describe_configs([resource], request_timeout=timeout)[resource].result()
    except confluent_kafka.KafkaException as exc:
        error = exc.args[0]
        return {}, f"{error.name()}: {error.str()}"
    return {name: entry.value for name, entry in found.items() if entry.value is not None}, ""


def _names(operations: list[Any] | None) -> frozenset[str] | None:
    return None if operations is None else frozenset(op.name for op in operations)


def _mapped(exc: confluent_kafka.KafkaException, what: str) -> KafkaError:
    error = exc.args[0]
    text = f"{what}: {error.name()}: {error.str()}"
    return DeniedError(text) if "AUTHORIZATION" in error.name() else KafkaError(text)
