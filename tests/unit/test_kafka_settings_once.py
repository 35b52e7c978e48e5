"""librdkafka checks a settings dict once, not on every call (issue 13)."""

from __future__ import annotations

from typing import Any

import confluent_kafka
import pytest

from labstream.config import Config
from labstream.errors import ConfigError
from labstream.kafka import settings as module


def test_settings_are_validated_by_librdkafka_once_per_distinct_settings() -> None:
    built: list[dict[str, Any]] = []

    def counting(conf: dict[str, Any]) -> Any:
        built.append(conf)
        return confluent_kafka.Producer(conf)

    config = Config("t", {"cluster": {"bootstrap.servers": "127.0.0.1:1"}})
    first = module.validate({"bootstrap.servers": "127.0.0.1:1", "client.id": "once"}, config, counting)
    again = module.validate({"bootstrap.servers": "127.0.0.1:1", "client.id": "once"}, config, counting)
    other = module.validate({"bootstrap.servers": "127.0.0.1:1", "client.id": "twice"}, config, counting)
    assert len(built) == 2 and first == again and other["client.id"] == "twice"
    for _ in range(2):  # a refusal is not remembered as valid
        with pytest.raises(ConfigError, match=r"no\.such\.key"):
            module.validate({"bootstrap.servers": "127.0.0.1:1", "no.such.key": "1"}, config, counting)
    assert len(built) == 4
