"""A thread-safe producer that never drops a chunk silently."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import confluent_kafka

from labstream.errors import DeliveryError, KafkaError
from labstream.kafka.quiet import in_outage, note_success, outage_filter
from labstream.kafka.settings import LibrdkafkaConfig

__all__ = ["OnDelivery", "Producer"]

logger = logging.getLogger(__name__)
logger.addFilter(outage_filter)
# While an outage is reported, ask for metadata this often to notice the cluster is back.
PROBE_SECONDS = 1.0

# Called from poll()/flush() with the error text (None when acknowledged).
OnDelivery = Callable[[str | None], None]


class Producer:
    """Wraps confluent_kafka.Producer: back-pressure on a full queue, fatal errors raised."""

    def __init__(self, librdkafka: LibrdkafkaConfig) -> None:
        self._fatal: str | None = None
        self._lock = threading.Lock()
        self._producer = confluent_kafka.Producer({**librdkafka, "error_cb": self._on_error})
        self._probed = 0.0

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush(timeout=5.0)

    def send(self, topic: str, key: bytes, value: bytes, on_delivery: OnDelivery) -> None:
        """Queue one message; blocks (polling) while librdkafka's queue is full."""
        callback = _delivery_adapter(on_delivery)
        while True:
            self.raise_if_fatal()
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=callback)
            except BufferError:
                self._producer.poll(0.05)
                continue
            except confluent_kafka.KafkaException as exc:
                raise KafkaError(f"cannot produce to topic {topic!r}: {exc.args[0].str()}") from exc
            self._producer.poll(0)
            return

    def poll(self, timeout: float = 0.0) -> None:
        self._producer.poll(timeout)
        self.raise_if_fatal()
        if in_outage() and time.monotonic() - self._probed >= PROBE_SECONDS:
            self._probed = time.monotonic()
            try:
                self._producer.list_topics(timeout=0.2)
            except confluent_kafka.KafkaException:
                return
            note_success("producer")

    def flush(self, timeout: float) -> int:
        """Wait up to `timeout` seconds for delivery reports; returns messages still queued."""
        remaining: int = self._producer.flush(timeout)
        return remaining

    def raise_if_fatal(self) -> None:
        if self._fatal is not None:
            raise DeliveryError(f"the Kafka producer failed: {self._fatal}")

    def _on_error(self, error: confluent_kafka.KafkaError) -> None:
        if error.fatal():
            with self._lock:
                self._fatal = error.str()
            logger.error("fatal producer error error=%s", error.str())
        elif error.code() == confluent_kafka.KafkaError._ALL_BROKERS_DOWN:
            logger.warning(
                "all Kafka brokers are unreachable; chunks stay queued and are sent "
                "when a broker is back error=%s",
                error.str(),
            )
        else:
            logger.warning("producer error (librdkafka retries) error=%s", error.str())


def _delivery_adapter(on_delivery: OnDelivery) -> Callable[[Any, Any], None]:
    def callback(error: confluent_kafka.KafkaError | None, _message: Any) -> None:
        if error is None:
            note_success("producer")
        on_delivery(None if error is None else error.str())

    return callback
