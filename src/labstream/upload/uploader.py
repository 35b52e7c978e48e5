"""`upload`: send a list of files and wait until the cluster acknowledged every chunk."""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from dataclasses import dataclass, field

from labstream.errors import ConfigError, DeliveryError, SourceFileError
from labstream.kafka.clients import ProducerClient
from labstream.logsafe import shown
from labstream.loops import spawn
from labstream.upload.inflight import InFlight, log_sent
from labstream.upload.rate import RateLimiter
from labstream.upload.sender import FileSender, OnProgress, SentFile
from labstream.upload.source import SourceFile
from labstream.wire import WIRE_FORMATS, WireFormat

__all__ = ["DEFAULT_CHUNK_SIZE", "UploadReport", "Uploader", "check_chunk_size", "raise_if_failed"]

logger = logging.getLogger(__name__)
# 512 KiB: the largest power of two that fits Kafka's default 1 MB message limit with the
# header, and the fastest of the sizes measured (see README, "Performance").
DEFAULT_CHUNK_SIZE = 512 * 1024
POLL_SECONDS = 0.1  # how often the main thread serves delivery reports during an upload


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
    sent: list[SentFile] = field(default_factory=list)


class Uploader:
    """Uploads files over one producer, `threads` files at a time."""

    def __init__(
        self,
        producer: ProducerClient,
        topic: str,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        threads: int = 2,
        on_progress: OnProgress | None = None,
        stop: threading.Event | None = None,
        wire: WireFormat = WIRE_FORMATS["labstream"],
        max_rate: float | None = None,
        source: str = "",
    ) -> None:
        """`max_rate`: payload bytes per second for all threads together (None: no limit);
        `source`: the instrument's name carried by every send ("" none)."""
        self._producer = producer
        self._threads = max(1, threads)
        self._stop = stop or threading.Event()
        rate = RateLimiter(max_rate, stop=self._stop) if max_rate else None
        self._sender = FileSender(
            producer,
            topic,
            check_chunk_size(chunk_size),
            stop=self._stop,
            on_progress=on_progress,
            wire=wire,
            rate=rate,
            source_name=source,
        )
        self._lock = threading.Lock()
        self._in_flight = InFlight()

    def upload(self, files: list[SourceFile]) -> UploadReport:
        """Send `files`; returns once every chunk is acknowledged or has failed."""
        report = UploadReport()
        started = time.monotonic()
        todo: queue.SimpleQueue[SourceFile] = queue.SimpleQueue()
        for source in files:
            todo.put(source)
        errors: list[BaseException] = []
        workers = [
            spawn(functools.partial(self._work, todo, report, errors), f"labstream-upload-{i}")
            for i in range(self._threads)
        ]
        try:
            # The workers serve delivery reports (a poll after each produce); this thread
            # serves those that arrive while they read or wait, now and then: waking up for
            # each report cost a GIL hand-off per chunk (14 % of a large upload's samples).
            while alive := [w for w in workers if w.is_alive()]:
                alive[0].join(POLL_SECONDS)
                self._producer.poll(0)
        except BaseException:
            self._stop.set()
            for worker in workers:
                worker.join()
            raise
        if errors:
            raise errors[0]
        self._in_flight.flush(self._producer, 0.5)
        report.seconds = time.monotonic() - started
        return report

    def _work(
        self, todo: queue.SimpleQueue[SourceFile], report: UploadReport, errors: list[BaseException]
    ) -> None:
        while not self._stop.is_set():
            try:
                source = todo.get_nowait()
            except queue.Empty:
                return
            try:
                self._send(source, report)
            except SourceFileError as exc:
                logger.error("file not sent file=%s reason=%s", shown(source.relpath), shown(exc))
                with self._lock:
                    report.failed[source.relpath] = str(exc)
            except BaseException as exc:  # a bug or a fatal Kafka error: stop everything
                errors.append(exc)
                self._stop.set()
                return

    def _send(self, source: SourceFile, report: UploadReport) -> None:
        def on_done(sent: SentFile, error: str | None) -> None:
            with self._lock:
                if error is None:
                    report.files += 1
                    report.bytes += sent.size
                    report.chunks += sent.n_chunks
                    report.sent.append(sent)
                else:
                    report.failed[sent.source.relpath] = error
            if error is None:
                log_sent(sent)
            self._in_flight.done()

        with self._in_flight.sending():
            self._sender.send(source, on_done)


def raise_if_failed(report: UploadReport) -> None:
    """Turn a report with failures into a `DeliveryError` naming them."""
    if report.failed:
        first = next(iter(report.failed.items()))
        raise DeliveryError(
            f"{len(report.failed)} file(s) not fully sent; first: {shown(first[0])}: {shown(first[1])}"
        )
