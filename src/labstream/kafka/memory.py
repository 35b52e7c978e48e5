"""An in-memory Kafka for unit tests of threaded code: real implementations, not mocks.

`MemoryBroker` keeps topics as lists of partitions, a consumer group's committed offsets,
and its members. `broker.producer(settings)` and `broker.consumer(settings, topics, ...)`
return objects with exactly the interface of `labstream.kafka.Producer` and `Consumer`,
so the uploader, watcher, downloader and receipt readers run against it unchanged
(quix-streams' list sinks are the model). Differences from the real thing, on purpose:
stored offsets are committed at once (librdkafka commits them every second), and a group
splits partitions among its members by a plain round-robin.
"""

from __future__ import annotations

import threading
import time
import zlib
from dataclasses import dataclass, field

from labstream.errors import DeliveryError, KafkaError
from labstream.kafka.consumer import OnPartitions, Record
from labstream.kafka.lag import GroupLag
from labstream.kafka.producer import OnDelivery
from labstream.kafka.settings import LibrdkafkaConfig

__all__ = ["MemoryBroker", "MemoryConsumer", "MemoryProducer"]

TopicPartition = tuple[str, int]


@dataclass
class _Message:
    key: bytes | None
    value: bytes
    timestamp_ms: int


@dataclass
class _Group:
    members: list[MemoryConsumer] = field(default_factory=list)
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    generation: int = 0


