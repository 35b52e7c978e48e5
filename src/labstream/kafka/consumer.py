"""A consumer whose offsets move only when labstream says the data is durable."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import confluent_kafka

from labstream.errors import KafkaError
from labstream.kafka.quiet import in_outage, note_success, outage_filter
from labstream.kafka.settings import LibrdkafkaConfig

__all__ = ["Consumer", "OnPartitions", "Record"]

logger = logging.getLogger(__name__)
logger.addFilter(outage_filter)
# While an outage is reported, ask for metadata this often to notice the cluster is back.
PROBE_SECONDS = 1.0
# A static member fenced twice within this time is fenced by another process, not by an outage.
REJOIN_SECONDS = 60.0

OnPartitions = Callable[[list[tuple[str, int]]], None]


@dataclass(frozen=True)
class Record:
    """One consumed message, free of confluent_kafka types."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


class Consumer:
    """Wraps confluent_kafka.Consumer; `store()` marks offsets safe to commit."""

    def __init__(
        self,
        librdkafka: LibrdkafkaConfig,
        topics: list[str],
        *,
        on_assign: OnPartitions | None = None,
        on_revoke: OnPartitions | None = None,
        start_at_ms: int | None = None,
        start_new_at_ms: int | None = None,
    ) -> None:
        """`start_at_ms`: begin each partition at the first message at or after this time.
        `start_new_at_ms`: the same, but only for partitions the group has no committed offset
        on (a new group); the others resume."""
        self._start_new_at_ms = start_new_at_ms
        self._librdkafka = librdkafka
        self._member = librdkafka.get("group.instance.id")
        self._topics = topics
        self._probed = 0.0
        self._fenced_at = -REJOIN_SECONDS
        self._start_at_ms = start_at_ms
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._consumer = self._open()

    def _open(self) -> Any:
        consumer = confluent_kafka.Consumer({**self._librdkafka, "error_cb": _on_error})
        consumer.subscribe(
            self._topics, on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._revoked
        )
        return consumer

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def consume(self, max_records: int, timeout: float) -> list[Record]:
        """Up to `max_records` records, waiting at most `timeout` seconds."""
        # librdkafka's consume(n, timeout) waits until it has n messages or the timeout
        # passes; take what is queued now, and block only when nothing is.
        messages = self._consumer.consume(max_records, 0)
        if not messages:
            messages = self._consumer.consume(1, timeout)
            if messages and max_records > 1:
                messages += self._consumer.consume(max_records - 1, 0)
        records = []
        if messages:
            note_success("consumer")
        elif in_outage():
            self._probe()
        for message in messages:
            error = message.error()
            if error is None:
                records.append(
                    Record(
                        message.topic() or "",
                        message.partition() or 0,
                        message.offset() or 0,
                        message.key(),
                        message.value() or b"",
                    )
                )
            elif error.code() == confluent_kafka.KafkaError._PARTITION_EOF:
                continue
            elif self._member is not None and _is_fatal(error):
                self._rejoin_fenced(error)
                return records
            elif _is_fatal(error) or error.code() == confluent_kafka.KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise KafkaError(f"consumer error: {error.str()}")
            else:
                logger.warning("consumer error (retrying) error=%s", error.str())
        return records

    def _rejoin_fenced(self, error: Any) -> None:
        """A static member fenced: after a broker outage longer than the session, librdkafka
        rejoins under a new member id and a request still carrying the old one is fenced (a
        fatal error). Start a fresh consumer once; fenced again soon after, another process
        really uses the same id, and that is one clear error."""
        if time.monotonic() - self._fenced_at < REJOIN_SECONDS:
            raise KafkaError(
                f"another consumer uses group.instance.id={self._member} (a second downloader "
                "or processor on the same folder and group?); stop it, or set [consumer] "
                f"group.instance.id to a unique value or none ({error.str()})"
            )
        self._fenced_at = time.monotonic()
        logger.warning("static member fenced; rejoining member=%s", self._member)
        lost = [(p.topic, p.partition) for p in self._consumer.assignment()]
        if lost and self._on_revoke:
            self._on_revoke(lost)
        with contextlib.suppress(confluent_kafka.KafkaException, RuntimeError):
            self._consumer.close()
        self._consumer = self._open()

    def _probe(self) -> None:
        """One metadata request at most every PROBE_SECONDS: does the cluster answer again?"""
        if time.monotonic() - self._probed < PROBE_SECONDS:
            return
        self._probed = time.monotonic()
        try:
            self._consumer.list_topics(self._topics[0] if self._topics else None, timeout=0.5)
        except confluent_kafka.KafkaException:
            return
        note_success("consumer")

    def store(self, topic: str, partition: int, offset: int) -> None:
        """Mark every message before `offset` as durable; auto-commit sends it."""
        part = confluent_kafka.TopicPartition(topic, partition, offset)
        try:
            self._consumer.store_offsets(offsets=[part])
        except confluent_kafka.KafkaException as exc:
            # The partition was revoked meanwhile; its new owner re-reads from the last commit.
            logger.info(
                "offset not stored topic=%s partition=%d offset=%d reason=%s",
                topic,
                partition,
                offset,
                exc.args[0].str(),
            )

    def close(self) -> None:
        self._consumer.close()

    def _assigned(self, consumer: Any, partitions: list[Any]) -> None:
        logger.info("partitions assigned partitions=%s", [p.partition for p in partitions])
        if self._start_at_ms is not None and partitions:
            wanted = [
                confluent_kafka.TopicPartition(p.topic, p.partition, self._start_at_ms) for p in partitions
            ]
            found = consumer.offsets_for_times(wanted, timeout=10)
            # No message at or after the time: -1 means "the end", which is where to start.
            consumer.assign(
                [
                    confluent_kafka.TopicPartition(
                        p.topic, p.partition, p.offset if p.offset >= 0 else confluent_kafka.OFFSET_END
                    )
                    for p in found
                ]
            )
        elif self._start_new_at_ms is not None and partitions:
            consumer.assign(_new_at_time(consumer, partitions, self._start_new_at_ms))
        if self._on_assign:
            self._on_assign([(p.topic, p.partition) for p in partitions])

    def _revoked(self, _consumer: Any, partitions: list[Any]) -> None:
        logger.info("partitions revoked partitions=%s", [p.partition for p in partitions])
        if self._on_revoke:
            self._on_revoke([(p.topic, p.partition) for p in partitions])


