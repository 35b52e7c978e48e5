"""The topic: exists or may be created, takes our chunks, is replicated, keeps data long enough."""

from __future__ import annotations

import time

from labstream.doctor.check import Check
from labstream.errors import ConfigError, KafkaError
from labstream.kafka import DeniedError, TopicInfo, describe_topic
from labstream.kafka.inspect import broker_config, may_create_topic, partition_offsets
from labstream.kafka.settings import LibrdkafkaConfig
from labstream.upload.chunk_size import auto_chunk_size, chunk_overhead, message_limit

__all__ = ["check_message_size", "check_replication", "check_retention", "check_topic"]

RATE_WINDOW_SECONDS = 3600.0
# Below this, a downstream outage over a night or a long weekend day loses data.
MIN_OUTAGE_SECONDS = 86400.0
CREATE_PARTITIONS = 4  # what ensure_topic creates


def check_topic(
    librdkafka: LibrdkafkaConfig, topic: str, brokers: int, timeout: float
) -> tuple[TopicInfo | None, Check]:
    try:
        info = describe_topic(librdkafka, topic, timeout)
    except DeniedError as exc:
        return None, Check.fail("topic", str(exc), f"grant DESCRIBE (and the role's rights) on topic {topic}")
    except KafkaError as exc:
        return None, Check.fail("topic", str(exc), "see the kafka checks above")
    if info is not None:
        return info, Check.ok("topic", f"{topic} exists: {info.partitions} partitions")
    refused = may_create_topic(librdkafka, topic, CREATE_PARTITIONS, min(3, max(1, brokers)), timeout)
    if refused is None:
        return None, Check.ok("topic", f"{topic} does not exist yet; this principal may create it")
    return None, Check.fail(
        "topic",
        f"{topic} does not exist and may not be created: {refused}",
        f"create it (kafka-topics.sh --create --topic {topic}) or grant CREATE",
    )


def check_message_size(
    librdkafka: LibrdkafkaConfig,
    info: TopicInfo | None,
    broker_id: int | None,
    chunk_size: int,
    timeout: float,
) -> Check:
    topic_max = _int(info.configs.get("max.message.bytes")) if info else None
    broker_max = None
    if broker_id is not None:
        try:
            broker_max = _int(broker_config(librdkafka, broker_id, timeout).get("message.max.bytes"))
        except KafkaError:
            broker_max = None  # needs DESCRIBE_CONFIGS on the cluster, which users rarely have
    client_max = _int(str(librdkafka.get("message.max.bytes", 1_000_000)))
    limit = message_limit(topic_max, broker_max, client_max)
    if limit is None:
        return Check.info("message size", "the topic's and broker's limits are unknown")
    needed = chunk_size + chunk_overhead()
    known = f"topic {topic_max or '?'}, broker {broker_max or '?'}, client {client_max}"
    try:
        best = f"{auto_chunk_size(limit)} bytes"
    except ConfigError:
        best = "none"
    if needed > limit:
        return Check.fail(
            "message size",
            f"chunk size {chunk_size} needs messages of up to {needed} bytes; the limit is {limit} ({known})",
            f"use --chunk-size {best.split()[0]} or raise max.message.bytes",
        )
    return Check.ok(
        "message size",
        f"chunks of {chunk_size} bytes fit the limit of {limit} ({known}); largest that fits: {best}",
    )


def check_replication(info: TopicInfo) -> Check:
    raw = info.configs.get("min.insync.replicas")
    isr = _int(raw) if raw is not None else None
    detail = f"replication factor {info.replication}, min.insync.replicas {isr if isr is not None else '?'}"
    if isr is not None and isr > info.replication:
        return Check.fail(
            "replication",
            detail + ": no write with acks=all can ever succeed",
            f"lower min.insync.replicas of {info.name} to at most {info.replication}",
        )
    if info.replication < 2:
        return Check.info("replication", detail + ": one broker's disk holds the only copy")
    return Check.ok("replication", detail)


def check_retention(
    librdkafka: LibrdkafkaConfig, info: TopicInfo, average_bytes: float | None, timeout: float
) -> Check:
    """How long may the receiving side be away before data is deleted unread, at the rate of
    the last hour (per partition, the busiest one counts)."""
    retention_ms = _int(info.configs.get("retention.ms", "-1"))
    retention_bytes = _int(info.configs.get("retention.bytes", "-1"))
    if retention_ms is None or retention_bytes is None:
        return Check.info("retention", "retention settings unknown (no DESCRIBE_CONFIGS on the topic)")
    by_time = float("inf") if retention_ms < 0 else retention_ms / 1000
    since = int((time.time() - RATE_WINDOW_SECONDS) * 1000)
    try:
        offsets = partition_offsets(librdkafka, info.name, info.partitions, since, timeout)
    except KafkaError as exc:
        offsets, rate_text = [], f"unknown rate ({exc})"
    busiest = max((o.latest - o.at_time for o in offsets), default=0) / RATE_WINDOW_SECONDS
    by_bytes = float("inf")
    if busiest > 0 and average_bytes:
        rate = busiest * average_bytes
        rate_text = f"{rate / 1024:.1f} KiB/s in the busiest partition over the last hour"
        if retention_bytes >= 0:
            by_bytes = retention_bytes / rate
    elif offsets:
        rate_text = "no messages in the last hour: unknown rate"
    survives = min(by_time, by_bytes)
    limits = f"retention.ms {retention_ms}, retention.bytes {retention_bytes}"
    detail = f"{limits}; {rate_text}; a downstream outage of {_duration(survives)} loses nothing"
    if survives < MIN_OUTAGE_SECONDS:
        return Check.fail(
            "retention",
            detail,
            f"raise retention.ms/retention.bytes of {info.name} to cover at least a day "
            "(kafka-configs.sh --alter --entity-type topics)",
        )
    return Check.ok("retention", detail)


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "any length"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
