"""Cluster checks: is a broker answering, does the topic exist."""

from __future__ import annotations

import logging
from typing import Any

import confluent_kafka
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from labstream.errors import BrokerUnreachableError, KafkaError
from labstream.kafka.settings import librdkafka_logger

__all__ = ["ensure_topic", "ping"]

logger = logging.getLogger(__name__)
# Only connection settings matter to an admin client; client-specific keys would warn.
_CONNECTION_PREFIXES = (
    "bootstrap.",
    "security.",
    "sasl.",
    "ssl.",
    "socket.",
    "client.",
    "broker.",
    "api.",
    "metadata.",
    "reconnect.",
    "logger",
)


def ping(settings: dict[str, Any], timeout: float = 10.0) -> list[str]:
    """Topic names in the cluster; raises `BrokerUnreachableError` if nobody answers in time."""
    admin = _admin(settings)
    try:
        metadata = admin.list_topics(timeout=timeout)
    except confluent_kafka.KafkaException as exc:
        error = exc.args[0]
        where = settings.get("bootstrap.servers", "?")
        if error.code() in (confluent_kafka.KafkaError._TRANSPORT, confluent_kafka.KafkaError._TIMED_OUT):
            raise BrokerUnreachableError(
                f"no Kafka broker answered at {where} within {timeout:g} s "
                "(is it running? `labstream broker start` runs a local one)"
            ) from exc
        raise KafkaError(f"cannot talk to Kafka at {where}: {error.str()}") from exc
    return sorted(metadata.topics)


def ensure_topic(settings: dict[str, Any], topic: str, partitions: int = 4, timeout: float = 10.0) -> None:
    """Create `topic` if it does not exist (replication up to 3); fine if creation is refused."""
    if topic in ping(settings, timeout):
        return
    admin = _admin(settings)
    brokers = len(admin.list_topics(timeout=timeout).brokers)
    future = admin.create_topics([NewTopic(topic, partitions, min(3, max(1, brokers)))])[topic]
    try:
        future.result(timeout)
        logger.info("created topic topic=%s partitions=%d", topic, partitions)
    except confluent_kafka.KafkaException as exc:
        error = exc.args[0]
        if error.code() != confluent_kafka.KafkaError.TOPIC_ALREADY_EXISTS:
            logger.warning("could not create topic topic=%s error=%s", topic, error.str())


def _admin(settings: dict[str, Any]) -> AdminClient:
    conf = {k: v for k, v in settings.items() if k.startswith(_CONNECTION_PREFIXES)}
    return AdminClient({**conf, "logger": librdkafka_logger})  # type: ignore[dict-item]
