"""`choose_chunk_size`: from the cluster's limit, or the 512 KiB default when it is unknown."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from labstream.errors import KafkaError
from labstream.kafka.memory import MemoryBroker
from labstream.runners.chunking import MIN_QUEUED_CHUNKS, choose_chunk_size, fit_batches, fit_queue


class LimitedBroker(MemoryBroker):
    def __init__(self, limit: int | None, error: bool = False) -> None:
        super().__init__()
        self._limit, self._error = limit, error

    def message_limit(self, settings: dict[str, Any], topic: str, timeout: float = 10.0) -> int | None:
        if self._error:
            raise KafkaError("cannot describe topic 't': TOPIC_AUTHORIZATION_FAILED")
        return self._limit


def test_the_largest_power_of_two_under_the_smaller_of_server_and_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "labstream")
    assert choose_chunk_size(
        LimitedBroker(50 << 20), {"message.max.bytes": 60 << 20}, "t", encrypted=True
    ) == (4 << 20, 50 << 20)
    assert (
        choose_chunk_size(LimitedBroker(50 << 20), {}, "t", encrypted=True)[0] == 512 << 10
    )  # librdkafka's 1 MB
    assert choose_chunk_size(LimitedBroker(300_000), {}, "t", encrypted=False) == (256 << 10, 300_000)
    assert "limit of 300000 bytes" in caplog.text


def test_unknown_or_unreadable_limits_keep_the_default(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "labstream")
    assert choose_chunk_size(LimitedBroker(None), {}, "t", encrypted=True) == (512 << 10, None)
    assert choose_chunk_size(LimitedBroker(1, error=True), {}, "t", encrypted=True) == (512 << 10, None)
    assert "TOPIC_AUTHORIZATION_FAILED" in caplog.text and "the default" in caplog.text


def test_batches_never_exceed_the_topics_message_limit() -> None:
    assert fit_batches({}, 300_000)["batch.size"] == 300_000  # librdkafka's default is 1,000,000
    assert fit_batches({"batch.size": 100_000}, 300_000) == {"batch.size": 100_000}
    assert fit_batches({}, None) == {} and fit_batches({}, 50 << 20) == {}


def test_the_producer_queue_holds_at_least_four_chunks_and_a_larger_one_is_kept() -> None:
    queue = {"queue.buffering.max.kbytes": "8192"}  # KiB
    assert fit_queue(queue, 512 << 10) == queue  # 16 chunks of 512 KiB fit
    grown = int(fit_queue(queue, 4 << 20)["queue.buffering.max.kbytes"])
    assert MIN_QUEUED_CHUNKS == 4 and 4 * 4096 < grown < 4 * 5120  # 4 chunks of 4 MiB + headers
    assert fit_queue({}, 4 << 20) == {}  # librdkafka's own default (1 GiB) holds them