class MemoryBroker:
    """Topics, groups and faults; thread-safe."""

    def __init__(self, partitions: int = 4) -> None:
        self.default_partitions = partitions
        self._lock = threading.Condition()
        self._topics: dict[str, list[list[_Message]]] = {}
        self._groups: dict[str, _Group] = {}
        self._failures: list[str] = []
        self.fatal: str | None = None

    # -- clients -------------------------------------------------------------------------
    def producer(self, librdkafka: LibrdkafkaConfig | None = None) -> MemoryProducer:
        return MemoryProducer(self)

    def consumer(
        self,
        librdkafka: LibrdkafkaConfig,
        topics: list[str],
        *,
        on_assign: OnPartitions | None = None,
        on_revoke: OnPartitions | None = None,
        start_at_ms: int | None = None,
        start_new_at_ms: int | None = None,
    ) -> MemoryConsumer:
        return MemoryConsumer(
            self,
            str(librdkafka.get("group.id", "labstream-download")),
            topics,
            on_assign=on_assign,
            on_revoke=on_revoke,
            start_at_ms=start_at_ms,
            start_new_at_ms=start_new_at_ms,
            from_end=str(librdkafka.get("auto.offset.reset", "earliest")) in ("latest", "end", "largest"),
        )

    # -- topics --------------------------------------------------------------------------
    def create_topic(self, topic: str, partitions: int | None = None) -> None:
        with self._lock:
            self._topics.setdefault(topic, [[] for _ in range(partitions or self.default_partitions)])

    def ensure_topic(
        self, librdkafka: LibrdkafkaConfig, topic: str, partitions: int = 4, timeout: float = 10.0
    ) -> None:
        """`KafkaClients.ensure_topic`: the topic exists afterwards."""
        self.create_topic(topic, partitions)

    def message_limit(self, librdkafka: LibrdkafkaConfig, topic: str, timeout: float = 10.0) -> int | None:
        """`KafkaClients.message_limit`: unknown, as with a broker that does not say."""
        return None

    def ensure_writable(
        self,
        librdkafka: LibrdkafkaConfig,
        topic: str,
        timeout: float = 10.0,
        partitions: int | None = None,
    ) -> None:
        """`KafkaClients.ensure_writable`: every principal may write every topic here."""
        self.create_topic(topic, partitions)

    def ping(self, librdkafka: LibrdkafkaConfig, timeout: float = 10.0) -> list[str]:
        """`KafkaClients.ping`: this broker always answers."""
        with self._lock:
            return sorted(self._topics)

    def group_lag(
        self, librdkafka: LibrdkafkaConfig, group: str, topic: str, timeout: float = 10.0
    ) -> GroupLag:
        """`KafkaClients.group_lag`: messages past the group's committed offsets."""
        with self._lock:
            if topic not in self._topics:
                raise KafkaError(f"topic {topic!r} not found")
            parts = self._topics[topic]
            committed = self._groups.get(group, _Group()).committed
            offsets = [committed.get((topic, p)) for p in range(len(parts))]
            lag = sum(len(msgs) - min(o or 0, len(msgs)) for msgs, o in zip(parts, offsets, strict=True))
            return GroupLag(group, topic, lag, len(parts), any(o is not None for o in offsets))

    def messages(self, topic: str) -> list[Record]:
        """Every message of `topic`, partition by partition."""
        with self._lock:
            parts = self._topics.get(topic, [])
            return [
                Record(topic, p, o, m.key, m.value)
                for p, msgs in enumerate(parts)
                for o, m in enumerate(msgs)
            ]

    def committed(self, group: str) -> dict[TopicPartition, int]:
        with self._lock:
            return dict(self._groups.get(group, _Group()).committed)

    def fail_deliveries(self, count: int, error: str = "Local: Message timed out") -> None:
        """The next `count` produced messages get a failed delivery report instead."""
        with self._lock:
            self._failures.extend([error] * count)

    # -- used by the clients --------------------------------------------------------------
    def _append(self, topic: str, key: bytes | None, value: bytes) -> str | None:
        with self._lock:
            if self._failures:
                return self._failures.pop(0)
            parts = self._topics.setdefault(topic, [[] for _ in range(self.default_partitions)])
            index = zlib.crc32(key) % len(parts) if key else 0
            parts[index].append(_Message(key, bytes(value), int(time.time() * 1000)))
            self._lock.notify_all()
            return None

    def _join(self, group: str, member: MemoryConsumer) -> None:
        with self._lock:
            state = self._groups.setdefault(group, _Group())
            state.members.append(member)
            state.generation += 1

    def _leave(self, group: str, member: MemoryConsumer) -> None:
        with self._lock:
            state = self._groups[group]
            if member in state.members:
                state.members.remove(member)
                state.generation += 1

    def _assignment(
        self, group: str, member: MemoryConsumer, topics: list[str]
    ) -> tuple[int, set[TopicPartition]]:
        with self._lock:
            state = self._groups[group]
            every = sorted((t, p) for t in topics for p in range(len(self._topics.get(t, []))))
            index = state.members.index(member)
            mine = {tp for i, tp in enumerate(every) if i % len(state.members) == index}
            return state.generation, mine

    def _fetch(self, tp: TopicPartition, offset: int, limit: int) -> list[Record]:
        with self._lock:
            parts = self._topics.get(tp[0], [])
            msgs = parts[tp[1]] if tp[1] < len(parts) else []
            return [
                Record(tp[0], tp[1], o, msgs[o].key, msgs[o].value)
                for o in range(offset, min(len(msgs), offset + limit))
            ]

    def _end(self, tp: TopicPartition) -> int:
        with self._lock:
            parts = self._topics.get(tp[0], [])
            return len(parts[tp[1]]) if tp[1] < len(parts) else 0

    def _offset_for_time(self, tp: TopicPartition, at_ms: int) -> int:
        with self._lock:
            msgs = self._topics[tp[0]][tp[1]]
            return next((o for o, m in enumerate(msgs) if m.timestamp_ms >= at_ms), len(msgs))

    def _commit(self, group: str, tp: TopicPartition, offset: int) -> None:
        with self._lock:
            self._groups[group].committed[tp] = offset

    def _committed_offset(self, group: str, tp: TopicPartition) -> int | None:
        with self._lock:
            return self._groups[group].committed.get(tp)

    def _wait(self, timeout: float) -> None:
        with self._lock:
            self._lock.wait(timeout)