def _new_at_time(consumer: Any, partitions: list[Any], at_ms: int) -> list[Any]:
    """`partitions` to assign: those with a committed offset resume from it, the others start
    at the first message at or after `at_ms` (the end when there is none)."""
    try:
        committed = consumer.committed(partitions, timeout=10)
    except confluent_kafka.KafkaException as exc:
        logger.warning("committed offsets unknown; the group's own start applies error=%s", exc.args[0])
        return list(partitions)
    fresh = [p for p in committed if p.offset < 0]
    found = {}
    if fresh:
        wanted = [confluent_kafka.TopicPartition(p.topic, p.partition, at_ms) for p in fresh]
        found = {(p.topic, p.partition): p.offset for p in consumer.offsets_for_times(wanted, timeout=10)}
    result = []
    for p in committed:
        if p.offset >= 0:
            offset = p.offset
        else:
            at = found.get((p.topic, p.partition), -1)
            offset = at if at >= 0 else confluent_kafka.OFFSET_END
        result.append(confluent_kafka.TopicPartition(p.topic, p.partition, offset))
    return result


def _is_fatal(error: Any) -> bool:
    return bool(
        error.fatal()
        or error.code() in (confluent_kafka.KafkaError._FATAL, confluent_kafka.KafkaError.FENCED_INSTANCE_ID)
    )


def _on_error(error: confluent_kafka.KafkaError) -> None:
    if error.fatal():
        return  # consume() raises it as one clear error
    if error.code() == confluent_kafka.KafkaError._ALL_BROKERS_DOWN:
        logger.warning(
            "all Kafka brokers are unreachable; waiting for one to come back error=%s", error.str()
        )
    else:
        logger.warning("consumer error=%s", error.str())
