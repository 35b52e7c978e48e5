"""Read a topic once, up to the end it had when the read began, without joining a group.

Partitions are assigned directly (no subscribe, no rebalance, nothing committed), so a
one-off reader such as `labstream ls` or `labstream get` neither disturbs nor needs a
consumer group: READ on the topic is the only right it uses.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import confluent_kafka

from labstream.errors import KafkaError
from labstream.kafka.consumer import Record
from labstream.kafka.settings import LibrdkafkaConfig

__all__ = ["TimedRecord", "read_topic", "reader_settings"]

BATCH = 256
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class TimedRecord:
    record: Record
    timestamp_ms: int  # -1 if the message has none
    log_append: bool  # True: the broker's clock stamped it (LogAppendTime), not the sender's


def reader_settings(librdkafka: LibrdkafkaConfig) -> LibrdkafkaConfig:
    """`librdkafka` for a consumer that reads and never commits. librdkafka insists on a group id
    even for assigned partitions; a fresh one is never joined."""
    kept = {k: v for k, v in librdkafka.items() if k not in ("group.instance.id", "error_cb")}
    return {
        **kept,
        "group.id": f"labstream-reader-{uuid.uuid4().hex[:12]}",
        "enable.auto.commit": "false",
        "enable.auto.offset.store": "false",
        "enable.partition.eof": "true",
        "auto.offset.reset": "earliest",
    }


def read_topic(
    librdkafka: LibrdkafkaConfig,
    topic: str,
    *,
    since_ms: int | None = None,
    last: int | None = None,
    stop: threading.Event | None = None,
    timeout: float = 10.0,
) -> Iterator[TimedRecord]:
    """Every message of `topic` (from `since_ms`, or only the `last` ones per partition) up to
    the high watermarks captured at the start; `KafkaError` if the topic is missing."""
    consumer = confluent_kafka.Consumer(reader_settings(librdkafka))
    try:
        starts, ends = _bounds(consumer, topic, since_ms, last, timeout)
        pending = {p for p in ends if starts[p] < ends[p]}
        consumer.assign([confluent_kafka.TopicPartition(topic, p, starts[p]) for p in sorted(pending)])
        while pending and not (stop is not None and stop.is_set()):
            for message in consumer.consume(BATCH, POLL_SECONDS):
                partition = message.partition() or 0
                if partition not in pending:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == confluent_kafka.KafkaError._PARTITION_EOF:
                        pending.discard(partition)  # its end now is past the end captured
                        continue
                    if error.fatal() or error.code() == confluent_kafka.KafkaError.TOPIC_AUTHORIZATION_FAILED:
                        raise KafkaError(f"cannot read topic {topic!r}: {error.str()}")
                    continue  # transient: librdkafka retries
                offset = message.offset() or 0
                if offset >= ends[partition]:
                    pending.discard(partition)
                    continue
                if offset == ends[partition] - 1:
                    pending.discard(partition)
                kind, stamp = message.timestamp()
                record = Record(topic, partition, offset, message.key(), message.value() or b"")
                yield TimedRecord(record, stamp, kind == confluent_kafka.TIMESTAMP_LOG_APPEND_TIME)
    except confluent_kafka.KafkaException as exc:
        raise KafkaError(f"cannot read topic {topic!r}: {exc.args[0].str()}") from exc
    finally:
        consumer.close()


def _bounds(
    consumer: Any, topic: str, since_ms: int | None, last: int | None, timeout: float
) -> tuple[dict[int, int], dict[int, int]]:
    metadata = consumer.list_topics(topic, timeout=timeout)
    info = metadata.topics.get(topic)
    if info is None or info.error is not None:
        reason = info.error.str() if info is not None and info.error is not None else "not found"
        raise KafkaError(f"topic {topic!r}: {reason}")
    starts: dict[int, int] = {}
    ends: dict[int, int] = {}
    for p in info.partitions:
        low, high = consumer.get_watermark_offsets(confluent_kafka.TopicPartition(topic, p), timeout=timeout)
        starts[p], ends[p] = low, high
        if last is not None:
            starts[p] = max(low, high - last)
    if since_ms is not None and starts:
        wanted = [confluent_kafka.TopicPartition(topic, p, since_ms) for p in starts]
        for found in consumer.offsets_for_times(wanted, timeout=timeout):
            # -1: nothing at or after that time.
            starts[found.partition] = found.offset if found.offset >= 0 else ends[found.partition]
    return starts, ends
