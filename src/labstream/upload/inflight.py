"""Files handed to the producer and not yet acknowledged: one tracker for every upload engine."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from labstream.kafka.clients import ProducerClient
from labstream.upload.sender import SentFile

__all__ = ["InFlight", "log_sent"]

logger = logging.getLogger(__name__)


class InFlight:
    """Counts files whose chunks are produced but not all acknowledged (or failed), and waits
    for them. `sending()` wraps a send: the file counts from its first chunk; `done()` is
    called once from its delivery outcome; a send that raises stops counting at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    @contextmanager
    def sending(self) -> Iterator[None]:
        with self._lock:
            self._count += 1
        try:
            yield
        except BaseException:
            self.done()  # no delivery outcome will come for a send that did not finish
            raise

    def done(self) -> None:
        with self._lock:
            self._count -= 1

    def flush(self, producer: ProducerClient, seconds: float = 1.0) -> None:
        """Serve delivery reports until no file is in flight; a fatal producer error raises."""
        while self.count > 0:
            producer.flush(seconds)
            producer.raise_if_fatal()


def log_sent(sent: SentFile) -> None:
    """The line each acknowledged file gets, from either engine."""
    logger.info(
        "file sent file=%s size=%d chunks=%d sha256=%s",
        sent.source.relpath,
        sent.size,
        sent.n_chunks,
        sent.sha256.hex(),
    )
