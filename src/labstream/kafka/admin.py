"""Cluster checks: is a broker answering, does the topic exist."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import confluent_kafka
from confluent_kafka import TopicCollection
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from labstream.errors import BrokerUnreachableError, KafkaError
from labstream.kafka.settings import LibrdkafkaConfig, librdkafka_logger

__all__ = ["DEFAULT_PARTITIONS", "create_topic", "ensure_topic", "ping", "topic_partitions"]

logger = logging.getLogger(__name__)
T = TypeVar("T")
_NOT_SEEN = (
    confluent_kafka.KafkaError.UNKNOWN_TOPIC_OR_PART,
    confluent_kafka.KafkaError.TOPIC_AUTHORIZATION_FAILED,
    confluent_kafka.KafkaError.TOPIC_EXCEPTION,  # an invalid name
)
# Partitions of a data topic labstream creates (`partitions` in [labstream]): the most
# consumers of one group that can share it; an existing topic keeps its own count.
DEFAULT_PARTITIONS = 4
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


def ping(librdkafka: LibrdkafkaConfig, timeout: float = 10.0) -> list[str]:
    """Topic names in the cluster; raises `BrokerUnreachableError` if nobody answers in time,
    and `KafkaError` at once when the cluster refuses our credentials or TLS."""
    return sorted(_metadata(librdkafka, timeout).topics)


def _metadata(librdkafka: LibrdkafkaConfig, timeout: float) -> Any:
    """The cluster's metadata (every topic, brokers), with `ping`'s errors."""
    return _answered(librdkafka, timeout, lambda admin, step: admin.list_topics(timeout=step))


def _topic_and_brokers(librdkafka: LibrdkafkaConfig, topic: str, timeout: float) -> tuple[int | None, int]:
    """(partitions of `topic`, None: it does not exist; brokers in the cluster), with `ping`'s
    errors. Asks about this topic alone: every topic's metadata of a large cluster costs a
    watcher megabytes it keeps, and the broker work for each of a fleet's instruments."""

    def ask(admin: AdminClient, step: float) -> tuple[int | None, int]:
        cluster = admin.describe_cluster(request_timeout=step)  # both asked before waiting
        partitions = topic_partitions(admin, topic, step)
        return None if partitions is None else len(partitions), len(cluster.result().nodes)

    return _answered(librdkafka, timeout, ask)


def topic_partitions(admin: AdminClient, topic: str, timeout: float) -> list[int] | None:
    """The partition ids of `topic`; None when it does not exist, is not ours to see (as a
    listing of every topic would leave it out) or is no valid name. DescribeTopics asks about
    this topic alone and never creates it (a metadata request naming it might)."""
    described = admin.describe_topics(TopicCollection([topic]), request_timeout=timeout)[topic]
    try:
        return [p.id for p in described.result().partitions]
    except confluent_kafka.KafkaException as exc:
        if exc.args[0].code() in _NOT_SEEN:
            return None
        raise


def _answered(librdkafka: LibrdkafkaConfig, timeout: float, ask: Callable[[AdminClient, float], T]) -> T:
    """`ask(admin, seconds)` retried until a broker answers or `timeout` passes: a refusal
    of our credentials or TLS is a KafkaError at once, nobody answering BrokerUnreachableError."""
    refused: list[str] = []
    admin = _admin(librdkafka, on_error=lambda e: _note_refusal(e, refused))
    where = librdkafka.get("bootstrap.servers", "?")
    deadline = time.monotonic() + timeout
    while True:
        try:
            return ask(admin, min(1.0, max(0.1, deadline - time.monotonic())))
        except confluent_kafka.KafkaException as exc:
            error = exc.args[0]
            admin.poll(0)  # serves error_cb
            if refused:
                raise KafkaError(f"Kafka at {where} refused the connection: {refused[0]}") from exc
            transient = (confluent_kafka.KafkaError._TRANSPORT, confluent_kafka.KafkaError._TIMED_OUT)
            if error.code() not in transient:
                raise KafkaError(f"cannot talk to Kafka at {where}: {error.str()}") from exc
            if time.monotonic() >= deadline:
                raise BrokerUnreachableError(
                    f"no Kafka broker answered at {where} within {timeout:g} s "
                    "(is it running? `labstream broker start` runs a local one)"
                ) from exc


def _note_refusal(error: confluent_kafka.KafkaError, refused: list[str]) -> None:
    # Retrying cannot fix a wrong password or certificate: report it once, clearly.
    if error.code() in (confluent_kafka.KafkaError._AUTHENTICATION, confluent_kafka.KafkaError._SSL):
        refused.append(error.str())


def ensure_topic(
    librdkafka: LibrdkafkaConfig, topic: str, partitions: int = DEFAULT_PARTITIONS, timeout: float = 10.0
) -> None:
    """Create `topic` if it does not exist (replication up to 3); fine if creation is refused."""
    refused = create_topic(librdkafka, topic, partitions, timeout)
    if refused:
        logger.warning("could not create topic topic=%s error=%s", topic, refused)


def create_topic(
    librdkafka: LibrdkafkaConfig, topic: str, partitions: int = DEFAULT_PARTITIONS, timeout: float = 10.0
) -> str | None:
    """Create `topic` with `partitions` unless it exists; None when it exists afterwards, else
    the broker's reason. An existing topic is left as it is (fewer partitions: logged)."""
    have, brokers = _topic_and_brokers(librdkafka, topic, timeout)
    if have is not None:
        if have < partitions:
            logger.info(
                "topic exists with fewer partitions than asked topic=%s partitions=%d asked=%d "
                "(kafka-topics.sh --alter --partitions N grows it)",
                topic,
                have,
                partitions,
            )
        return None
    admin = _admin(librdkafka)
    future = admin.create_topics([NewTopic(topic, partitions, min(3, max(1, brokers)))])[topic]
    try:
        future.result(timeout)
        logger.info("created topic topic=%s partitions=%d", topic, partitions)
    except confluent_kafka.KafkaException as exc:
        error = exc.args[0]
        if error.code() != confluent_kafka.KafkaError.TOPIC_ALREADY_EXISTS:
            return f"{error.name()}: {error.str()}"
    return None


# Connection probes fail by design while a broker starts; their librdkafka lines ("Connect
# ... failed") are noise next to the one clear error `ping` raises, so they stay quiet.
_probe_logger = logging.getLogger("labstream.librdkafka.probe")
_probe_logger.setLevel(logging.CRITICAL)


def _admin(librdkafka: LibrdkafkaConfig, on_error: Any = None) -> AdminClient:
    conf: dict[str, Any] = {k: v for k, v in librdkafka.items() if k.startswith(_CONNECTION_PREFIXES)}
    conf["logger"] = _probe_logger if on_error is not None else librdkafka_logger
    if on_error is not None:
        conf["error_cb"] = on_error
    return AdminClient(conf)
