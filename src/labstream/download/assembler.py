"""Chunks in, verified files out; one assembler per consumer thread."""

from __future__ import annotations

import dataclasses
import enum
import itertools
import logging
import os
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from labstream.download.durability import GroupFlusher, flush_files, flush_folders
from labstream.download.ledger import DONE_STATUSES, FileState, Ledger
from labstream.download.limits import Limits
from labstream.download.live import LiveFile, LiveFiles
from labstream.download.lookahead import Lookahead
from labstream.download.owners import BESIDE, Owners
from labstream.download.partial import HashInterrupted, PartialFile
from labstream.download.placement import TargetFolders, output_error, target_path
from labstream.errors import ChecksumError, GeometryError, PlacementError, UnsafePathError, WireError
from labstream.hashing import HashPipe
from labstream.kafka import Record
from labstream.logsafe import shown
from labstream.outcomes import OnLive, OnVerdict, ReceiptOutcome, Verdict
from labstream.state import OutputState
from labstream.wire import Chunk, decode
from labstream.wire.chunk import decrypt
from labstream.wire.crypto import PayloadCipher
from labstream.wire.v2 import FILE_ID_SIZE

__all__ = ["DONE_STATUSES", "Assembler", "DoneFile", "OnVerdict", "Outcome", "Verdict"]

logger = logging.getLogger(__name__)
FileKey = tuple[str, bytes, int]
_counter = itertools.count()
# Ledger statuses of files a processor has finished with (see labstream.process).
# Failed file versions remembered so the rest of their chunks are dropped quietly.
FAILED_MEMORY = 10_000
CLOSE_LOG_FILES = 20  # incomplete files named one by one at close; the rest are counted


@dataclass(frozen=True)
class DoneFile:
    """A file verified and in place: what processors are handed."""

    relpath: str  # where it is stored, relative to the output folder
    path: Path
    digest: bytes
    hash_name: str
    size: int
    key_size: int  # the size the sender announced (-1 for openmsistream): the ledger key
    source: str = ""  # the instrument that sent it ("" none)
    sent_path: str = ""  # the path it was sent as, when it is stored under another
    file_id: bytes = b""  # wire v2: the send's id

    def verdict(self, outcome: ReceiptOutcome, reason: str = "") -> Verdict:
        """A verdict on this file that names its send (the path it was sent as, source, id)."""
        sent = self.sent_path or self.relpath
        stored = self.relpath if sent != self.relpath else ""
        return Verdict(sent, self.digest, self.key_size, outcome, reason, self.source, self.file_id, stored)


class Outcome(enum.Enum):
    INCOMPLETE = "incomplete"
    COMPLETE = "complete"
    DUPLICATE = "duplicate"
    FAILED = "failed"
    REJECTED = "rejected"
    ABORTED = "aborted"  # wire v2: the sender gave the send up (its file changed while read)


