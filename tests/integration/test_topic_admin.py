"""Topic creation and group lag ask the cluster about their own topic only, and never create
one by asking."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer

from labstream.errors import KafkaError
from labstream.kafka.admin import _topic_and_brokers, create_topic, ping
from labstream.kafka.lag import group_lag


def test_asking_about_a_missing_topic_does_not_create_it(bootstrap: str, topic: str) -> None:
    librdkafka = {"bootstrap.servers": bootstrap}
    assert _topic_and_brokers(librdkafka, topic, 10.0) == (None, 1)
    assert topic not in ping(librdkafka)  # a metadata request naming it might have made it


def test_create_topic_makes_it_once_and_leaves_an_existing_one_as_it_is(bootstrap: str, topic: str) -> None:
    librdkafka = {"bootstrap.servers": bootstrap}
    assert create_topic(librdkafka, topic, 3, 10.0) is None
    assert _topic_and_brokers(librdkafka, topic, 10.0) == (3, 1)
    assert create_topic(librdkafka, topic, 8, 10.0) is None  # exists: not grown, not an error
    assert _topic_and_brokers(librdkafka, topic, 10.0) == (3, 1)


def test_group_lag_reads_its_topic_alone_and_a_missing_one_is_not_created(bootstrap: str, topic: str) -> None:
    librdkafka = {"bootstrap.servers": bootstrap}
    create_topic(librdkafka, topic, 3, 10.0)
    producer = Producer(librdkafka)
    for i in range(10):
        producer.produce(topic, b"v", partition=i % 3)
    assert producer.flush(10.0) == 0
    lag = group_lag(librdkafka, "never-read", topic)
    assert (lag.messages, lag.partitions, lag.committed) == (10, 3, False)
    with pytest.raises(KafkaError, match="not found"):
        group_lag(librdkafka, "never-read", f"{topic}-missing")
    assert f"{topic}-missing" not in ping(librdkafka)
