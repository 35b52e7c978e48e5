"""Automatic chunk size: the largest power of two whose message fits the limit, capped."""

from __future__ import annotations

import hashlib

import pytest

from labstream.errors import ConfigError
from labstream.upload.chunk_size import (
    MAX_AUTO_CHUNK_SIZE,
    auto_chunk_size,
    chunk_overhead,
    message_limit,
)
from labstream.wire import Chunk, encode
from labstream.wire.crypto import PayloadCipher
from labstream.wire.paths import MAX_PATH_BYTES

KAFKA_DEFAULT = 1_048_588  # a topic's max.message.bytes when nobody changed it


def test_kafka_default_limit_gives_512_kib() -> None:
    assert auto_chunk_size(KAFKA_DEFAULT) == 512 * 1024


def test_capped_at_4_mib_however_large_the_limit() -> None:
    assert auto_chunk_size(1 << 40) == MAX_AUTO_CHUNK_SIZE == 4 << 20


@pytest.mark.parametrize("limit", [10_000, 70_000, 1_000_000, 2_097_152 + 20_000, 9_999_999])
def test_result_is_the_largest_power_of_two_that_fits(limit: int) -> None:
    size = auto_chunk_size(limit)
    assert size & (size - 1) == 0
    assert size + chunk_overhead() <= limit
    assert size == MAX_AUTO_CHUNK_SIZE or 2 * size + chunk_overhead() > limit


def test_a_limit_just_short_of_the_overhead_halves_the_size() -> None:
    exact = (1 << 20) + chunk_overhead()
    assert auto_chunk_size(exact) == 1 << 20
    assert auto_chunk_size(exact - 1) == 1 << 19


def test_limit_too_small_for_any_chunk_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"max\.message\.bytes"):
        auto_chunk_size(chunk_overhead() + 100)


def test_the_overhead_covers_a_real_encrypted_message_with_the_longest_path() -> None:
    path = "/".join(["d" * 200] * 20)[:MAX_PATH_BYTES].rstrip("/")
    chunk_size = 4096
    data = b"x" * chunk_size
    chunk = Chunk(path, chunk_size, hashlib.sha256(data).digest(), 0, 1, chunk_size, data)
    value = encode(chunk, PayloadCipher(b"k" * 32))
    key = path.encode()
    # The value and key, plus the Kafka framing, stay within what the budget allows.
    assert len(value) + len(key) + 97 <= chunk_size + chunk_overhead()


def test_message_limit_takes_the_topic_over_the_broker_and_the_client_bound() -> None:
    assert message_limit(5_000_000, 1_048_588, 1_000_000) == 1_000_000
    assert message_limit(5_000_000, 1_048_588, 10_000_000) == 5_000_000
    assert message_limit(None, 2_000_000, 10_000_000) == 2_000_000
    assert message_limit(None, None, None) is None
