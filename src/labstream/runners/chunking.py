"""The chunk size when none is given: the largest power of two the topic takes, up to 4 MiB."""

from __future__ import annotations

import logging
from typing import Any

from labstream.errors import KafkaError
from labstream.kafka.clients import KafkaClients
from labstream.upload import DEFAULT_CHUNK_SIZE
from labstream.upload.chunk_size import LIBRDKAFKA_MESSAGE_MAX_BYTES, auto_chunk_size, message_limit

__all__ = ["choose_chunk_size"]

logger = logging.getLogger("labstream.upload")


def choose_chunk_size(
    clients: KafkaClients, settings: dict[str, Any], topic: str, *, encrypted: bool, timeout: float = 10.0
) -> int:
    """`auto_chunk_size` of the topic's message limit (one INFO line says which and why);
    DEFAULT_CHUNK_SIZE when the limit cannot be read. `ConfigError` when the limit is too
    small for any chunk."""
    try:
        server = clients.message_limit(settings, topic, timeout)
    except KafkaError as exc:
        server, why = None, str(exc)
    else:
        why = "the topic's and broker's limits are unknown"
    client = int(settings.get("message.max.bytes", LIBRDKAFKA_MESSAGE_MAX_BYTES))
    limit = message_limit(server, None, client) if server is not None else None
    if limit is None:
        logger.info(
            "chunk size %d bytes (the default: %s; --chunk-size sets it) chunk_size=%d",
            DEFAULT_CHUNK_SIZE,
            why,
            DEFAULT_CHUNK_SIZE,
        )
        return DEFAULT_CHUNK_SIZE
    size = auto_chunk_size(limit, encrypted=encrypted)
    logger.info(
        "chunk size %d bytes: the largest power of two up to 4 MiB whose messages fit the limit "
        "of %d bytes (--chunk-size sets it) chunk_size=%d topic=%s",
        size,
        limit,
        size,
        topic,
    )
    return size
