"""Section objects that belong to no single stage, and `section`, which fills any section
object from the table's resolved values by its field names.

A stage's own section object lives with the stage (`StreamOptions`, `DownloadOptions`,
`ProcessOptions`, `Limits`) and is the one home of its defaults; the table shows them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from labstream.heartbeat import DEFAULT_HEARTBEAT_TOPIC
from labstream.receipts import SigningKey

__all__ = ["Telemetry", "section"]

S = TypeVar("S")


@dataclass(frozen=True)
class Telemetry:
    """Heartbeats and metrics of one long-running process."""

    heartbeat_seconds: float = 10.0
    heartbeat_topic: str = DEFAULT_HEARTBEAT_TOPIC
    metrics_port: str | None = None
    signing_key: SigningKey | None = None  # signs the heartbeats (a consumer's receipt key else)


def section(cls: type[S], values: Mapping[str, Any], **derived: Any) -> S:
    """A `cls` whose fields named after a setting take its resolved value from `values`;
    `derived` gives the fields that are not one setting's value as it stands."""
    names = {item.name for item in fields(cls)} - derived.keys()  # type: ignore[arg-type]
    return cls(**{name: values[name] for name in names if name in values}, **derived)
