"""The receipts publisher of a downloader or processor, set up in one place."""

from __future__ import annotations

from labstream.config import Config
from labstream.kafka import producer_settings
from labstream.kafka.clients import REAL_CLIENTS, KafkaClients
from labstream.receipts import ReceiptPublisher, SigningKey

__all__ = ["open_publisher"]


def open_publisher(
    config: Config, topic: str, group: str, key: SigningKey | None, clients: KafkaClients = REAL_CLIENTS
) -> ReceiptPublisher:
    """A publisher on `topic` (created with one partition if missing) for consumer `group`."""
    settings = producer_settings(config)
    clients.ensure_topic(settings, topic, partitions=1)
    return ReceiptPublisher(settings, topic, group, key, clients=clients)
