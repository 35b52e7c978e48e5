"""Wait until a fresh cluster can hand out producer ids, so first uploads start quietly."""

from __future__ import annotations

import logging
import time
import uuid

import confluent_kafka

from labstream.errors import BrokerUnreachableError
from labstream.kafka.settings import LibrdkafkaConfig

__all__ = ["wait_for_coordinator"]

# A fresh broker answers metadata requests before its transaction coordinator has loaded;
# meanwhile every idempotent producer logs "Failed to acquire idempotence PID ...
# Coordinator load in progress". The probe's own lines about that are expected: kept quiet.
_quiet = logging.getLogger("labstream.librdkafka.probe")


def wait_for_coordinator(librdkafka: LibrdkafkaConfig, timeout: float = 60.0) -> None:
    """Return once the cluster's transaction coordinator answers (it assigns producer ids)."""
    deadline = time.monotonic() + timeout
    conf = {
        "bootstrap.servers": librdkafka["bootstrap.servers"],
        "transactional.id": f"labstream-ready-{uuid.uuid4().hex[:8]}",
        "logger": _quiet,
    }
    while True:
        producer = confluent_kafka.Producer(conf)
        try:
            producer.init_transactions(max(1.0, deadline - time.monotonic()))
            return
        except confluent_kafka.KafkaException as exc:
            if time.monotonic() >= deadline or not exc.args[0].retriable():
                raise BrokerUnreachableError(
                    f"the Kafka coordinator did not become ready: {exc.args[0].str()}"
                ) from exc
        finally:
            producer.flush(0)
