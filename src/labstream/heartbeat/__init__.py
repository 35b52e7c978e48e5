"""Heartbeats: a running process's state -> small signed-or-not JSON -> the heartbeat topic.

Input: a `snapshot()` callable that says what a `watch`, `download` or `process` is doing
(backlog, in flight, counts, last file, last error; `labstream.runners.sources` builds it from each stage).
Output: one versioned JSON message every `interval` seconds on the heartbeat topic (by
default `labstream.heartbeats`), and a final "stopped" one, read by `labstream dashboard`.
A process that dies simply stops beating: the dashboard shows it *stale* after 3 missed beats.
"""

from __future__ import annotations

from labstream.heartbeat.format import (
    DEFAULT_HEARTBEAT_TOPIC,
    HEARTBEAT_VERSION,
    MAX_HEARTBEAT_BYTES,
    BeatState,
    Heartbeat,
    RecentFile,
    SendOutcome,
    Status,
    Trust,
    parse_heartbeat,
)
from labstream.heartbeat.publisher import HeartbeatPublisher, Signer

__all__ = [
    "DEFAULT_HEARTBEAT_TOPIC",
    "HEARTBEAT_VERSION",
    "MAX_HEARTBEAT_BYTES",
    "BeatState",
    "Heartbeat",
    "HeartbeatPublisher",
    "RecentFile",
    "SendOutcome",
    "Signer",
    "Status",
    "Trust",
    "parse_heartbeat",
]
