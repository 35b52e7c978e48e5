"""The chunk size when none is given: the largest power of two the topic takes, up to 4 MiB."""

from __future__ import annotations

import logging

from labstream.errors import KafkaError
from labstream.kafka.clients import KafkaClients
from labstream.kafka.settings import LibrdkafkaConfig
from labstream.upload import DEFAULT_CHUNK_SIZE
from labstream.upload.chunk_size import (
    LIBRDKAFKA_MESSAGE_MAX_BYTES,
    auto_chunk_size,
    chunk_overhead,
    message_limit,
)

__all__ = ["MIN_QUEUED_CHUNKS", "choose_chunk_size", "fit_batches", "fit_queue"]

# The producer's queue (queue.buffering.max.kbytes, 8 MiB by default) holds at least this many
# chunks: a chunk larger than the whole queue would never be accepted, and one or two in
# flight would leave the link idle between acknowledgements.
MIN_QUEUED_CHUNKS = 4
_QUEUE_KEY = "queue.buffering.max.kbytes"

logger = logging.getLogger("labstream.upload")


def fit_batches(librdkafka: LibrdkafkaConfig, limit: int | None) -> LibrdkafkaConfig:
    """`librdkafka` with its `batch.size` no larger than the topic's message limit: the
    broker checks whole batches against it, so a topic limit below librdkafka's default batch
    (1,000,000 bytes) would refuse several chunks sent together, whatever their size."""
    batch = int(librdkafka.get("batch.size", LIBRDKAFKA_MESSAGE_MAX_BYTES))
    if limit is None or batch <= limit:
        return librdkafka
    return {**librdkafka, "batch.size": limit}


def fit_queue(librdkafka: LibrdkafkaConfig, chunk_size: int) -> LibrdkafkaConfig:
    """`librdkafka` with a producer queue of at least MIN_QUEUED_CHUNKS chunks of `chunk_size`
    (with their headers); a larger queue, labstream's default or the config's, is kept (and
    librdkafka's own 1 GiB when the key is absent)."""
    need_kbytes = -(-MIN_QUEUED_CHUNKS * (chunk_size + chunk_overhead()) // 1024)
    if _QUEUE_KEY not in librdkafka or int(librdkafka[_QUEUE_KEY]) >= need_kbytes:
        return librdkafka
    return {**librdkafka, _QUEUE_KEY: str(need_kbytes)}


def choose_chunk_size(
    clients: KafkaClients, librdkafka: LibrdkafkaConfig, topic: str, *, encrypted: bool, timeout: float = 10.0
) -> tuple[int, int | None]:
    """`auto_chunk_size` of the topic's message limit (one INFO line says which and why), and
    that limit; DEFAULT_CHUNK_SIZE (and None) when the limit cannot be read. `ConfigError` when
    the limit is too small for any chunk."""
    try:
        server = clients.message_limit(librdkafka, topic, timeout)
    except KafkaError as exc:
        server, why = None, str(exc)
    else:
        why = "the topic's and broker's limits are unknown"
    client = int(librdkafka.get("message.max.bytes", LIBRDKAFKA_MESSAGE_MAX_BYTES))
    limit = message_limit(server, None, client) if server is not None else None
    if limit is None:
        logger.info(
            "chunk size %d bytes (the default: %s; --chunk-size sets it) chunk_size=%d",
            DEFAULT_CHUNK_SIZE,
            why,
            DEFAULT_CHUNK_SIZE,
        )
        return DEFAULT_CHUNK_SIZE, None
    size = auto_chunk_size(limit, encrypted=encrypted)
    logger.info(
        "chunk size %d bytes: the largest power of two up to 4 MiB whose messages fit the limit "
        "of %d bytes (--chunk-size sets it) chunk_size=%d topic=%s",
        size,
        limit,
        size,
        topic,
    )
    return size, limit