class Assembler:
    """Reassembles files in `out_dir`; temporary files live in its state folder.

    What any message can cost is bounded by `limits` (see labstream.download.limits): a
    file given up (too big, a chunk that does not fit, too many or too old incomplete files,
    a name the filesystem refuses) fails alone, with a failed verdict, and releases its
    hold on the offsets. `stop` interrupts a long hash. `clock` is for tests.
    """

    def __init__(
        self,
        out_dir: Path,
        ledger: Ledger,
        on_verdict: OnVerdict | None = None,
        cipher: PayloadCipher | None = None,
        *,
        limits: Limits | None = None,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
        placement: str = BESIDE,
        owners: Owners | None = None,
        on_live: OnLive | None = None,
    ) -> None:
        """`owners`: the names taken, shared by the assemblers of one output folder (made
        here, with `placement`, when not given). `on_live` hears of each live send's verified
        prefix as it grows (outcome LIVE; never through `on_verdict`)."""
        self._limits = limits or Limits()
        self._owners = owners or Owners(out_dir, ledger, placement)
        self._stop = stop
        self._clock = clock
        self._cipher = cipher
        self.out_dir = out_dir
        self._ledger = ledger
        self._on_verdict = on_verdict or (lambda *_: None)
        self._on_live = on_live or (lambda *_: None)
        self._work = OutputState(out_dir).partial / f"{os.getpid()}-{next(_counter)}"
        self._failed_dir = OutputState(out_dir).failed
        self._work.mkdir(parents=True, exist_ok=True)
        self._files: OrderedDict[FileKey, PartialFile] = OrderedDict()  # least recently fed first
        self._disk_bytes = 0
        self._failed: OrderedDict[FileKey, None] = OrderedDict()
        self._ready: list[tuple[PartialFile, Path]] = []
        # Of the files in _ready: their verdict keys, stored paths and, per (source, path),
        # the newest version time (per-file look-ups, so a long batch does not cost its
        # length squared).
        self._ready_keys: set[tuple[str, bytes, int] | None] = set()
        self._ready_paths: set[str] = set()
        self._echoes: list[Verdict] = []  # sends of bytes waiting in this batch: verified with it
        self._ready_versions: dict[tuple[str, str], int] = {}
        self._ready_bytes = 0
        self._ready_since = 0.0  # clock time the first of _ready became ready
        self._hashing = HashPipe()  # SHA-256 of big chunks on a second core
        self._targets = TargetFolders(out_dir)  # folder checks cached for one batch
        self._flusher = GroupFlusher(self._work)  # ready files made durable while the next ones arrive
        self._live = LiveFiles(out_dir, self._work, ledger, self._owners, self._limits, self._live_failed)
        self._live_done: list[DoneFile] = []  # live files closed since the last commit
        self._lookahead = Lookahead(ledger, self._owners, cipher)

    def prepare(self, records: list[Record]) -> None:
        """Before `add` of each of `records`: decode them and ask the ledger once for what
        their files will need (labstream.download.lookahead). Optional."""
        self._lookahead.prepare(records)

    def add(self, record: Record) -> Outcome:
        """Place one message; the outcome says what became of it.

        A file whose last chunk arrives is verified at once (COMPLETE) and moved into
        place by the next `commit()`, together with the others of the same batch.
        """
        raw: Chunk | None = self._lookahead.take(record)
        try:
            chunk = raw if raw is not None else decrypt(raw := decode(record.value), self._cipher)
        except ChecksumError as exc:  # and DecryptionError: no/wrong key, altered, plaintext
            if exc.key in self._failed:
                return Outcome.DUPLICATE  # the rest of a send already failed: one verdict
            if self._cipher is not None and exc.key in self._files:
                # Unauthenticated, so it cannot speak for the authentic file it names.
                return self._reject(record, str(exc))
            return self._fail(exc.key, str(exc), record, raw.source if raw is not None else "")
        except WireError as exc:
            return self._reject(record, str(exc))
        if chunk.live:
            return self._add_live(chunk, record)
        if chunk.key in self._failed and chunk.index != 0:
            return Outcome.DUPLICATE  # rest of a file already set aside
        if chunk.aborted:
            return self._aborted(chunk)
        if self._mixed(chunk):
            return self._reject(record, f"{chunk.path}: chunk {chunk.index + 1} of another send")
        stale = self._stale(chunk)
        if stale is not None:
            return self._fail(chunk.key, stale, record, chunk.source)
        self._failed.pop(chunk.key, None)
        partial = self._files.get(chunk.key)
        if partial is None:
            if self._tail_without_start(chunk):
                return Outcome.DUPLICATE
            if self._already_done(chunk):
                return Outcome.DUPLICATE
            try:
                partial = self._start(chunk)
            except GeometryError as exc:
                return self._fail(chunk.key, str(exc), record, chunk.source)
        return self._place(partial, chunk, record)

    def _add_live(self, chunk: Chunk, record: Record) -> Outcome:
        """A message of a live send (labstream.download.live)."""
        if chunk.key in self._failed:
            return Outcome.DUPLICATE  # the rest of a send that failed
        stale = self._stale(chunk)
        if stale is not None:
            return self._fail(chunk.key, stale, record, chunk.source)
        result = self._live.add(chunk, record, self._clock())
        current = self._live.get(chunk.key)
        if current is not None:
            self._limit_files(current)
            if self._incomplete_bytes() > self._limits.max_incomplete_bytes:
                self._make_room(current)
        if result.done is not None:
            self._close_live(result.done, result.digest)
        elif result.grew is not None:
            self._on_live(_as_done(result.grew, result.digest).verdict(ReceiptOutcome.LIVE))
        return Outcome(result.outcome)

    def _close_live(self, live: LiveFile, digest: bytes) -> None:
        """A live send closed: an ordinary verified file from now on (ledger, receipt,
        processors with the next commit)."""
        done = _as_done(live, digest)
        self._ledger.record(
            live.stored,
            digest,
            done.size,
            FileState.VERIFIED,
            "",
            live.version_ns,
            "sha256",
            live.source,
            live.sent_as,
        )
        self._on_verdict(done.verdict(ReceiptOutcome.VERIFIED, live.conflict))
        self._live_done.append(done)

    def _live_failed(self, key: FileKey, reason: str, source: str, tail: Path | None) -> str:
        if tail is not None:
            self._keep_aside(key[0], key[1], tail)
        logger.error(
            "live file failed file=%s source=%s reason=%s", shown(key[0]), shown(source or "-"), shown(reason)
        )
        return self._failed_verdict(key, reason, source=source).value

    def _tail_without_start(self, chunk: Chunk) -> bool:
        """Wire v2: a chunk after the first of a send this reader holds no file for.

        A send's chunks share one key, so one partition, in order (idempotent producer),
        and offsets are never committed past the first chunk of a file in progress: its
        first chunk was read before, and the file was completed, given up or aborted since.
        It is what a resumed send produces again of a file already complete here
        (labstream.upload.resume). Started as a new file, it could never complete, would
        hold the partition's commits until `incomplete_timeout` and then fail a version
        that was verified; so it is dropped, logged at debug level.
        """
        if chunk.wire_version != 2 or chunk.index == 0:
            return False
        logger.debug(
            "chunk of a send not in progress here dropped file=%s chunk=%d/%d",
            shown(chunk.path),
            chunk.index + 1,
            chunk.n_chunks,
        )
        return True

    def _aborted(self, chunk: Chunk) -> Outcome:
        """Wire v2: the sender saw the file change while it read it; this send will never be
        complete. What arrived of it is dropped, and so is the rest."""
        partial = self._files.get(chunk.key)
        if partial is not None:
            self._forget(partial)
        self._remember_failed(chunk.key)
        live_key = (chunk.path, chunk.file_id, -1)
        if self._live.abort(chunk.path, chunk.source, chunk.file_id):  # its verified prefix stays
            self._remember_failed(live_key)
        logger.warning(
            "file changed while it was sent; the sender aborted this send file=%s source=%s",
            shown(chunk.path),
            shown(chunk.source or "-"),
        )
        return Outcome.ABORTED

    def _start(self, chunk: Chunk) -> PartialFile:
        temp = self._work / f"{chunk.key[1].hex()[:16]}-{next(_counter)}.part"
        partial = PartialFile(chunk, temp, self._limits.max_file_size, self._clock(), self._hashing)
        self._files[chunk.key] = partial
        self._disk_bytes += partial.disk_bytes
        return partial

    def _place(self, partial: PartialFile, chunk: Chunk, record: Record) -> Outcome:
        before = partial.disk_bytes
        try:
            added = partial.add(chunk, record.topic, record.partition, record.offset, self._clock())
        except GeometryError as exc:
            return self._give_up(partial, str(exc))
        except OverflowError as exc:  # an offset no filesystem takes; the limits should prevent it
            return self._give_up(partial, f"cannot write at that offset: {exc}")
        except OSError as exc:
            error = output_error(exc, f"cannot write {shown(partial.path)}", self.out_dir)
            if isinstance(error, PlacementError):
                return self._give_up(partial, str(error))
            raise error from exc
        if not added:
            return Outcome.DUPLICATE
        self._files.move_to_end(partial.key)
        self._disk_bytes += partial.disk_bytes - before
        if not partial.complete:
            self._limit_files(partial)
        if self._incomplete_bytes() > self._limits.max_incomplete_bytes:
            self._make_room(partial)
        return self._finish(partial) if partial.complete else Outcome.INCOMPLETE

    def _limit_files(self, current: PartialFile | LiveFile) -> None:
        """At most max_incomplete_files incomplete, live sends included, `current` among them:
        the least recently fed others are given up. A file complete with this chunk never
        counts, so it never makes another one give up."""
        limit = self._limits.max_incomplete_files
        if len(self._files) + len(self._live.in_progress()) <= limit:  # at most that many
            return
        others = self._others(current)
        reason = f"given up: more than {limit} files incomplete (max_incomplete_files)"
        for other in others[: max(0, len(others) + 1 - limit)]:
            self._give_up_any(other, reason)

    def _others(self, current: PartialFile | LiveFile) -> list[PartialFile | LiveFile]:
        """Files in progress other than `current`, least recently fed first."""
        partials: list[PartialFile | LiveFile] = [p for p in self._files.values() if not p.complete]
        others = partials + self._live.in_progress()
        return sorted((o for o in others if o is not current), key=lambda o: o.touched)

    def _give_up_any(self, other: PartialFile | LiveFile, reason: str) -> None:
        if isinstance(other, LiveFile):
            self._live.give_up(other, reason)
        else:
            self._give_up(other, reason)

    def _reject(self, record: Record, reason: str) -> Outcome:
        logger.error(
            "message rejected topic=%s partition=%d offset=%d reason=%s",
            record.topic,
            record.partition,
            record.offset,
            shown(reason),
        )
        return Outcome.REJECTED

    def _mixed(self, chunk: Chunk) -> bool:
        """True if `chunk` belongs to another send than its incomplete file's (another
        authenticated version time): such a chunk is not placed, so no file is ever made of
        two sends, and a replayed chunk cannot stop the current send. A first chunk with a
        later time is the same file sent again (a sender restarted): assembly starts over."""
        partial = self._files.get(chunk.key)
        if self._cipher is None or partial is None or partial.version_ns == chunk.version_ns:
            return False
        if chunk.index != 0 or chunk.version_ns < partial.version_ns:
            return True
        logger.warning("file sent again before it was complete, starting over file=%s", shown(chunk.path))
        self._forget(partial)
        return False

    def _stale(self, chunk: Chunk) -> str | None:
        """Why `chunk` may not be placed: a version older than the newest one held for its
        path (in the ledger or about to be committed). So an old but authentic version,
        replayed, never replaces a newer one."""
        if self._cipher is None:
            return None  # nothing is authenticated, version times included
        held = max(
            self._ledger.newest_version(chunk.path, chunk.source),
            self._ready_versions.get((chunk.source, chunk.path), 0),
        )
        if chunk.version_ns >= held:
            return None
        return (
            f"{chunk.path}: chunk {chunk.index + 1}/{chunk.n_chunks}: version time {chunk.version_ns} "
            f"is older than the version held ({held}): a replay, or the sender's clock went back"
        )

    def _make_room(self, current: PartialFile | LiveFile) -> None:
        """Give up the least recently fed other files until the bytes fit. `current` stays:
        its own bytes are bounded by max_file_size, which max_incomplete_bytes exceeds."""
        limit = self._limits.max_incomplete_bytes
        reason = f"given up: incomplete files over {limit} bytes (max_incomplete_bytes)"
        for other in self._others(current):
            if self._incomplete_bytes() <= limit:
                return
            self._give_up_any(other, reason)

    def _incomplete_bytes(self) -> int:
        """What files still incomplete cost on disk, about: those verified and waiting for
        their commit (bounded by the downloader's COMMIT_BYTES) do not count; of a live
        send, the bytes not verified yet (its verified prefix is in place)."""
        return self._disk_bytes - self._ready_bytes + self._live.tail_bytes()

    def expire(self) -> int:
        """Give up files that received no new chunk for `incomplete_timeout`; how many."""
        timeout = self._limits.incomplete_timeout
        deadline = self._clock() - timeout
        stale = [p for p in self._files.values() if p.touched < deadline and not p.complete]
        for partial in stale:
            self._give_up(partial, f"given up: no new chunk for {timeout:g} s (incomplete_timeout)")
        self._live.expire(deadline)
        return len(stale)

    def held_offsets(self) -> dict[tuple[str, int], int]:
        """Per partition, the first offset of a file still incomplete: commits stop there."""
        held = self._live.held_offsets()
        for partial in self._files.values():
            for tp, offset in partial.first_offsets.items():
                held[tp] = min(offset, held.get(tp, offset))
        return held

    def incomplete(self) -> list[tuple[str, int, int]]:
        """(path, bytes received, chunks) of every file in progress."""
        return [(p.path, p.received_bytes, p.n_chunks) for p in self._files.values()]

    def progress(self) -> list[tuple[str, int, int]]:
        """(path, bytes received, announced size; <= 0 unknown) of every file still arriving
        (not those verified and waiting for their commit)."""
        arriving = [(p.path, p.received_bytes, p.size) for p in self._files.values() if not p.complete]
        return arriving + self._live.progress()

    def nearly_done(self, fraction: float = 0.5) -> set[tuple[str, int]]:
        """The partitions of files in progress with more than `fraction` of their announced
        size in hand (files of unknown size never count)."""
        return {
            tp
            for p in self._files.values()
            if p.size > 0 and p.received_bytes > fraction * p.size
            for tp in p.first_offsets
        }

    def drop_partitions(self, partitions: list[tuple[str, int]]) -> None:
        """Forget files that had chunks in revoked partitions; their new owner re-reads them."""
        lost = set(partitions)
        self._live.drop_partitions(lost)
        for partial in list(self._files.values()):
            if lost & partial.first_offsets.keys():
                self._forget(partial)

    def close(self) -> None:
        left = self.incomplete()
        for path, have, total in left[:CLOSE_LOG_FILES]:
            logger.warning(
                "incomplete file left for the next run file=%s received_bytes=%d chunks=%d",
                shown(path),
                have,
                total,
            )
        if len(left) > CLOSE_LOG_FILES:
            logger.warning(
                "incomplete files left for the next run, not listed count=%d", len(left) - CLOSE_LOG_FILES
            )
        self._hashing.close()
        self._flusher.close()
        self._live.close()
        for partial in self._files.values():
            partial.discard()
        self._files.clear()
        shutil.rmtree(self._work, ignore_errors=True)

    def _already_done(self, chunk: Chunk) -> bool:
        if chunk.wire_version == 2:
            return False  # its digest comes with the last chunk: checked in _finish
        return self._done_before(chunk.path, chunk.file_digest, chunk.file_size)

    def _same_bytes_held(self, partial: PartialFile) -> str | None:
        """Wire v2: where these exact bytes, sent under this path by any source, are already
        verified or wait in this batch for their commit; None: nowhere."""
        if partial.verdict_key in self._ready_keys:
            return next(p.stored for p, _ in self._ready if p.verdict_key == partial.verdict_key)
        for stored, status in self._ledger.copies(partial.path, partial.sha256, partial.size):
            if status in DONE_STATUSES or (status == FileState.VERIFIED and self._exists(stored)):
                return stored
        return None

    def _done_before(self, path: str, digest: bytes, size: int) -> bool:
        status = self._ledger.status(path, digest, size)
        if status in DONE_STATUSES:
            return True  # handed to a processor: done whether or not the file is still here
        return status == FileState.VERIFIED and self._exists(path)

    def _exists(self, stored: str) -> bool:
        try:
            return target_path(self.out_dir, stored, create=False).exists()
        except (UnsafePathError, OSError):
            return False

    def commit(self) -> list[DoneFile]:
        """Flush verified files to disk, rename them into place, record them, release offsets.

        Their flushes began when each was verified (`GroupFlusher`): this waits for those
        still in flight and makes durable any that failed, before the first rename.

        On `OutputError` (full disk) nothing is lost: the files stay ready and the offsets
        held, and calling `commit` again carries on. A file that cannot take its name (a
        folder of that name, ...) is set aside alone.
        """
        live_done, self._live_done = self._live_done, []
        if not self._ready:
            return live_done
        self._targets.clear()  # the next batch checks its folders again
        flush_files([p.temp_path for p, _ in self._ready], self._work, self._flusher)
        for partial, target in list(self._ready):
            try:
                os.replace(partial.temp_path, target)
            except OSError as exc:
                if isinstance(exc, FileNotFoundError) and target.exists() and not partial.temp_path.exists():
                    continue  # renamed by an earlier attempt (this commit is being retried)
                error = output_error(exc, f"cannot move {shown(partial.path)} into place", self.out_dir)
                if not isinstance(error, PlacementError):
                    raise error from exc
                self._set_aside(partial, str(error))  # and out of _ready
        ready = self._ready
        flush_folders(target.parent for _, target in ready)
        self._ledger.record_many([_verified_row(p) for p, _ in ready])
        self._owners.committed([p.stored for p, _ in ready])
        # Only now: a full disk above leaves the batch ready, and the retry carries on.
        self._ready, self._ready_keys, self._ready_versions, self._ready_bytes = [], set(), {}, 0
        self._ready_paths = set()
        echoes, self._echoes = self._echoes, []
        verbose = logger.isEnabledFor(logging.INFO)
        for partial, _ in ready:
            self._release(partial)
            if verbose:
                logger.info(
                    "file verified file=%s size=%d %s=%s%s",
                    shown(partial.stored),
                    partial.received_bytes,
                    partial.hash_name,
                    partial.sha256.hex(),
                    f" source={shown(partial.source)}" if partial.source else "",
                )
            self._on_verdict(_verdict(partial, ReceiptOutcome.VERIFIED, partial.conflict))
        placed = {p.stored for p, _ in ready}
        for echo in echoes:
            if echo.stored_as in placed or echo.path in placed:
                self._on_verdict(echo)
        return live_done + [
            DoneFile(
                p.stored,
                t,
                p.sha256,
                p.hash_name,
                p.received_bytes,
                p.size,
                p.source,
                p.sent_as,
                p.file_id,
            )
            for p, t in ready
        ]

    def ready_files(self) -> int:
        """Files verified and waiting for the next `commit()`."""
        return len(self._ready)

    def ready_bytes(self) -> int:
        """Bytes of the files waiting for the next `commit()`."""
        return self._ready_bytes

    def ready_seconds(self) -> float | None:
        """How long the oldest file waiting for the next `commit()` has waited; None: none."""
        return None if not self._ready else self._clock() - self._ready_since

    def _make_ready(self, partial: PartialFile, target: Path) -> None:
        if not self._ready:
            self._ready_since = self._clock()
        self._ready_bytes += partial.received_bytes
        self._ready.append((partial, target))
        self._flusher.start(partial.temp_path)  # verified and final: durable meanwhile
        self._ready_keys.add(partial.verdict_key)
        self._ready_paths.add(partial.stored)
        sent = (partial.source, partial.path)
        self._ready_versions[sent] = max(self._ready_versions.get(sent, 0), partial.version_ns)

    def _unready(self, partial: PartialFile) -> None:
        """`partial` forgotten or set aside before its commit: it is not moved into place."""
        if partial.verdict_key not in self._ready_keys:
            return
        self._flusher.forget(partial.temp_path)
        self._ready = [(p, t) for p, t in self._ready if p is not partial]
        self._ready_keys = {p.verdict_key for p, _ in self._ready}
        self._ready_paths = {p.stored for p, _ in self._ready}
        self._ready_bytes = sum(p.received_bytes for p, _ in self._ready)
        self._ready_versions = {}
        for p, _ in self._ready:
            sent = (p.source, p.path)
            self._ready_versions[sent] = max(self._ready_versions.get(sent, 0), p.version_ns)

    def _finish(self, partial: PartialFile) -> Outcome:
        try:
            reason = partial.verify(self._stop)
        except HashInterrupted:
            return Outcome.INCOMPLETE  # stopping: the file stays held, verified next run
        if reason is not None:
            return self._set_aside(partial, reason)
        if partial.wire_version == 2:
            held_at = self._same_bytes_held(partial)
            if held_at is not None:  # the same bytes sent again (new file id): already here
                self._forget(partial)
                partial.stored = held_at
                echo = dataclasses.replace(_verdict(partial, ReceiptOutcome.VERIFIED), duplicate=True)
                if held_at in self._ready_paths:
                    self._echoes.append(echo)  # announced once that copy is in place
                else:
                    self._on_verdict(echo)
                return Outcome.DUPLICATE
        try:
            partial.stored, avoided = self._owners.resolve(partial.source, partial.path)
        except UnsafePathError as exc:
            return self._set_aside(partial, str(exc))
        if avoided is not None:
            partial.conflict = (
                f"name conflict: {partial.path} holds a file of "
                f"{avoided[0] or 'a sender without a source'}; stored as {partial.stored}"
            )
        blocking = self._ready_file_above(partial.stored)
        try:
            if blocking is not None:  # as if that file were in place already: first come wins
                raise PlacementError(
                    f"cannot make the folder for {shown(partial.stored)}: {shown(blocking)} is a file"
                )
            target = self._targets.path(partial.stored)
        except (UnsafePathError, PlacementError) as exc:
            self._owners.release(partial.stored, (partial.source, partial.path))
            return self._set_aside(partial, str(exc))
        self._make_ready(partial, target)
        return Outcome.COMPLETE

    def _ready_file_above(self, path: str) -> str | None:
        """A file waiting for this batch's commit whose name is a folder of `path` ("a" for
        "a/b"). Making that folder now would take the name from the file that came first."""
        parts = path.split("/")
        for depth in range(1, len(parts)):
            above = "/".join(parts[:depth])
            if above in self._ready_paths:
                return above
        return None

    def _fail(self, key: FileKey, reason: str, record: Record, source: str = "") -> Outcome:
        logger.error(
            "file failed file=%s source=%s reason=%s topic=%s partition=%d offset=%d",
            shown(key[0]),
            shown(source or "-"),
            shown(reason),
            record.topic,
            record.partition,
            record.offset,
        )
        partial = self._files.get(key)
        if partial is not None and partial.verdict_key in self._ready_keys and partial.complete:
            return Outcome.DUPLICATE  # a damaged extra copy of a file verified, to be committed
        if partial is not None:
            return self._set_aside(partial, reason)
        if self._ledger.status(*key) == FileState.VERIFIED:
            return Outcome.DUPLICATE  # a damaged extra copy of a file already verified
        return self._failed_verdict(key, reason, source=source)

    def _failed_verdict(
        self, key: FileKey, reason: str, verdict: FileKey | None = None, *, source: str = ""
    ) -> Outcome:
        """Remember `key` as failed; record and announce the verdict under (path, digest,
        size) `verdict`, which by default is `key` unless that holds a wire-v2 file id: a
        send whose digest never arrived is announced by its source and file id alone."""
        self._remember_failed(key)
        file_id = key[1] if len(key[1]) == FILE_ID_SIZE else b""
        if verdict is None and not file_id:
            verdict = key
        if verdict is not None:
            self._ledger.record(verdict[0], verdict[1], verdict[2], FileState.FAILED, reason, source=source)
            self._on_verdict(Verdict(*verdict, ReceiptOutcome.FAILED, reason, source, file_id))
        else:
            self._on_verdict(Verdict(key[0], b"", key[2], ReceiptOutcome.FAILED, reason, source, file_id))
        return Outcome.FAILED

    def _remember_failed(self, key: FileKey) -> None:
        self._failed[key] = None
        while len(self._failed) > FAILED_MEMORY:
            self._failed.popitem(last=False)

    def _forget(self, partial: PartialFile) -> None:
        partial.discard()
        if partial.verdict_key in self._ready_keys:
            self._owners.release(partial.stored, (partial.source, partial.path))
        self._unready(partial)
        self._release(partial)

    def _release(self, partial: PartialFile) -> None:
        """No longer held: moved into place, or its temporary file gone."""
        if self._files.get(partial.key) is partial:
            del self._files[partial.key]
            self._disk_bytes -= partial.disk_bytes

    def _give_up(self, partial: PartialFile, reason: str) -> Outcome:
        """An incomplete file that will not be finished: its bytes deleted, a failed verdict."""
        self._forget(partial)
        logger.error(
            "incomplete file given up file=%s received_bytes=%d reason=%s",
            shown(partial.path),
            partial.received_bytes,
            shown(reason),
        )
        return self._failed_verdict(partial.key, reason, partial.verdict_key, source=partial.source)

    def _keep_aside(self, path: str, tag: bytes, temp: Path) -> Path | None:
        """Move a failed file's bytes into the failed folder; where, or None if it could not."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        safe_name = path.replace("/", "__").encode()[-120:].decode("utf-8", "ignore")
        kept = self._failed_dir / f"{stamp}-{tag.hex()[:12]}-{safe_name}"
        try:
            self._failed_dir.mkdir(parents=True, exist_ok=True)
            os.replace(temp, kept)
        except OSError as exc:
            logger.warning("cannot keep a failed file aside file=%s error=%s", shown(path), exc)
            return None
        return kept

    def _set_aside(self, partial: PartialFile, reason: str) -> Outcome:
        aside = self._keep_aside(partial.path, partial.sha256 or partial.key[1], partial.temp_path)
        self._forget(partial)
        logger.error(
            "file failed verification, kept aside file=%s reason=%s kept=%s",
            shown(partial.path),
            shown(reason),
            aside,
        )
        return self._failed_verdict(partial.key, reason, partial.verdict_key, source=partial.source)


def _verdict(partial: PartialFile, outcome: ReceiptOutcome, reason: str = "") -> Verdict:
    p = partial
    return Verdict(p.path, p.sha256, p.size, outcome, reason, p.source, p.file_id, p.stored_as)


def _verified_row(p: PartialFile) -> tuple[str, bytes, int, FileState, str, int, str, str, str]:
    return (
        p.stored,
        p.sha256,
        p.size,
        FileState.VERIFIED,
        "",
        p.version_ns,
        p.hash_name,
        p.source,
        p.sent_as,
    )


def _as_done(live: LiveFile, digest: bytes) -> DoneFile:
    """A live send's verified prefix (`digest`: its SHA-256) as a file: the whole file once
    closed, for its ledger row and receipt; while it grows, for its live receipt."""
    return DoneFile(
        live.stored,
        live.target,
        digest,
        "sha256",
        live.verified,
        live.verified,
        live.source,
        live.sent_as,
        live.file_id,
    )
