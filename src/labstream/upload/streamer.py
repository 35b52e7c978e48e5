"""`watch`: ready files from a folder -> bounded queue -> sender threads -> topic, with a ledger.

Shutdown order (one ExitStack): stop the watcher -> stop taking files from the queue ->
let files being sent finish for up to `drain_seconds`, then checkpoint them (they stay
`sending` in the ledger and continue on restart from their last acknowledged chunk,
labstream.upload.resume) -> flush the producer.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from labstream.conditions import Conditions
from labstream.errors import ConfigError, SourceFileError
from labstream.fileaccess import name_refusal
from labstream.kafka.clients import ProducerClient
from labstream.logsafe import shown
from labstream.loops import spawn
from labstream.units import human_bytes
from labstream.upload.changes import Change, Version, change_of, retry_delay
from labstream.upload.inflight import InFlight, log_sent
from labstream.upload.ledger import UploadLedger, UploadState
from labstream.upload.ledgerwrites import LedgerWrites
from labstream.upload.live import LiveSends
from labstream.upload.rate import RateLimiter
from labstream.upload.resume import Checkpoint, LivePoint
from labstream.upload.retry import RetrySchedule
from labstream.upload.sender import FileSender, SentFile
from labstream.upload.source import SourceFile, hash_file
from labstream.watch import DirectoryWatcher, Filters, ReadyFile
from labstream.watch.watcher import RESCAN_SECONDS, SETTLE_SECONDS
from labstream.wire import WIRE_FORMATS, WireFormat

__all__ = ["DirectoryStreamer", "SessionCounts", "StreamOptions", "StreamerStatus"]

logger = logging.getLogger(__name__)
# How often delivery reports are served (and so an acknowledged file recorded `sent`): a kill
# between the two sends that file again, so the gap is kept short (bench/kill_loop.py: median
# 30 -> 19 files of 1,000 sent twice over five kills, from 0.5 s; README "Watch a folder").
REPORT_SECONDS = 0.05


@dataclass(frozen=True)
class StreamOptions:
    chunk_size: int = 512 * 1024
    threads: int = 2
    queue_max_size: int = 3000
    upload_existing: bool = False
    ignore_existing: bool = False  # a new ledger in a non-empty folder: record, do not send
    filters: Filters = field(default_factory=Filters)
    settle_seconds: float = SETTLE_SECONDS
    rescan_seconds: float = RESCAN_SECONDS
    drain_seconds: float = 10.0
    wire: WireFormat = WIRE_FORMATS["labstream"]
    max_rate: float | None = None  # payload bytes per second for all sender threads
    polling: bool = False  # stat the tree instead of OS events (network shares)
    retry_seconds: float = 5.0  # first back-off before a file not acknowledged is sent again
    source: str = ""  # this instrument's name in every send (wire v2); "" none
    follow_links: bool = False  # links to files inside the folder are sent (never outside)
    live: tuple[str, ...] = ()  # globs of files sent while they grow (labstream.upload.live)
    live_interval: float = 2.0  # seconds between two sends of a live file's new bytes (or 8 MiB)
    live_close_seconds: float = 60.0  # a live file unchanged this long (and not open) is closed


@dataclass(frozen=True)
class SessionCounts:
    """Files sent and failed since this process started, and the bytes sent."""

    sent: int = 0
    failed: int = 0
    bytes: int = 0
    retried: int = 0  # sends not acknowledged, scheduled again


@dataclass(frozen=True)
class StreamerStatus:
    """A snapshot of a running streamer (console `c`, still-alive lines, heartbeats)."""

    queued: int
    settling: int
    sending: tuple[str, ...]
    awaiting_ack: int
    session: SessionCounts
    ledger: dict[str, int]
    # (path, bytes acknowledged, size) of large files being sent (wire v2: from checkpoints)
    progress: tuple[tuple[str, int, int], ...] = ()
    problems: tuple[str, ...] = ()  # local conditions that hold now (labstream.conditions)

    def lines(self) -> list[str]:
        """The snapshot as a person reads it."""
        counts = ", ".join(f"{state} {n}" for state, n in sorted(self.ledger.items())) or "empty"
        return [
            f"settling: {self.settling}  queued: {self.queued}  "
            f"awaiting acknowledgement: {self.awaiting_ack}",
            f"sending now: {', '.join(shown(path) for path in self.sending) or '-'}",
            f"this session: sent {self.session.sent}, failed {self.session.failed}, "
            f"{human_bytes(self.session.bytes)}"
            + (f", {self.session.retried} send(s) retried" if self.session.retried else ""),
            f"ledger (all time): {counts}",
            *(f"problem: {problem}" for problem in self.problems),
        ]


_BASELINE_LINES = {
    UploadState.QUEUED: "the files already in the folder are sent (--upload-existing, or none)",
    UploadState.IGNORED: "the files already in the folder are recorded, not sent (--ignore-existing)",
}


def _version(ready: ReadyFile) -> tuple[str, int, int]:
    return ready.relpath, ready.size, ready.mtime_ns


def existing_choice(n_existing: int, options: StreamOptions) -> UploadState | None:
    """What a new ledger does with the files already there: send them (QUEUED), record them
    unsent (IGNORED), or None: no choice was made and there are files to lose."""
    if options.upload_existing or n_existing == 0:
        return UploadState.QUEUED
    if options.ignore_existing:
        return UploadState.IGNORED
    return None


class DirectoryStreamer:
    """Streams every new or changed file below `root` to `topic` until `stop` is set."""

    def __init__(
        self,
        root: Path,
        producer: ProducerClient,
        topic: str,
        ledger: UploadLedger,
        options: StreamOptions,
        stop: threading.Event,
        conditions: Conditions | None = None,
        on_sent: Callable[[str], None] | None = None,
    ) -> None:
        """`conditions`: where lasting local problems are said (one shared with the receipt
        collector's clean-up covers every ledger write). `on_sent(relative path)` runs after
        a file's send is recorded as acknowledged."""
        self.root = root.resolve()
        self._on_sent = on_sent
        self._producer = producer
        self._ledger = ledger
        self._options = options
        self.stop = stop
        self._abort = threading.Event()
        self._queue: queue.Queue[ReadyFile] = queue.Queue(options.queue_max_size)
        rate = RateLimiter(options.max_rate, stop=self._abort) if options.max_rate else None
        self._sender = FileSender(
            producer,
            topic,
            options.chunk_size,
            stop=self._abort,
            wire=options.wire,
            rate=rate,
            source_name=options.source,
        )
        self._lock = threading.Lock()
        self.sending: set[str] = set()
        self._acked: dict[str, tuple[int, int]] = {}  # path -> (bytes acknowledged, size)
        self.in_flight = InFlight()
        self.session = {"sent": 0, "failed": 0, "bytes": 0, "retried": 0}
        self._retries: RetrySchedule[ReadyFile] = RetrySchedule(options.retry_seconds)
        self._failures: dict[str, int] = {}  # path -> failed sends in a row (this run): the back-off
        self.conditions = conditions or Conditions(logger)
        self._writes = LedgerWrites(ledger, self.conditions)
        self._parked: dict[str, ReadyFile] = {}  # files the ledger could not record yet
        self._live = LiveSends(self._sender, options.live, ledger.live_point, self._save_live_point)
        self._watcher = DirectoryWatcher(
            self.root,
            self._enqueue,
            is_known=self._is_known,
            filters=options.filters,
            settle_seconds=options.settle_seconds,
            rescan_seconds=options.rescan_seconds,
            polling=options.polling,
            follow_links=options.follow_links,
            on_skipped=self._on_skipped,
            conditions=self.conditions,
            live=options.live,
            live_seconds=options.live_interval,
            live_close_seconds=options.live_close_seconds,
            on_grown=self._enqueue,
        )

    def run(self) -> None:
        """Blocks until `stop` is set, then shuts down in order and returns."""
        self._baseline()
        senders = [
            spawn(self._send_loop, f"labstream-send-{i}", start=False)
            for i in range(max(1, self._options.threads))
        ]
        with ExitStack() as stack:
            stack.callback(self._flush)
            stack.callback(self._drain, senders)
            for thread in senders:
                thread.start()
            self._requeue_unfinished()
            stack.enter_context(self._watcher)
            # Only now: files that appear from here on are new, whatever the baseline saw.
            logger.info("watching folder=%s", self.root)
            while not self.stop.wait(REPORT_SECONDS):
                self._producer.poll(0)
                self._catch_up()
                for ready in self._retries.due():
                    logger.info("sending again a file not acknowledged file=%s", shown(ready.relpath))
                    self._enqueue(ready)

    def status(self) -> StreamerStatus:
        with self._lock:
            sending = tuple(sorted(self.sending))
            in_flight = self.in_flight.count
            session = SessionCounts(**self.session)
            progress = tuple((path, done, size) for path, (done, size) in sorted(self._acked.items()))
        return StreamerStatus(
            progress=progress,
            queued=self._queue.qsize(),
            settling=self._watcher.pending(),
            sending=sending,
            awaiting_ack=in_flight,
            session=session,
            ledger=self._ledger.counts(),
            problems=tuple(self.conditions.current().values()),
        )

    def _baseline(self) -> None:
        """A new ledger: send what is already there, record it unsent, or stop and ask.

        A new ledger in a folder that holds files is a first start or a lost ledger (a
        reinstall, a cleaned profile), and nothing here tells them apart; recording the files
        unsent would silently lose those written while the old ledger was gone. So without an
        explicit choice (`--upload-existing`, `--ignore-existing`) the watcher stops and asks.
        """
        if self._ledger.meta("baseline") is not None:
            return
        existing = self._existing()
        choice = existing_choice(len(existing), self._options)
        if choice is None:
            raise ConfigError(
                f"new ledger in {self._ledger.path.parent}, but {self.root} already holds "
                f"{len(existing)} file(s): a first start, or a lost ledger whose files would be lost? "
                "Start once with --ignore-existing to send only new files, or with --upload-existing "
                "to send these too (downstream keeps one copy of identical content)"
            )
        if choice == UploadState.IGNORED:
            self._ledger.set_many(existing, UploadState.IGNORED)
        self._ledger.set_meta("baseline", "done")
        logger.info("new ledger: %s files=%d", _BASELINE_LINES[choice], len(existing))

    def _existing(self) -> list[tuple[str, int, int]]:
        """(relpath, size, mtime_ns) of every file below the root that the filters accept."""
        rows = []
        for folder, _dirs, names in os.walk(self.root):
            for name in names:
                path = Path(folder) / name
                relpath = path.relative_to(self.root).as_posix()
                try:
                    st = path.stat()
                except OSError:
                    continue
                # A name that cannot travel is reported by the watcher, not recorded here.
                if self._options.filters.accepts(relpath) and name_refusal(relpath) is None:
                    rows.append((relpath, st.st_size, st.st_mtime_ns))
        return rows

    def _is_known(self, relpath: str, size: int, mtime_ns: int, ctime_ns: int) -> bool:
        row, seen = self._ledger.get(relpath), Version(size, mtime_ns, ctime_ns)
        change = change_of(row, seen, time.time(), upload_existing=self._options.upload_existing)
        if change is Change.ADOPT_CTIME:
            self._writes.attempt(lambda ledger: ledger.set_ctime(relpath, ctime_ns))
        elif change is Change.CHECK_CONTENT:
            assert row is not None
            return self._same_content(relpath, row.sha256, ctime_ns)
        return change is not Change.SEND

    def _same_content(self, relpath: str, recorded: str | None, ctime_ns: int) -> bool:
        """A sent file whose ctime moved with its size and mtime kept: a chmod (the same bytes:
        remember the new ctime) or a rewrite with the mtime put back (send it again)."""
        algorithm = "sha512" if len(recorded or "") == 128 else "sha256"  # openmsistream's: SHA-512
        try:
            _, digest = hash_file(self.root / relpath, algorithm)
        except SourceFileError:
            return True  # unreadable now: looked at again when its ctime next moves
        if digest.hex() == recorded:
            self._writes.attempt(lambda ledger: ledger.set_ctime(relpath, ctime_ns))
            return True
        logger.info("file rewritten with its size and mtime kept; sending it again file=%s", shown(relpath))
        return False

    def _requeue_unfinished(self) -> None:
        for row in self._ledger.unfinished():
            path = self.root / row.relpath
            logger.info("resuming file interrupted by a stop or crash file=%s", row.relpath)
            grown = self._live.matches(row.relpath)  # a live file is closed once it settles
            self._enqueue(ReadyFile(path, row.relpath, row.size, row.mtime_ns, row.ctime_ns or 0, grown))

    def _on_skipped(self, relpath: str, why: str) -> None:
        """Shown by `status` with its reason: `failed` for a name that cannot travel (under
        its escaped form if it is not UTF-8), `skipped` for a link or a special file."""
        key = relpath if _storable(relpath) else shown(relpath, 4096)
        state = UploadState.SKIPPED if name_refusal(relpath) is None else UploadState.FAILED
        self._ledger.set(key, 0, 0, state, reason=why)

    def _enqueue(self, ready: ReadyFile) -> None:
        if not self._writes.attempt(lambda ledger: ledger.set(*_version(ready), UploadState.QUEUED)):
            self._park(ready)
            return
        while not self.stop.is_set():
            try:
                self._queue.put(ready, timeout=0.5)
                return
            except queue.Full:
                continue

    def _send_loop(self) -> None:
        while not self.stop.is_set():
            try:
                ready = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            self._send(ready)

    def _park(self, ready: ReadyFile) -> None:
        """The ledger cannot record `ready` now: queued again once it can (`_catch_up`)."""
        with self._lock:
            self._parked[ready.relpath] = ready

    def _catch_up(self) -> None:
        """Once the state folder takes writes again: what waited is written, parked files queued."""
        if not self._writes.catch_up():
            return
        with self._lock:
            parked, self._parked = self._parked, {}
        for ready in parked.values():
            self._enqueue(ready)

    def _send(self, ready: ReadyFile) -> None:
        if not self._writes.attempt(lambda ledger: ledger.set(*_version(ready), UploadState.SENDING)):
            self._park(ready)
            return
        with self._lock:
            self.sending.add(ready.relpath)
        if self._live.matches(ready.relpath):
            self._send_live(ready)
            return
        relpath = ready.relpath

        def on_checkpoint(checkpoint: Checkpoint) -> None:
            self._writes.attempt(lambda ledger: ledger.save_checkpoint(relpath, checkpoint))
            done = min(checkpoint.size, checkpoint.acked * checkpoint.chunk_size)
            if done < checkpoint.size:
                with self._lock:
                    self._acked[relpath] = (done, checkpoint.size)

        try:
            with self.in_flight.sending():
                self._sender.send(
                    SourceFile(ready.path, relpath, self._watcher.tree),
                    self._on_done,
                    resume=self._ledger.checkpoint(relpath),
                    on_checkpoint=on_checkpoint,
                )
        except SourceFileError as exc:
            self._on_error(ready, exc)
        finally:
            with self._lock:
                self.sending.discard(ready.relpath)
                if not self.in_flight.count:
                    self._acked.clear()

    def _send_live(self, ready: ReadyFile) -> None:
        """A live file: what it gained is sent; once settled, its send is closed."""
        source = SourceFile(ready.path, ready.relpath, self._watcher.tree)
        try:
            with self.in_flight.sending():
                closing = self._live.handle(source, close=not ready.grown, on_done=self._on_done)
                if not closing:
                    self.in_flight.done()  # only a closing mark ends in `_on_done`
        except SourceFileError as exc:
            self._on_error(ready, exc)
        finally:
            with self._lock:
                self.sending.discard(ready.relpath)

    def _save_live_point(self, relpath: str, point: LivePoint | None) -> None:
        if point is None:
            self._writes.attempt(lambda ledger: ledger.drop_live_point(relpath))
        else:
            self._writes.attempt(lambda ledger: ledger.save_live_point(relpath, point))

    def _on_error(self, ready: ReadyFile, exc: SourceFileError) -> None:
        if self._abort.is_set():
            logger.info("file checkpointed, sent again on restart file=%s", ready.relpath)
            return  # stays `sending` in the ledger
        skipped = self._watcher.skipped(str(ready.path))
        if skipped is not None:  # swapped for a link, say, while it was read: nothing leaked
            logger.debug("file not sent file=%s reason=%s", shown(ready.relpath), shown(exc))
            self._on_skipped(ready.relpath, skipped)
            return
        with self._lock:
            failures = self._failures[ready.relpath] = self._failures.get(ready.relpath, 0) + 1
        delay = retry_delay(failures)
        renamed = self._watcher.renamed_to(str(ready.path))
        if renamed is not None:  # a temporary name put in place: the new name is sent
            logger.debug(
                "file renamed before it was sent file=%s to=%s", shown(ready.relpath), shown(renamed)
            )
        elif not os.path.lexists(ready.path):
            logger.warning("file vanished before it could be sent file=%s", shown(ready.relpath))
        else:
            logger.error(
                "file not sent file=%s reason=%s retry=on change or in %gs",
                shown(ready.relpath),
                shown(exc),
                delay,
            )
        retry_at = time.time() + delay
        self._writes.must(
            lambda ledger: ledger.set(
                *_version(ready),
                UploadState.FAILED,
                reason=str(exc),
                ctime_ns=ready.ctime_ns,
                retry_at=retry_at,
            )
        )
        self._count("failed")
        with self._lock:
            self._acked.pop(ready.relpath, None)

    def _on_done(self, sent: SentFile, error: str | None) -> None:
        relpath = sent.source.relpath
        if error is None:
            self._retries.succeeded(relpath)
            with self._lock:
                self._failures.pop(relpath, None)
            self._writes.must(
                lambda ledger: ledger.set(
                    relpath,
                    sent.size,
                    sent.mtime_ns,
                    UploadState.SENT,
                    sha256=sent.sha256,
                    ctime_ns=sent.ctime_ns,
                    file_id=sent.file_id,
                )
            )
            # Counted sent and no longer in progress in one step, before its line is logged:
            # a snapshot never shows it both ways (its bytes twice) or as unsent after the line.
            self._count("sent", sent.size, done=relpath)
            log_sent(sent)
            if self._on_sent is not None:
                self._on_sent(relpath)  # receipts that came before this line apply now
        else:
            self._retry(sent, error)
            with self._lock:
                self._acked.pop(relpath, None)
        self.in_flight.done()

    def _retry(self, sent: SentFile, error: str) -> None:
        """Not acknowledged (an outage longer than message.timeout.ms, a lost network): the row
        stays `sending` (a restart resumes it) and the file is sent again after a back-off."""
        relpath = sent.source.relpath
        ready = ReadyFile(sent.source.path, relpath, sent.size, sent.mtime_ns, sent.ctime_ns)
        delay = self._retries.add(relpath, ready)
        reason = f"not acknowledged, sent again in {delay:g} s: {error}"
        self._writes.must(lambda ledger: ledger.set(*_version(ready), UploadState.SENDING, reason=reason))
        self._count("retried")
        logger.error("file not acknowledged file=%s retry_in=%gs reason=%s", shown(relpath), delay, error)

    def _count(self, outcome: str, nbytes: int = 0, done: str | None = None) -> None:
        """`done`: a file whose progress ends with this count."""
        with self._lock:
            self.session[outcome] += 1
            self.session["bytes"] += nbytes
            if done is not None:
                self._acked.pop(done, None)

    def _drain(self, senders: list[threading.Thread]) -> None:
        self.stop.set()
        deadline = time.monotonic() + self._options.drain_seconds
        for thread in senders:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in senders):
            logger.warning(
                "files still being read after %gs; checkpointing them", self._options.drain_seconds
            )
            self._abort.set()
            for thread in senders:
                thread.join()

    def _flush(self) -> None:
        self.in_flight.flush(self._producer)


def _storable(relpath: str) -> bool:
    try:
        relpath.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
