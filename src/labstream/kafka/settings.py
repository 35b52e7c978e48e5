"""librdkafka settings: labstream's defaults, the guarantees it enforces, validation."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

import confluent_kafka

from labstream.config import Config
from labstream.errors import ConfigError

__all__ = ["consumer_settings", "producer_settings", "validate"]

logger = logging.getLogger(__name__)
librdkafka_logger = logging.getLogger("labstream.librdkafka")

# Java-client keys that openmsistream config files carry; librdkafka has no use for them.
IGNORED_KEYS = {"key.serializer", "value.serializer", "key.deserializer", "value.deserializer"}
PRODUCER_DEFAULTS = {
    "linger.ms": "10",
    "queue.buffering.max.kbytes": "32768",  # bounds memory: flat in file size
    "message.timeout.ms": "300000",
}
PRODUCER_REQUIRED = {"acks": ("all", "-1"), "enable.idempotence": ("true",)}
CONSUMER_DEFAULTS = {
    "auto.offset.reset": "earliest",
    "auto.commit.interval.ms": "1000",
    # A crashed downloader's partitions move on after 10 s instead of librdkafka's 45 s;
    # heartbeats come from librdkafka's own thread, so a busy Python thread does not matter.
    "session.timeout.ms": "10000",
    "queued.max.messages.kbytes": "16384",
    # When that prefetch queue is full, librdkafka (>= 2.4) pauses fetching for 1 s by
    # default; a downloader busy writing hits that all the time (measured: 57 vs 300 MB/s).
    "fetch.queue.backoff.ms": "10",
}
# Offsets are stored only for data already durable, so committing them automatically is
# safe; an openmsistream config's enable.auto.commit = False would make every restart re-read.
CONSUMER_FORCED = {"enable.auto.offset.store": "false", "enable.auto.commit": "true"}
_PROPERTY_RE = re.compile(r'property "([^"]+)"|property: "?([^"\s]+)"?')


def producer_settings(config: Config, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Settings for an idempotent acks=all producer; refuses weaker guarantees."""
    settings = {**PRODUCER_DEFAULTS, **_client_keys(config.producer_settings())}
    for key, allowed in PRODUCER_REQUIRED.items():
        value = str(settings.get(key, allowed[0])).lower()
        if value not in allowed:
            raise ConfigError(
                f"{config.where(key)} = {value}: labstream requires {allowed[0]} "
                "so that no chunk is lost or written twice"
            )
        settings[key] = allowed[0]
    settings.update(overrides or {})
    return validate(settings, config, confluent_kafka.Producer)


def consumer_settings(
    config: Config, group: str | None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Settings for a consumer that stores offsets only when told to."""
    settings = {**CONSUMER_DEFAULTS, **_client_keys(config.consumer_settings()), **CONSUMER_FORCED}
    if group:
        settings["group.id"] = group
    if str(settings.get("group.id", "")).lower() in ("new", "create_new"):
        settings["group.id"] = f"labstream-{uuid.uuid4().hex[:12]}"
    settings.setdefault("group.id", "labstream-download")
    settings.update(overrides or {})
    return validate(settings, config, confluent_kafka.Consumer)


def validate(
    settings: dict[str, Any], config: Config, kind: Callable[[dict[str, Any]], Any]
) -> dict[str, Any]:
    """Build (and drop) a client to let librdkafka check every key and value offline."""
    try:
        client = kind({**settings, "logger": librdkafka_logger})
    except (confluent_kafka.KafkaException, ValueError, TypeError) as exc:
        message = str(exc.args[0].str() if isinstance(exc, confluent_kafka.KafkaException) else exc)
        match = _PROPERTY_RE.search(message)
        key = next((g for g in match.groups() if g), "?") if match else "?"
        raise ConfigError(f"{config.where(key)}: {message}") from exc
    if hasattr(client, "close"):
        client.close()
    return {**settings, "logger": librdkafka_logger}


def _client_keys(section: dict[str, str]) -> dict[str, str]:
    dropped = sorted(IGNORED_KEYS & section.keys())
    if dropped:
        logger.debug("ignoring Java-client keys not used by librdkafka keys=%s", dropped)
    return {k: v for k, v in section.items() if k not in IGNORED_KEYS}