class MemoryProducer:
    """`labstream.kafka.Producer`'s interface over a `MemoryBroker`."""

    def __init__(self, broker: MemoryBroker) -> None:
        self._broker = broker
        self._lock = threading.Lock()
        self._reports: list[tuple[OnDelivery, str | None]] = []

    def __enter__(self) -> MemoryProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush(timeout=5.0)

    def send(self, topic: str, key: bytes, value: bytes, on_delivery: OnDelivery) -> None:
        self.raise_if_fatal()
        error = self._broker._append(topic, key, value)
        with self._lock:
            self._reports.append((on_delivery, error))

    def poll(self, timeout: float = 0.0) -> None:
        self._serve()
        self.raise_if_fatal()

    def flush(self, timeout: float) -> int:
        self._serve()
        return 0

    def raise_if_fatal(self) -> None:
        if self._broker.fatal is not None:
            raise DeliveryError(f"the Kafka producer failed: {self._broker.fatal}")

    def _serve(self) -> None:
        with self._lock:
            reports, self._reports = self._reports, []
        for callback, error in reports:
            callback(error)


class MemoryConsumer:
    """`labstream.kafka.Consumer`'s interface over a `MemoryBroker`, one group member."""

    def __init__(
        self,
        broker: MemoryBroker,
        group: str,
        topics: list[str],
        *,
        on_assign: OnPartitions | None = None,
        on_revoke: OnPartitions | None = None,
        start_at_ms: int | None = None,
        start_new_at_ms: int | None = None,
        from_end: bool = False,
    ) -> None:
        self._start_new_at_ms = start_new_at_ms
        self._broker = broker
        self._group = group
        self._topics = topics
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._start_at_ms = start_at_ms
        self._from_end = from_end
        self._generation = -1
        self._positions: dict[TopicPartition, int] = {}
        self._closed = False
        for topic in topics:
            broker.create_topic(topic)
        broker._join(group, self)

    def __enter__(self) -> MemoryConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def consume(self, max_records: int, timeout: float) -> list[Record]:
        if self._closed:
            raise KafkaError("consumer error: consumer closed")
        self._rebalance()
        records = self._take(max_records)
        if not records and timeout > 0:
            self._broker._wait(timeout)
            self._rebalance()
            records = self._take(max_records)
        return records

    def store(self, topic: str, partition: int, offset: int) -> None:
        if (topic, partition) in self._positions:
            self._broker._commit(self._group, (topic, partition), offset)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._positions and self._on_revoke:
            self._on_revoke(sorted(self._positions))
        self._broker._leave(self._group, self)

    def _take(self, limit: int) -> list[Record]:
        records: list[Record] = []
        for tp in sorted(self._positions):
            if len(records) >= limit:
                break
            got = self._broker._fetch(tp, self._positions[tp], limit - len(records))
            if got:
                self._positions[tp] = got[-1].offset + 1
                records.extend(got)
        return records

    def _rebalance(self) -> None:
        generation, mine = self._broker._assignment(self._group, self, self._topics)
        if generation == self._generation:
            return
        self._generation = generation
        lost = sorted(set(self._positions) - mine)
        if lost and self._on_revoke:
            self._on_revoke(lost)
        for tp in lost:
            del self._positions[tp]
        gained = sorted(mine - set(self._positions))
        for tp in gained:
            self._positions[tp] = self._start(tp)
        if gained and self._on_assign:
            self._on_assign(gained)

    def _start(self, tp: TopicPartition) -> int:
        if self._start_at_ms is not None:
            return self._broker._offset_for_time(tp, self._start_at_ms)
        committed = self._broker._committed_offset(self._group, tp)
        if committed is not None:
            return committed
        if self._start_new_at_ms is not None:
            return self._broker._offset_for_time(tp, self._start_new_at_ms)
        return self._broker._end(tp) if self._from_end else 0
