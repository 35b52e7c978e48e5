"""Run a processor over every file of a topic, as a consumer group, at least once."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from labstream.download import DoneFile, Downloader, Ledger
from labstream.download.ledger import FileState
from labstream.download.placement import check_writable
from labstream.kafka.clients import REAL_CLIENTS, KafkaClients
from labstream.kafka.settings import LibrdkafkaConfig
from labstream.locks import InstanceLock
from labstream.logsafe import shown
from labstream.outcomes import ReceiptOutcome, Verdict
from labstream.process.api import BaseProcessor, LivePrefix, ReceivedFile
from labstream.process.options import ProcessOptions
from labstream.receipts import ReceiptPublisher
from labstream.state import OutputState
from labstream.wire.crypto import PayloadCipher

__all__ = ["ProcessReport", "ProcessRunner"]

logger = logging.getLogger(__name__)


@dataclass
class ProcessReport:
    processed: int = 0
    failed: int = 0
    reprocessed: int = 0


class ProcessRunner:
    """Rebuilds files into `workdir` (verified), hands each to `processor`, then forgets it.

    Offsets move past a file only after the processor returned (or failed for good), so a
    crash processes again rather than skips. A failing file is retried `retries` times, then
    kept in WORKDIR/.labstream/failed-processing/ for `--reprocess-failed`, and the stream
    goes on.
    """

    def __init__(
        self,
        processor: BaseProcessor,
        librdkafka: LibrdkafkaConfig,
        topic: str,
        workdir: Path,
        options: ProcessOptions | None = None,
        *,
        stop: threading.Event | None = None,
        publisher: ReceiptPublisher | None = None,
        cipher: PayloadCipher | None = None,
        clients: KafkaClients = REAL_CLIENTS,
    ) -> None:
        """`librdkafka`: the consumer settings."""
        self._processor = processor
        self._topic = topic
        self._workdir = workdir
        self._options = options or ProcessOptions()
        self._publisher = publisher
        self.stop = stop or threading.Event()
        self._lock = threading.Lock()
        self.report = ProcessReport()
        self._downloader = Downloader(
            librdkafka,
            topic,
            workdir,
            self._options.download,
            stop=self.stop,
            on_verdict=self._on_verification_failure,
            on_live=self._on_live if callable(getattr(processor, "process_live", None)) else None,
            after_commit=self._after_commit,
            cipher=cipher,
            clients=clients,
        )

    @property
    def received_bytes(self) -> int:
        """Bytes of messages read so far."""
        return self._downloader.report.bytes

    @property
    def records_read(self) -> int:
        """Messages read so far."""
        return self._downloader.report.records

    def positions(self) -> dict[int, int]:
        """Partition -> next offset to read (Downloader.positions)."""
        return self._downloader.positions()

    def in_progress(self) -> list[tuple[str, int, int]]:
        """(path, bytes received, announced size) of the files being received."""
        return self._downloader.in_progress()

    @property
    def failed_dir(self) -> Path:
        return OutputState(self._workdir).failed_processing

    def run(self, reprocess_failed: bool = False) -> ProcessReport:
        check_writable(self._workdir)
        with InstanceLock(OutputState(self._workdir).lock, "processor"):
            self._finish_interrupted()
            if reprocess_failed:
                self._reprocess_failed()
            self._downloader.run()
        return self.report

    def _finish_interrupted(self) -> None:
        """Files verified into the workdir by a run that died before processing them."""
        for file, key_size, path, ledger in self._kept(FileState.VERIFIED, self._workdir):
            logger.info("processing a file left by an interrupted run file=%s", file.relpath)
            self._settle(file, key_size, self._attempt(file), ledger, path)

    def _kept(self, status: FileState, folder: Path) -> Iterator[tuple[ReceivedFile, int, Path, Ledger]]:
        """Files in ledger `status` still present under `folder`, ready to hand to the processor."""
        with Ledger(OutputState(self._workdir).ledger) as ledger:
            for relpath, digest, key_size, _reason, hash_name in ledger.with_status(status):
                path = folder / relpath
                if not path.exists():
                    if status is FileState.PROCESS_FAILED:
                        logger.warning("failed file no longer kept, cannot reprocess file=%s", relpath)
                    continue
                file = ReceivedFile(relpath, path, path.stat().st_size, digest.hex(), hash_name, self._topic)
                yield file, key_size, path, ledger

    def _after_commit(self, done: list[DoneFile], ledger: Ledger) -> None:
        for file in done:
            received = ReceivedFile(
                file.relpath,
                file.path,
                file.size,
                file.digest.hex(),
                file.hash_name,
                self._topic,
                source=file.source,
            )
            error = self._attempt(received)
            self._settle(received, file.key_size, error, ledger, file.path, file)

    def _attempt(self, file: ReceivedFile) -> str | None:
        error = None
        for attempt in range(self._options.retries + 1):
            try:
                self._processor.process(file)
                return None
            except Exception as exc:  # the user's code: any failure counts
                error = f"{type(exc).__name__}: {exc}"
                logger.warning(
                    "processor failed file=%s attempt=%d/%d error=%s",
                    shown(file.relpath),
                    attempt + 1,
                    self._options.retries + 1,
                    shown(error),
                )
                wait = self._options.processor_retry_seconds * (2**attempt)
                if attempt < self._options.retries and self.stop.wait(wait):
                    break
        return error

    def _settle(
        self,
        file: ReceivedFile,
        key_size: int,
        error: str | None,
        ledger: Ledger,
        path: Path,
        done: DoneFile | None = None,
    ) -> None:
        """`done`: the file as the downloader placed it, which names its send (None for a
        file processed again from the failed folder: its receipt names path and digest)."""
        digest = bytes.fromhex(file.digest)
        done = done or DoneFile(file.relpath, path, digest, file.hash_name, file.size, key_size)
        sent_as = (done.source, done.sent_path)
        if error is None:
            ledger.record(
                file.relpath,
                digest,
                key_size,
                FileState.PROCESSED,
                hash_name=file.hash_name,
                source=sent_as[0],
                sent_path=sent_as[1],
            )
            path.unlink(missing_ok=True)
            self._count("processed")
            logger.info("file processed file=%s %s=%s", file.relpath, file.hash_name, file.digest)
            self._publish(done.verdict(ReceiptOutcome.VERIFIED))
            return
        kept = self.failed_dir / file.relpath
        kept.parent.mkdir(parents=True, exist_ok=True)
        if path != kept:
            os.replace(path, kept)
        ledger.record(
            file.relpath,
            digest,
            key_size,
            FileState.PROCESS_FAILED,
            error,
            hash_name=file.hash_name,
            source=sent_as[0],
            sent_path=sent_as[1],
        )
        self._count("failed")
        logger.error(
            "file not processed, kept for --reprocess-failed file=%s kept=%s error=%s",
            shown(file.relpath),
            kept,
            shown(error),
        )
        self._publish(done.verdict(ReceiptOutcome.FAILED, f"processing: {error}"))

    def _reprocess_failed(self) -> None:
        for file, key_size, path, ledger in self._kept(FileState.PROCESS_FAILED, self.failed_dir):
            error = self._attempt(file)
            self._settle(file, key_size, error, ledger, path)
            if error is None:
                self._count("reprocessed")

    def _on_live(self, verdict: Verdict) -> None:
        """A live file's verified prefix grew: for a processor with `process_live`. Progress,
        not a file: a failure is logged, nothing is retried, kept or receipted."""
        relpath = verdict.stored_as or verdict.path
        prefix = LivePrefix(
            relpath, self._workdir / relpath, verdict.size, verdict.digest.hex(), self._topic, verdict.source
        )
        try:
            self._processor.process_live(prefix)  # type: ignore[attr-defined]
        except Exception as exc:  # the user's code
            logger.warning(
                "processor failed on a live prefix file=%s size=%d error=%s",
                shown(relpath),
                verdict.size,
                shown(f"{type(exc).__name__}: {exc}"),
            )

    def _on_verification_failure(self, verdict: Verdict) -> None:
        if not verdict.verified:
            self._publish(verdict)

    def _publish(self, verdict: Verdict) -> None:
        if self._publisher is not None:
            self._publisher.publish(verdict)

    def _count(self, what: str) -> None:
        with self._lock:
            setattr(self.report, what, getattr(self.report, what) + 1)
