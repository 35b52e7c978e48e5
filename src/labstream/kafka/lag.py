"""Consumer-group lag from the admin API: committed offsets against the partitions' ends."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import confluent_kafka
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

from labstream.errors import KafkaError
from labstream.kafka.admin import _admin
from labstream.kafka.settings import LibrdkafkaConfig

__all__ = ["GroupLag", "group_lag"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GroupLag:
    """How many messages of `topic` group `group` has not committed yet."""

    group: str
    topic: str
    messages: int
    partitions: int
    committed: bool  # False: the group has committed nothing on this topic yet


def group_lag(librdkafka: LibrdkafkaConfig, group: str, topic: str, timeout: float = 10.0) -> GroupLag:
    """Lag of one group on one topic; raises `KafkaError` when the cluster does not answer."""
    admin = _admin(librdkafka)
    try:
        ends = _ends(admin, topic, timeout)
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in ends])
        result = admin.list_consumer_group_offsets([request], request_timeout=timeout)[group].result()
    except confluent_kafka.KafkaException as exc:
        raise KafkaError(f"cannot read the lag of group {group!r} on {topic!r}: {exc.args[0]}") from exc
    lag = 0
    committed = False
    for part in result.topic_partitions:
        end = ends.get(part.partition, 0)
        if part.offset >= 0:
            committed = True
            lag += max(0, end - part.offset)
        else:  # nothing committed: everything from the start is still to read
            lag += end
    return GroupLag(group, topic, lag, len(ends), committed)


def _ends(admin: Any, topic: str, timeout: float) -> dict[int, int]:
    """High watermark per partition of `topic` (missing topic: KafkaError)."""
    # Naming the topic in the request could make the broker auto-create it: ask for all.
    metadata = admin.list_topics(timeout=timeout)
    info = metadata.topics.get(topic)
    if info is None or info.error is not None:
        raise KafkaError(f"topic {topic!r} not found")
    latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    wanted = {TopicPartition(topic, p): latest for p in info.partitions}
    if not wanted:
        return {}
    futures = admin.list_offsets(wanted, request_timeout=timeout)
    return {tp.partition: future.result().offset for tp, future in futures.items()}
