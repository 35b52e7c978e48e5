"""Consumer threads that feed assemblers and move offsets only past durable files."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from labstream.download.assembler import Assembler, DoneFile, Outcome
from labstream.download.ledger import Ledger
from labstream.download.options import DownloadOptions
from labstream.download.owners import Owners
from labstream.download.placement import check_writable
from labstream.errors import LabstreamError, OutputError
from labstream.kafka import Record, member_for_thread
from labstream.kafka.clients import REAL_CLIENTS, ConsumerClient, KafkaClients
from labstream.kafka.settings import LibrdkafkaConfig
from labstream.locks import InstanceLock
from labstream.logsafe import shown
from labstream.loops import spawn
from labstream.outcomes import OnLive, OnVerdict, Verdict
from labstream.processes import pid_alive
from labstream.state import OutputState
from labstream.wire import peek_path
from labstream.wire.crypto import PayloadCipher

__all__ = ["DownloadReport", "Downloader"]

logger = logging.getLogger(__name__)
BATCH = 64  # bounds memory: at most 64 chunks (32 MiB at 512 KiB) in hand per thread
POLL_SECONDS = 0.5
# Verified files are committed together (one flush, one folder sync, one ledger transaction,
# one offset store) once this many wait, once they hold this many bytes, once the oldest has
# waited this long, or at once when the consumer has nothing more queued (caught up).
COMMIT_FILES = 512
COMMIT_BYTES = 64 << 20
COMMIT_SECONDS = 1.0
SPACE_PROBE_SECONDS = 0.25  # while the output folder is full: how often free space is checked
# Before any partition is assigned (a group still rebalancing after a crash), idleness
# counts only after this long, so --exit-when-idle does not quit while joining.
JOIN_GRACE_SECONDS = 30.0
# On a stop, a file more than this part received may still finish within `stop_grace_seconds`
# seconds: restarting would read all of it again (its offsets are held at its first chunk).
GRACE_FRACTION = 0.5
TopicPartition = tuple[str, int]
T = TypeVar("T")


@dataclass
class DownloadReport:
    files: int = 0
    bytes: int = 0
    failed: int = 0
    rejected: int = 0
    duplicates: int = 0
    skipped: int = 0  # chunks of files not picked (--include/--exclude)
    aborted: int = 0  # wire-v2 sends their sender gave up (the file changed while it was read)
    records: int = 0  # messages read, whatever became of them
    seconds: float = 0.0


class Downloader:
    """Runs `threads` consumers of one group until stopped or idle."""

    def __init__(
        self,
        librdkafka: LibrdkafkaConfig,
        topic: str,
        out_dir: Path,
        options: DownloadOptions | None = None,
        *,
        stop: threading.Event | None = None,
        on_outcome: Callable[[Outcome, int], None] | None = None,
        on_verdict: OnVerdict | None = None,
        on_live: OnLive | None = None,
        after_commit: Callable[[list[DoneFile], Ledger], None] | None = None,
        cipher: PayloadCipher | None = None,
        clients: KafkaClients = REAL_CLIENTS,
        accepts: Callable[[str], bool] | None = None,
    ) -> None:
        """`librdkafka`: the consumer settings. `accepts(relative_path)`: False skips the
        file's chunks before the assembler sees them (their offsets still move). `on_live`:
        each live send's verified prefix as it grows (the receipts' "live" outcome)."""
        self._options = options or DownloadOptions()
        self._accepts = accepts
        self._shared_owners: Owners | None = None
        self._clients = clients
        self._cipher = cipher
        self._halt = threading.Event()  # the grace is over (or there is none): stop at once
        self._settings = librdkafka
        self._topic = topic
        self._out_dir = out_dir
        self.stop = stop or threading.Event()
        self._on_outcome = on_outcome
        self._on_verdict = on_verdict
        self._on_live = on_live
        self._after_commit = after_commit
        self._lock = threading.Lock()
        self._last_activity = time.monotonic()
        self._busy = 0  # processors (`after_commit`) running now
        self._seconds_per_file: float | None = None  # the processor's, as last measured
        self._assigned = False
        self._errors: list[BaseException] = []
        self._current: dict[int, list[tuple[str, int, int]]] = {}  # per worker, after each batch
        self._positions: dict[int, dict[TopicPartition, int]] = {}  # per worker, after each batch
        self.report = DownloadReport()

    def in_progress(self) -> list[tuple[str, int, int]]:
        """(path, bytes received, announced size; <= 0 unknown) of the files being received,
        as of each worker's last batch. Paths come from messages: show them with `shown`."""
        with self._lock:
            return [entry for files in self._current.values() for entry in files]

    def positions(self) -> dict[int, int]:
        """Partition -> next offset to read, of the partitions this process reads now, as of
        each worker's last batch (its committed offsets may be far behind: they wait for
        complete files)."""
        with self._lock:
            return {p: offset for each in self._positions.values() for (_, p), offset in each.items()}

    def run(self) -> DownloadReport:
        """Download until `stop` is set, the idle time passes, or a worker fails."""
        started = time.monotonic()
        check_writable(self._out_dir)
        state = OutputState(self._out_dir)
        with InstanceLock(state.lock, "downloader"), Ledger(state.ledger) as ledger:
            _remove_stale_partials(state.partial)
            workers = [
                spawn(functools.partial(self._work, ledger, i), f"labstream-download-{i}")
                for i in range(self._options.consumer_threads)
            ]
            self._supervise(workers)
        self.report.seconds = time.monotonic() - started
        if self._errors:
            raise self._errors[0]
        return self.report

    def _supervise(self, workers: list[threading.Thread]) -> None:
        stopped_at: float | None = None
        while any(w.is_alive() for w in workers):
            if self.stop.is_set() and stopped_at is None:
                stopped_at = time.monotonic()
            if stopped_at is not None and time.monotonic() - stopped_at >= self._options.stop_grace_seconds:
                self._halt.set()
            limit = self._options.exit_when_idle
            if limit is not None and not self._assigned:
                limit = max(limit, JOIN_GRACE_SECONDS)
            idle = limit is not None and self._idle_for() > limit
            if idle and not self.stop.is_set():
                logger.info("idle, stopping idle_seconds=%g", self._options.exit_when_idle)
                self._halt.set()  # idle: nothing is coming that a grace could wait for
                self.stop.set()
            for worker in workers:
                worker.join(timeout=0.2 / len(workers))

    def _touch(self, assigned: bool = False) -> None:
        with self._lock:
            self._last_activity = time.monotonic()
            self._assigned = self._assigned or assigned

    def _owners(self, ledger: Ledger) -> Owners:
        """One `Owners` for every thread: names claimed by one are seen by the others."""
        with self._lock:
            if self._shared_owners is None:
                self._shared_owners = Owners(self._out_dir, ledger, self._options.placement)
            return self._shared_owners

    def _idle_for(self) -> float:
        """Seconds since the last record or processed file; 0 while a processor works."""
        with self._lock:
            return 0.0 if self._busy else time.monotonic() - self._last_activity

    def _work(self, ledger: Ledger, index: int) -> None:
        assembler = Assembler(
            self._out_dir,
            ledger,
            self._verdict,
            self._cipher,
            limits=self._options.limits,
            stop=self._halt,
            owners=self._owners(ledger),
            on_live=self._on_live,
        )
        next_offsets: dict[TopicPartition, int] = {}
        stored: dict[TopicPartition, int] = {}
        opened: list[ConsumerClient] = []

        def on_revoke(partitions: list[TopicPartition]) -> None:
            # Still ours during this call: files verified and waiting for their commit are
            # committed and their offsets stored, so the new owner does not read and verify
            # them again (a consumer joining the group used to cost a whole batch).
            if opened:
                self._commit_on_revoke(assembler, ledger, opened[0], next_offsets, stored)
            assembler.drop_partitions(partitions)
            for tp in partitions:
                next_offsets.pop(tp, None)
                stored.pop(tp, None)

        try:
            with self._clients.consumer(
                member_for_thread(self._settings, index),
                [self._topic],
                on_revoke=on_revoke,
                on_assign=lambda _: self._touch(assigned=True),
                start_new_at_ms=self._options.start_new_at_ms,
            ) as consumer:
                opened.append(consumer)

                def settle() -> None:
                    """A slow processor's files are processed as they complete and their
                    offsets stored: the group's lag counts what is left, not a whole batch."""
                    if self._processing_due(assembler):
                        self._commit(assembler, ledger)
                        _store_safe_offsets(consumer, assembler, next_offsets, stored)

                each = settle if self._after_commit is not None else None
                while not self.stop.is_set():
                    records = consumer.consume(BATCH, POLL_SECONDS)
                    self._handle(records, assembler, next_offsets, each)
                    if len(records) < BATCH or self.stop.is_set() or _commit_due(assembler):
                        self._commit(assembler, ledger)
                    if records:
                        self._touch()  # time spent on a batch is not idle time (--exit-when-idle)
                    assembler.expire()
                    _store_safe_offsets(consumer, assembler, next_offsets, stored)
                    self._publish_progress(index, assembler, next_offsets)
                # Stopped between a batch and its commit: what is verified is committed now,
                # not read and verified again by the next run.
                self._commit(assembler, ledger)
                _store_safe_offsets(consumer, assembler, next_offsets, stored)
                self._finish_in_hand(consumer, assembler, ledger, next_offsets, stored)
        except LabstreamError as exc:
            logger.error("download worker stopped reason=%s", shown(exc))
            self._fail(exc)
        except BaseException as exc:  # a bug: keep the traceback, stop the others
            self._fail(exc)
            raise
        finally:
            assembler.close()
            with self._lock:
                self._current.pop(index, None)
                self._positions.pop(index, None)

    def _commit(self, assembler: Assembler, ledger: Ledger) -> None:
        done = self._retry_output(assembler.commit, assembler)
        if done and self._after_commit is not None:
            started = time.monotonic()
            with self._working():  # a slow processor is busy, not idle
                self._after_commit(done, ledger)  # before the offsets move past them
            with self._lock:
                self._seconds_per_file = (time.monotonic() - started) / len(done)

    def _processing_due(self, assembler: Assembler) -> bool:
        """The files ready now would keep the processor busy for COMMIT_SECONDS or more (the
        first file is timed alone): a fast processor still gets them in batches."""
        with self._lock:
            each = self._seconds_per_file
        return each is None or assembler.ready_files() * each >= COMMIT_SECONDS

    @contextlib.contextmanager
    def _working(self) -> Iterator[None]:
        with self._lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1
                self._last_activity = time.monotonic()

    def _commit_on_revoke(
        self,
        assembler: Assembler,
        ledger: Ledger,
        consumer: ConsumerClient,
        next_offsets: dict[TopicPartition, int],
        stored: dict[TopicPartition, int],
    ) -> None:
        """One attempt, no waiting: this runs inside the group's rebalance, which the other
        members wait for. On a full disk the files are dropped with the partitions, and their
        new owner reads them again. Not with processors (`after_commit`): their code may run
        for minutes, so their files are dropped and handed over as before."""
        if self._after_commit is not None:
            return
        try:
            assembler.commit()
        except OutputError as exc:
            logger.warning("verified files not committed before a rebalance reason=%s", shown(exc))
            return
        _store_safe_offsets(consumer, assembler, next_offsets, stored)

    def _publish_progress(
        self, index: int, assembler: Assembler, next_offsets: dict[TopicPartition, int]
    ) -> None:
        files = assembler.progress()
        with self._lock:
            self._current[index] = files
            self._positions[index] = dict(next_offsets)

    def _fail(self, exc: BaseException) -> None:
        self._errors.append(exc)
        self._halt.set()  # no grace after a failure
        self.stop.set()

    def _finish_in_hand(
        self,
        consumer: ConsumerClient,
        assembler: Assembler,
        ledger: Ledger,
        next_offsets: dict[TopicPartition, int],
        stored: dict[TopicPartition, int],
    ) -> None:
        """After `stop`, until the grace is over: read on only the partitions of files more
        than GRACE_FRACTION received, so they can finish. Records of other partitions are
        dropped unhandled, so their offsets are not stored (the next run reads them); the
        set only shrinks, so no partition read here has a gap."""
        wanted = assembler.nearly_done(GRACE_FRACTION) if self._options.stop_grace_seconds > 0 else set()
        if wanted and not self._halt.is_set():
            logger.info("stopping after files mostly received partitions=%d", len(wanted))
        while wanted and not self._halt.is_set():
            records = consumer.consume(BATCH, POLL_SECONDS)
            self._handle([r for r in records if (r.topic, r.partition) in wanted], assembler, next_offsets)
            self._commit(assembler, ledger)
            _store_safe_offsets(consumer, assembler, next_offsets, stored)
            wanted &= assembler.nearly_done(GRACE_FRACTION)

    def _handle(
        self,
        records: list[Record],
        assembler: Assembler,
        next_offsets: dict[TopicPartition, int],
        settle: Callable[[], None] | None = None,
    ) -> None:
        """`settle`: called after each record that completed a file (processors)."""
        if records:
            self._touch()
            assembler.prepare(records if self._accepts is None else [r for r in records if self._picked(r)])
        for record in records:
            if self._halt.is_set():
                break  # the rest are read again by the next run: their offsets are not stored
            if not self._picked(record):
                next_offsets[(record.topic, record.partition)] = record.offset + 1
                with self._lock:
                    self.report.skipped += 1
                    self.report.records += 1
                continue
            outcome = self._retry_output(functools.partial(assembler.add, record), assembler)
            next_offsets[(record.topic, record.partition)] = record.offset + 1
            self._count(outcome, len(record.value))
            if settle is not None and outcome is Outcome.COMPLETE:
                settle()

    def _picked(self, record: Record) -> bool:
        """Unreadable messages are not skipped: the assembler reports them as rejected."""
        if self._accepts is None:
            return True
        path = peek_path(record.value)
        return path is None or self._accepts(path)

    def _retry_output(self, action: Callable[[], T], assembler: Assembler) -> T:
        """Run `action`; while the output folder is full (no space, quota), wait and retry.
        Offsets stay where they are meanwhile, so nothing is lost if we stop. Files in
        progress still expire while we wait: incomplete files that will never be finished
        must not keep the disk full for ever.

        The retry waits out a back-off doubling up to 30 s, but free space is probed every
        SPACE_PROBE_SECONDS meanwhile, so writing resumes within a second of space returning."""
        delay = 1.0
        quiet = False  # a retry because space grew and failed again is not logged again
        while True:
            try:
                return action()
            except OutputError as exc:
                if not exc.retriable:
                    raise  # permission denied: waiting will not help
                if not quiet:
                    logger.error(
                        "cannot write the output folder; waiting, offsets not committed "
                        "retry_in=%gs reason=%s",
                        delay,
                        shown(exc),
                    )
                self._touch()  # waiting for space is not being idle
                waited = _wait_for_space(self._halt, self._out_dir, delay)
                if waited is None:
                    raise
                assembler.expire()
                quiet = waited
                if not waited:
                    delay = min(delay * 2, 30.0)

    def _verdict(self, verdict: Verdict) -> None:
        """Files are counted by their verdicts, one per send: a file given up or set aside at
        commit fails without a FAILED outcome of its own. A send found already here (the
        same bytes) gets its receipt but is not counted again."""
        with self._lock:
            if not verdict.verified:
                self.report.failed += 1
            elif not verdict.duplicate:
                self.report.files += 1
        if self._on_verdict is not None and verdict.names_a_send:
            self._on_verdict(verdict)

    def _count(self, outcome: Outcome, nbytes: int) -> None:
        with self._lock:
            self.report.records += 1
            if outcome is Outcome.REJECTED:
                self.report.rejected += 1
            elif outcome is Outcome.DUPLICATE:
                self.report.duplicates += 1
            elif outcome is Outcome.ABORTED:
                self.report.aborted += 1
            if outcome is not Outcome.REJECTED:
                self.report.bytes += nbytes
        if self._on_outcome is not None:
            self._on_outcome(outcome, nbytes)


