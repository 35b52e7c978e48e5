"""Topic creation asks the cluster about its own topic only, and never creates one by asking."""

from __future__ import annotations

from labstream.kafka.admin import _topic_and_brokers, create_topic, ping


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
