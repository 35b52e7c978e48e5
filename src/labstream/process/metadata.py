"""Built-in `metadata` processor: a user extractor's JSON for each file, to a second topic.

Options: extractor (required, "module:function" or "file.py:function", called with the
ReceivedFile and returning a JSON-serialisable dict), topic (default DATA_TOPIC.metadata).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from labstream.config import Config
from labstream.errors import DeliveryError
from labstream.kafka import producer_settings
from labstream.kafka.clients import REAL_CLIENTS, KafkaClients
from labstream.process.api import BaseProcessor, ReceivedFile, _resolve

__all__ = ["MetadataPublisher"]

logger = logging.getLogger(__name__)


class MetadataPublisher(BaseProcessor):
    def __init__(
        self,
        extractor: str,
        config: Config,
        topic: str | None = None,
        data_topic: str | None = None,
        clients: KafkaClients = REAL_CLIENTS,
    ) -> None:
        self._extract: Callable[[ReceivedFile], dict[str, Any]] = _resolve(extractor)
        self._topic = topic or f"{data_topic}.metadata"
        settings = producer_settings(config)
        clients.ensure_topic(settings, self._topic)
        self._producer = clients.producer(settings)

    def process(self, file: ReceivedFile) -> None:
        record = {
            "path": file.relpath,
            "size": file.size,
            file.hash_name: file.digest,
            "metadata": self._extract(file),
        }
        errors: list[str | None] = []
        self._producer.send(
            self._topic,
            file.relpath.encode("utf-8"),
            json.dumps(record, default=str).encode("utf-8"),
            errors.append,
        )
        if self._producer.flush(60.0) or errors != [None]:
            raise DeliveryError(f"metadata for {file.relpath} not acknowledged: {errors}")

    def close(self) -> None:
        self._producer.flush(30.0)
