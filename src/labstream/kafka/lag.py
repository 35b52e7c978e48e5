"""Consumer-group lag from the admin API: committed offsets against the partitions' ends."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import confluent_kafka
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

from labstream.errors import KafkaError
from labstream.kafka.admin import _admin, topic_partitions
from labstream.kafka.settings import LibrdkafkaConfig

__all__ = ["GroupLag", "group_lag", "unread"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GroupLag:
    """How many messages of `topic` group `group` has not committed yet."""

    group: str
    topic: str
    messages: int
    partitions: int
    committed: bool  # False: the group has committed nothing on this topic yet


def group_lag(
    librdkafka: LibrdkafkaConfig,
    group: str,
    topic: str,
    timeout: float = 10.0,
    positions: Mapping[int, int] | None = None,
) -> GroupLag:
    """Lag of one group on one topic; raises `KafkaError` when the cluster does not answer.
    `positions` (partition -> next offset to read) of a running member count instead of the
    committed offsets where they are further: see `unread`."""
    admin = _admin(librdkafka)
    try:
        ends = _ends(admin, topic, timeout)
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in ends])
        result = admin.list_consumer_group_offsets([request], request_timeout=timeout)[group].result()
    except confluent_kafka.KafkaException as exc:
        raise KafkaError(f"cannot read the lag of group {group!r} on {topic!r}: {exc.args[0]}") from exc
    committed = {part.partition: part.offset for part in result.topic_partitions}
    lag = unread(ends, committed, positions or {})
    return GroupLag(group, topic, lag, len(ends), any(offset >= 0 for offset in committed.values()))


def unread(ends: Mapping[int, int], committed: Mapping[int, int], positions: Mapping[int, int]) -> int:
    """Messages not read yet: per partition, its end (high-water mark) minus the furthest of
    the group's committed offset and a running member's position. A downloader commits only
    past complete files, so during a large file the committed offsets stand still while its
    position moves on. Nothing committed and no position (< 0): everything is still to read."""
    lag = 0
    for partition, end in ends.items():
        start = max(committed.get(partition, -1), positions.get(partition, -1))
        lag += max(0, end - start) if start >= 0 else end
    return lag


def _ends(admin: Any, topic: str, timeout: float) -> dict[int, int]:
    """High watermark per partition of `topic` (missing topic: KafkaError)."""
    partitions = topic_partitions(admin, topic, timeout)  # this topic alone, never created
    if partitions is None:
        raise KafkaError(f"topic {topic!r} not found")
    latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    wanted = {TopicPartition(topic, p): latest for p in partitions}
    if not wanted:
        return {}
    futures = admin.list_offsets(wanted, request_timeout=timeout)
    return {tp.partition: future.result().offset for tp, future in futures.items()}
