"""The only package that imports confluent_kafka (librdkafka).

Input: librdkafka settings from the config and labstream's needs.
Output: small producer/consumer/admin objects that speak labstream's error tree,
so no other module ever sees a confluent_kafka type.
"""

from __future__ import annotations

from labstream.kafka.admin import ensure_topic, ping
from labstream.kafka.consumer import Consumer, Record
from labstream.kafka.coordinator import wait_for_coordinator
from labstream.kafka.inspect import DeniedError, TopicInfo, describe_cluster, describe_topic
from labstream.kafka.lag import GroupLag, group_lag
from labstream.kafka.producer import Producer
from labstream.kafka.reader import TimedRecord, read_topic
from labstream.kafka.settings import (
    LibrdkafkaConfig,
    consumer_settings,
    member_for_thread,
    producer_settings,
    static_membership,
)

__all__ = [
    "Consumer",
    "GroupLag",
    "LibrdkafkaConfig",
    "Producer",
    "Record",
    "consumer_settings",
    "ensure_topic",
    "group_lag",
    "member_for_thread",
    "ping",
    "producer_settings",
    "static_membership",
    "wait_for_coordinator",
]
__all__ += ["DeniedError", "TimedRecord", "TopicInfo", "describe_cluster", "describe_topic", "read_topic"]
