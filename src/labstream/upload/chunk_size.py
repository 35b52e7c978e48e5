"""The largest chunk size a topic takes: a power of two under its message limit, capped.

A chunk travels as one Kafka record: the record batch header and record framing, the key
(the file's path), labstream's header, the path again, the encryption envelope, then the
payload. The broker refuses a batch over the topic's `max.message.bytes` (or, when the topic
does not set it, the broker's `message.max.bytes`), and librdkafka refuses one over its own
`message.max.bytes`; the smallest of the three is the limit. As Streamsend does, the choice
is capped at 4 MiB: bigger chunks gain no throughput and cost producer and consumer memory.
"""

from __future__ import annotations

from labstream.errors import ConfigError
from labstream.wire.chunk import ENCRYPTION_OVERHEAD, HEADER_SIZE
from labstream.wire.paths import MAX_PATH_BYTES

__all__ = ["MAX_AUTO_CHUNK_SIZE", "MIN_AUTO_CHUNK_SIZE", "auto_chunk_size", "chunk_overhead", "message_limit"]

MAX_AUTO_CHUNK_SIZE = 4 << 20
MIN_AUTO_CHUNK_SIZE = 1 << 10
# A record batch's header is 61 bytes (Kafka protocol, magic 2); one record's framing at most
# 36: length, attributes, timestamp delta, offset delta, key and value lengths and the header
# count, each a varint of up to 5 bytes (10 for the timestamp delta).
KAFKA_RECORD_OVERHEAD = 61 + 36
# librdkafka's own default message.max.bytes, which applies when the config does not set it.
LIBRDKAFKA_MESSAGE_MAX_BYTES = 1_000_000


def chunk_overhead(path_bytes: int = MAX_PATH_BYTES, encrypted: bool = True) -> int:
    """Bytes a chunk message adds to its payload when the path takes `path_bytes` (UTF-8),
    the path being both the key and part of the value."""
    return KAFKA_RECORD_OVERHEAD + 2 * path_bytes + HEADER_SIZE + (ENCRYPTION_OVERHEAD if encrypted else 0)


def message_limit(
    topic_max: int | None, broker_max: int | None, client_max: int | None = LIBRDKAFKA_MESSAGE_MAX_BYTES
) -> int | None:
    """The largest record batch that gets through, from the limits known (None = unknown).
    The topic's `max.message.bytes` overrides the broker's `message.max.bytes` when given."""
    server = topic_max if topic_max is not None else broker_max
    known = [value for value in (server, client_max) if value is not None]
    return min(known) if known else None


def auto_chunk_size(
    limit: int,
    *,
    path_bytes: int = MAX_PATH_BYTES,
    encrypted: bool = True,
    cap: int = MAX_AUTO_CHUNK_SIZE,
) -> int:
    """The largest power of two, at most `cap`, whose chunk message fits in `limit` bytes.

    The defaults assume the worst: the longest path labstream sends and an encrypted payload,
    so one size fits every file of a watched folder. `ConfigError` if not even
    MIN_AUTO_CHUNK_SIZE fits (a misconfigured topic).
    """
    room = limit - chunk_overhead(path_bytes, encrypted)
    if room < MIN_AUTO_CHUNK_SIZE:
        raise ConfigError(
            f"a message limit of {limit} bytes leaves no room for a chunk of {MIN_AUTO_CHUNK_SIZE} "
            "bytes; raise the topic's max.message.bytes"
        )
    size = 1 << (min(room, cap).bit_length() - 1)
    return size
