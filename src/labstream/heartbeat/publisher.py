"""Beat every `interval` seconds from a background thread; a final "stopped" beat on exit."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from labstream import __version__
from labstream.heartbeat.format import MAX_RECENT, ROLES, BeatState, Heartbeat, Status
from labstream.loops import BackgroundLoop

__all__ = ["HeartbeatPublisher", "Signer"]

logger = logging.getLogger(__name__)

# The signed payload -> the "sig" object to attach (e.g. {"alg": "ed25519", "key": ..., "sig": ...}).
Signer = Callable[[bytes], dict[str, Any]]


class _Producer(Protocol):
    """What the publisher needs of `labstream.kafka.Producer` (a list fake in tests)."""

    def send(self, topic: str, key: bytes, value: bytes, on_delivery: Callable[[str | None], None]) -> None:
        """Queue one message."""

    def poll(self, timeout: float = 0.0) -> None:
        """Serve delivery reports."""

    def flush(self, timeout: float) -> int:
        """Wait for delivery; messages still queued."""


class HeartbeatPublisher(BackgroundLoop):
    """Publishes `snapshot()` as a heartbeat; a context manager owning one daemon thread.

    Every beat carries this run's random id and its sequence number (1, 2, ...), inside
    what `sign` signs: a reader can refuse a replayed or older beat of the same signer.

    `snapshot` runs on the heartbeat thread and must be thread-safe and quick. A failing
    snapshot or an unreachable broker is logged and the next beat tried: heartbeats never
    stop the work they report on. `interval` 0 or less publishes nothing at all.
    """

    def __init__(
        self,
        producer: _Producer,
        topic: str,
        *,
        role: str,
        subject: str,
        snapshot: Callable[[], Status],
        interval: float = 10.0,
        sign: Signer | None = None,
    ) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        super().__init__("labstream-heartbeat")
        self._producer = producer
        self._topic = topic
        self._snapshot = snapshot
        self._sign = sign
        self.interval = interval
        self.host = socket.gethostname()
        self.instance = f"{role}@{self.host}:{subject}"[:1024]
        self._template = Heartbeat(
            instance=self.instance,
            role=role,
            host=self.host[:255],
            pid=os.getpid(),
            version=__version__,
            started=time.time(),
            at=0.0,
            interval=max(interval, 0.1),
            state=BeatState.RUNNING,
            run=secrets.token_hex(8),
        )
        self._seq = 0  # beats of this run
        self._seq_lock = threading.Lock()
        self._previous: tuple[float, int] | None = None
        self.beats = 0

    def start(self) -> None:
        if self.interval > 0:
            super().start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the thread, publish the "stopped" beat, wait (5 s at most) for delivery."""
        if not self.alive:
            return
        self.stop()
        self.beat(BeatState.STOPPED)
        left = self._producer.flush(5.0)
        if left:
            logger.warning("final heartbeat not delivered topic=%s", self._topic)

    def beat(self, state: BeatState = BeatState.RUNNING) -> None:
        """Publish one heartbeat now."""
        try:
            status = self._snapshot()
        except Exception:  # a bug in a snapshot must not stop the process it reports on
            logger.exception("heartbeat snapshot failed")
            status = Status(last_error="heartbeat snapshot failed")
        with self._seq_lock:
            heartbeat = self._heartbeat(status, state)
        try:
            self._producer.send(
                self._topic, self.instance.encode("utf-8"), heartbeat.to_bytes(self._sign), self._on_delivery
            )
            self._producer.poll(0)
        except Exception as exc:  # broker trouble is reported by the data path already
            logger.warning("heartbeat not sent topic=%s reason=%s", self._topic, exc)
        self.beats += 1

    def _heartbeat(self, status: Status, state: BeatState) -> Heartbeat:
        now = time.monotonic()
        rate = 0.0
        if self._previous is not None and now > self._previous[0]:
            rate = max(0, status.bytes - self._previous[1]) / (now - self._previous[0])
        self._previous = (now, status.bytes)
        self._seq += 1
        dropped = max(0, len(status.recent) - MAX_RECENT)
        status = replace(status, recent=status.recent[-MAX_RECENT:])
        return replace(
            self._template,
            at=time.time(),
            state=state,
            status=status,
            rate=rate,
            recent_dropped=dropped,
            seq=self._seq,
        )

    def run(self) -> None:
        while True:
            self.beat()
            if self.wait(self.interval):
                return

    def _on_delivery(self, error: str | None) -> None:
        if error is not None:
            logger.warning("heartbeat not delivered topic=%s error=%s", self._topic, error)
