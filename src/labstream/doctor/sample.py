"""The newest few messages of a topic, summarised (sizes, newest time), values not kept."""

from __future__ import annotations

import time
from dataclasses import dataclass

from labstream.kafka import read_topic
from labstream.kafka.settings import LibrdkafkaConfig

__all__ = ["Sample", "sample_topic"]

PER_PARTITION = 3


@dataclass(frozen=True)
class Sample:
    topic: str
    messages: int
    average_bytes: float | None
    newest_ms: int | None  # the newest message timestamp seen
    newest_log_append: bool  # stamped by the broker (LogAppendTime), not the sender
    read_at_ms: int  # our clock when the read finished


def sample_topic(librdkafka: LibrdkafkaConfig, topic: str, timeout: float) -> Sample:
    """Reads the last PER_PARTITION messages of each partition; `KafkaError` if it cannot."""
    count = total = 0
    newest: tuple[int, bool] | None = None
    for timed in read_topic(librdkafka, topic, last=PER_PARTITION, timeout=timeout):
        count += 1
        total += len(timed.record.value) + len(timed.record.key or b"")
        if timed.timestamp_ms >= 0 and (newest is None or timed.timestamp_ms > newest[0]):
            newest = (timed.timestamp_ms, timed.log_append)
    return Sample(
        topic,
        count,
        total / count if count else None,
        newest[0] if newest else None,
        newest[1] if newest else False,
        int(time.time() * 1000),
    )
