"""Send files as chunk messages and wait until the cluster acknowledged every one."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from labstream.errors import ConfigError, DeliveryError, SourceFileError
from labstream.kafka import Producer
from labstream.upload.source import SourceFile, hash_file
from labstream.wire import Chunk, encode, n_chunks_for

__all__ = ["DEFAULT_CHUNK_SIZE", "UploadReport", "Uploader", "check_chunk_size"]

logger = logging.getLogger(__name__)
# 512 KiB: the largest power of two that fits Kafka's default 1 MB message limit with the
# header; measured fastest of 16 KiB..512 KiB (see README, "Performance").
DEFAULT_CHUNK_SIZE = 512 * 1024
OnProgress = Callable[[int], None]


def check_chunk_size(size: int) -> int:
    if size <= 0 or size & (size - 1):
        raise ConfigError(f"chunk size {size} is not a nonzero power of two (e.g. {DEFAULT_CHUNK_SIZE})")
    return size


@dataclass
class UploadReport:
    """What an upload did; `failed` maps relative paths to the reason."""

    files: int = 0
    bytes: int = 0
    chunks: int = 0
    seconds: float = 0.0
    failed: dict[str, str] = field(default_factory=dict)


class _Deliveries:
    """Counts chunks in flight and remembers the first error per file."""

    def __init__(self, on_progress: OnProgress | None) -> None:
        self._lock = threading.Lock()
        self.pending = 0
        self.errors: dict[str, str] = {}
        self._on_progress = on_progress

    def callback(self, relpath: str, nbytes: int) -> Callable[[str | None], None]:
        with self._lock:
            self.pending += 1

        def on_delivery(error: str | None) -> None:
            with self._lock:
                self.pending -= 1
                if error is not None:
                    self.errors.setdefault(relpath, error)
            if error is None and self._on_progress is not None:
                self._on_progress(nbytes)

        return on_delivery


class Uploader:
    """Uploads files over one producer, `threads` files at a time."""

    def __init__(self, producer: Producer, topic: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 threads: int = 2, on_progress: OnProgress | None = None,
                 stop: threading.Event | None = None) -> None:
        self._producer = producer
        self._topic = topic
        self._chunk_size = check_chunk_size(chunk_size)
        self._threads = max(1, threads)
        self._deliveries = _Deliveries(on_progress)
        self._stop = stop or threading.Event()

    def upload(self, files: list[SourceFile]) -> UploadReport:
        """Send `files`; returns once every chunk is acknowledged or has failed."""
        report = UploadReport()
        started = time.monotonic()
        with ThreadPoolExecutor(self._threads, thread_name_prefix="labstream-upload") as pool:
            futures = {pool.submit(self._send_file, source): source for source in files}
            self._collect(futures, report)
        self._wait_for_deliveries()
        for relpath, error in self._deliveries.errors.items():
            report.failed.setdefault(relpath, f"not acknowledged: {error}")
        report.seconds = time.monotonic() - started
        return report

    def _collect(self, futures: dict[Future[int], SourceFile], report: UploadReport) -> None:
        remaining = set(futures)
        try:
            while remaining:
                done, remaining = wait(remaining, timeout=0.2, return_when=FIRST_COMPLETED)
                self._producer.poll(0)
                for future in done:
                    self._record(future, futures[future], report)
        except BaseException:
            self._stop.set()
            raise

    def _record(self, future: Future[int], source: SourceFile, report: UploadReport) -> None:
        try:
            size = future.result()
        except SourceFileError as exc:
            logger.error("file not sent file=%s reason=%s", source.relpath, exc)
            report.failed[source.relpath] = str(exc)
            return
        report.files += 1
        report.bytes += size
        report.chunks += n_chunks_for(size, self._chunk_size)

    def _wait_for_deliveries(self) -> None:
        while self._deliveries.pending > 0:
            self._producer.flush(0.5)
            self._producer.raise_if_fatal()
            if self._stop.is_set() and self._deliveries.pending > 0:
                logger.info("waiting for delivery reports pending=%d", self._deliveries.pending)

    def _send_file(self, source: SourceFile) -> int:
        before = _stat(source)
        size, sha256 = hash_file(source.path)
        n_chunks = n_chunks_for(size, self._chunk_size)
        key = source.relpath.encode("utf-8")
        logger.debug("sending file=%s size=%d chunks=%d", source.relpath, size, n_chunks)
        try:
            with open(source.path, "rb", buffering=0) as handle:
                for index in range(n_chunks):
                    if self._stop.is_set():
                        raise SourceFileError(f"{source.relpath}: upload interrupted")
                    data = handle.read(self._chunk_size)
                    chunk = Chunk(source.relpath, size, sha256, index, n_chunks, self._chunk_size, data)
                    if len(data) != min(self._chunk_size, size - chunk.offset):
                        raise SourceFileError(f"{source.relpath}: file shrank while it was sent")
                    callback = self._deliveries.callback(source.relpath, len(data))
                    self._producer.send(self._topic, key, encode(chunk), callback)
        except OSError as exc:
            raise SourceFileError(f"{source.relpath}: cannot read: {exc.strerror or exc}") from exc
        if _stat(source) != before:
            raise SourceFileError(f"{source.relpath}: file changed while it was sent; send it again")
        logger.info("file queued file=%s size=%d chunks=%d sha256=%s", source.relpath, size,
                    n_chunks, sha256.hex())
        return size


def _stat(source: SourceFile) -> tuple[int, int]:
    try:
        st = os.stat(source.path)
    except OSError as exc:
        raise SourceFileError(f"{source.relpath}: cannot read: {exc.strerror or exc}") from exc
    return st.st_size, st.st_mtime_ns


def raise_if_failed(report: UploadReport) -> None:
    """Turn a report with failures into a `DeliveryError` naming them."""
    if report.failed:
        first = next(iter(report.failed.items()))
        raise DeliveryError(f"{len(report.failed)} file(s) not fully sent; first: {first[0]}: {first[1]}")
