"""A local single-node Apache Kafka broker (KRaft) for trying labstream and for tests.

Input: a port, and either KAFKA_HOME (an unpacked Kafka distribution) or Java + Maven
to fetch the broker jars from Maven Central once. Output: a running broker process
on 127.0.0.1 whose state lives in the labstream cache folder.
"""

from __future__ import annotations

from labstream.broker.local import BrokerStatus, start, start_cluster, status, stop

__all__ = ["BrokerStatus", "start", "start_cluster", "status", "stop"]