def _wait_for_space(stop: threading.Event, folder: Path, seconds: float) -> bool | None:
    """Wait up to `seconds`, returning early (True) once `folder` has more free space than now;
    False when the time is up, None when `stop` was set. Each probe is one statfs call."""
    before = _free_bytes(folder)
    deadline = time.monotonic() + seconds
    while not stop.wait(min(SPACE_PROBE_SECONDS, max(0.0, deadline - time.monotonic()))):
        if time.monotonic() >= deadline:
            return False
        now = _free_bytes(folder)
        if before is not None and now is not None and now > before:
            return True
    return None


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _commit_due(assembler: Assembler) -> bool:
    """Enough verified files wait for a commit, though more records are queued."""
    if assembler.ready_files() >= COMMIT_FILES or assembler.ready_bytes() >= COMMIT_BYTES:
        return True
    waited = assembler.ready_seconds()
    return waited is not None and waited >= COMMIT_SECONDS


def _store_safe_offsets(
    consumer: ConsumerClient,
    assembler: Assembler,
    next_offsets: dict[TopicPartition, int],
    stored: dict[TopicPartition, int],
) -> None:
    """Offsets advance only up to the first chunk of any file still incomplete."""
    held = assembler.held_offsets()
    for tp, next_offset in next_offsets.items():
        safe = min(held.get(tp, next_offset), next_offset)
        if safe > stored.get(tp, -1):
            consumer.store(tp[0], tp[1], safe)
            stored[tp] = safe


def _remove_stale_partials(folder: Path) -> None:
    """Temporary files of downloaders that no longer run (same host) are removed."""
    if not folder.is_dir():
        return
    for child in folder.iterdir():
        pid = child.name.split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            shutil.rmtree(child, ignore_errors=True)
