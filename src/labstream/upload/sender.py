"""Send one file as chunk messages; report once the cluster has acknowledged all of them."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from labstream.errors import SourceFileError, UnsafePathError
from labstream.kafka.clients import ProducerClient
from labstream.metrics.latency import CHUNK_LATENCY
from labstream.upload.source import SourceFile, hash_file
from labstream.wire import WIRE_FORMATS, Chunk, WireFormat, check_relative_path, n_chunks_for

__all__ = ["FileSender", "OnFileDone", "OnProgress", "SentFile"]

logger = logging.getLogger(__name__)
OnProgress = Callable[[int], None]


@dataclass(frozen=True)
class SentFile:
    """A file whose chunks were all produced: what was sent."""

    source: SourceFile
    size: int
    mtime_ns: int
    sha256: bytes  # the file digest: SHA-256, or SHA-512 in openmsistream's format
    n_chunks: int


# Called once per file from a delivery callback: (what was sent, None) when every chunk is
# acknowledged, or (what was sent, reason) when at least one chunk was not.
OnFileDone = Callable[[SentFile, "str | None"], None]


class _FileDeliveries:
    """Counts one file's chunks in flight; fires `on_done` when the last report arrives."""

    def __init__(self, sent: SentFile, on_done: OnFileDone, on_progress: OnProgress | None) -> None:
        self._lock = threading.Lock()
        self._remaining = sent.n_chunks
        self._error: str | None = None
        self._sent = sent
        self._on_done = on_done
        self._on_progress = on_progress

    def callback(self, nbytes: int) -> Callable[[str | None], None]:
        produced = time.monotonic()

        def on_delivery(error: str | None) -> None:
            if error is None:
                CHUNK_LATENCY.observe(time.monotonic() - produced)
            with self._lock:
                self._remaining -= 1
                if error is not None and self._error is None:
                    self._error = error
                finished = self._remaining == 0
            if error is None and self._on_progress is not None:
                self._on_progress(nbytes)
            if finished:
                self._on_done(self._sent, None if self._error is None else f"not acknowledged: {self._error}")

        return on_delivery


class FileSender:
    """Produces files chunk by chunk over a shared producer (safe from several threads)."""

    def __init__(
        self,
        producer: ProducerClient,
        topic: str,
        chunk_size: int,
        *,
        stop: threading.Event | None = None,
        on_progress: OnProgress | None = None,
        wire: WireFormat = WIRE_FORMATS["labstream"],
    ) -> None:
        self._wire = wire
        self._producer = producer
        self._topic = topic
        self._chunk_size = chunk_size
        self._stop = stop or threading.Event()
        self._on_progress = on_progress

    def send(self, source: SourceFile, on_done: OnFileDone) -> SentFile:
        """Hash and produce every chunk of `source`; `on_done` fires after the last report.

        Raises `SourceFileError` (and `on_done` never fires) if the file cannot be read,
        changes while it is read, or `stop` is set before every chunk was produced.
        """
        try:
            check_relative_path(source.relpath)
        except UnsafePathError as exc:  # a local name no receiver would accept: this file only
            raise SourceFileError(f"cannot be sent under this name: {exc}") from exc
        before = _stat(source)
        # The version time (docs/wire-format.md): later sends of a path must carry later times.
        version_ns = time.time_ns()
        size, sha256 = hash_file(source.path, self._wire.hash_name)
        sent = SentFile(source, size, before[1], sha256, n_chunks_for(size, self._chunk_size))
        deliveries = _FileDeliveries(sent, on_done, self._on_progress)
        try:
            with open(source.path, "rb", buffering=0) as handle:
                for index in range(sent.n_chunks):
                    if self._stop.is_set():
                        raise SourceFileError(f"{source.relpath}: stopped before every chunk was sent")
                    data = handle.read(self._chunk_size)
                    chunk = Chunk(
                        source.relpath,
                        size,
                        sha256,
                        index,
                        sent.n_chunks,
                        self._chunk_size,
                        data,
                        version_ns=version_ns,
                    )
                    if len(data) != min(self._chunk_size, size - chunk.offset):
                        raise SourceFileError(f"{source.relpath}: file shrank while it was sent")
                    key = self._wire.key(source.relpath, index, sent.n_chunks)
                    self._producer.send(
                        self._topic, key, self._wire.encode(chunk), deliveries.callback(len(data))
                    )
        except OSError as exc:
            raise SourceFileError(f"{source.relpath}: cannot read: {exc.strerror or exc}") from exc
        if _stat(source) != before:
            raise SourceFileError(f"{source.relpath}: file changed while it was sent")
        logger.debug("file produced file=%s size=%d chunks=%d", source.relpath, size, sent.n_chunks)
        return sent


def _stat(source: SourceFile) -> tuple[int, int]:
    try:
        st = os.stat(source.path)
    except OSError as exc:
        raise SourceFileError(f"{source.relpath}: cannot read: {exc.strerror or exc}") from exc
    return st.st_size, st.st_mtime_ns
