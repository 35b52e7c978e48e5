"""The in-memory Kafka behaves like the real one where labstream depends on it."""

from __future__ import annotations

import pytest

from labstream.errors import KafkaError
from labstream.kafka.memory import MemoryBroker


def _send(broker: MemoryBroker, topic: str, items: list[tuple[bytes, bytes]]) -> list[str | None]:
    reports: list[str | None] = []
    with broker.producer() as producer:
        for key, value in items:
            producer.send(topic, key, value, reports.append)
    return reports


def test_messages_with_one_key_keep_their_order_in_one_partition() -> None:
    broker = MemoryBroker()
    assert _send(broker, "t", [(b"a", b"1"), (b"b", b"x"), (b"a", b"2"), (b"a", b"3")]) == [None] * 4
    with broker.consumer({"group.id": "g"}, ["t"]) as consumer:
        records = consumer.consume(10, 0.1)
    assert [r.value for r in records if r.key == b"a"] == [b"1", b"2", b"3"]
    assert len({r.partition for r in records if r.key == b"a"}) == 1


def test_a_group_resumes_from_stored_offsets_only() -> None:
    broker = MemoryBroker()
    _send(broker, "t", [(b"k", b"%d" % i) for i in range(5)])
    with broker.consumer({"group.id": "g"}, ["t"]) as consumer:
        records = consumer.consume(10, 0.1)
        consumer.store(records[1].topic, records[1].partition, records[1].offset + 1)
    with broker.consumer({"group.id": "g"}, ["t"]) as again:
        assert [r.value for r in again.consume(10, 0.1)] == [b"2", b"3", b"4"]
    with broker.consumer({"group.id": "other"}, ["t"]) as other:
        assert len(other.consume(10, 0.1)) == 5


def test_members_of_a_group_split_the_partitions_and_hand_them_back() -> None:
    broker = MemoryBroker(partitions=4)
    events: list[tuple[str, list[tuple[str, int]]]] = []
    first = broker.consumer({"group.id": "g"}, ["t"], on_assign=lambda p: events.append(("a1", p)))
    first.consume(1, 0)
    assert events == [("a1", [("t", 0), ("t", 1), ("t", 2), ("t", 3)])]
    second = broker.consumer(
        {"group.id": "g"}, ["t"], on_revoke=lambda p: events.append(("r2", p)), on_assign=lambda p: None
    )
    first_revoked: list[list[tuple[str, int]]] = []
    first._on_revoke = first_revoked.append
    first.consume(1, 0)
    second.consume(1, 0)
    assert first_revoked == [[("t", 1), ("t", 3)]]
    second.close()
    first.consume(1, 0)
    assert events[-1] == ("a1", [("t", 1), ("t", 3)])
    first.close()


def test_failed_deliveries_are_reported_not_dropped() -> None:
    broker = MemoryBroker()
    broker.fail_deliveries(1)
    assert _send(broker, "t", [(b"k", b"1"), (b"k", b"2")]) == ["Local: Message timed out", None]
    assert [r.value for r in broker.messages("t")] == [b"2"]


def test_group_lag_counts_what_the_group_has_not_committed_and_a_missing_topic_is_an_error() -> None:
    broker = MemoryBroker(partitions=2)
    _send(broker, "t", [(b"k", b"%d" % i) for i in range(5)])
    lag = broker.group_lag({}, "g", "t")
    assert (lag.messages, lag.partitions, lag.committed) == (5, 2, False)
    with broker.consumer({"group.id": "g"}, ["t"]) as consumer:
        records = consumer.consume(10, 0.1)
        consumer.store(records[1].topic, records[1].partition, records[1].offset + 1)
    lag = broker.group_lag({}, "g", "t")
    assert (lag.messages, lag.committed) == (3, True)
    assert broker.ping({}) == ["t"]
    with pytest.raises(KafkaError, match="topic 'gone' not found"):
        broker.group_lag({}, "g", "gone")
