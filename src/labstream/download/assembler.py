"""Chunks in, verified files out; one assembler per consumer thread."""

from __future__ import annotations

import enum
import itertools
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from labstream.download.durability import flush_files, flush_folders
from labstream.download.ledger import Ledger
from labstream.download.partial import PartialFile
from labstream.download.placement import STATE_DIRNAME, target_path
from labstream.errors import ChecksumError, OutputError, UnsafePathError, WireError
from labstream.kafka import Record
from labstream.wire import Chunk, decode
from labstream.wire.chunk import decrypt
from labstream.wire.crypto import PayloadCipher

__all__ = ["DONE_STATUSES", "Assembler", "DoneFile", "Outcome"]

logger = logging.getLogger(__name__)
FileKey = tuple[str, bytes, int]
# (relative path, SHA-256, size, "verified" | "failed", reason): what receipts are made of.
OnVerdict = Callable[[str, bytes, int, str, str], None]
_counter = itertools.count()
# Ledger statuses of files a processor has finished with (see labstream.process).
DONE_STATUSES = ("processed", "process-failed")


@dataclass(frozen=True)
class DoneFile:
    """A file verified and in place: what processors are handed."""

    relpath: str
    path: Path
    digest: bytes
    hash_name: str
    size: int
    key_size: int  # the size the sender announced (-1 for openmsistream): the ledger key


class Outcome(enum.Enum):
    INCOMPLETE = "incomplete"
    COMPLETE = "complete"
    DUPLICATE = "duplicate"
    FAILED = "failed"
    REJECTED = "rejected"


class Assembler:
    """Reassembles files in `out_dir`; temporary files live in its state folder."""

    def __init__(
        self,
        out_dir: Path,
        ledger: Ledger,
        on_verdict: OnVerdict | None = None,
        cipher: PayloadCipher | None = None,
    ) -> None:
        self._cipher = cipher
        self.out_dir = out_dir
        self._ledger = ledger
        self._on_verdict = on_verdict or (lambda *_: None)
        self._work = out_dir / STATE_DIRNAME / "partial" / f"{os.getpid()}-{next(_counter)}"
        self._failed_dir = out_dir / STATE_DIRNAME / "failed"
        self._work.mkdir(parents=True, exist_ok=True)
        self._files: dict[FileKey, PartialFile] = {}
        self._failed: set[FileKey] = set()
        self._ready: list[tuple[PartialFile, Path]] = []

    def add(self, record: Record) -> Outcome:
        """Place one message; the outcome says what became of it.

        A file whose last chunk arrives is verified at once (COMPLETE) and moved into
        place by the next `commit()`, together with the others of the same batch.
        """
        try:
            chunk = decrypt(decode(record.value), self._cipher)
        except ChecksumError as exc:  # and DecryptionError: no/wrong key, altered, plaintext
            if self._cipher is not None and exc.key in self._files:
                # Unauthenticated, so it cannot speak for the authentic file it names.
                return self._reject(record, str(exc))
            return self._fail(exc.key, str(exc), record)
        except WireError as exc:
            return self._reject(record, str(exc))
        if chunk.key in self._failed and chunk.index != 0:
            return Outcome.DUPLICATE  # rest of a file already set aside
        if self._mixed(chunk):
            return self._reject(record, f"{chunk.path}: chunk {chunk.index + 1} of another send")
        stale = self._stale(chunk)
        if stale is not None:
            return self._fail(chunk.key, stale, record)
        self._failed.discard(chunk.key)
        partial = self._files.get(chunk.key)
        if partial is None:
            if self._already_done(chunk):
                return Outcome.DUPLICATE
            temp = self._work / f"{chunk.file_digest.hex()[:16]}-{next(_counter)}.part"
            partial = self._files[chunk.key] = PartialFile(chunk, temp)
        if not partial.add(chunk, record.topic, record.partition, record.offset):
            return Outcome.DUPLICATE
        return self._finish(partial) if partial.complete else Outcome.INCOMPLETE

    def _reject(self, record: Record, reason: str) -> Outcome:
        logger.error(
            "message rejected topic=%s partition=%d offset=%d reason=%s",
            record.topic,
            record.partition,
            record.offset,
            reason,
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
        logger.warning("file sent again before it was complete, starting over file=%s", chunk.path)
        partial.discard()
        del self._files[chunk.key]
        return False

    def _stale(self, chunk: Chunk) -> str | None:
        """Why `chunk` may not be placed: a version older than the newest one held for its
        path (in the ledger or about to be committed). So an old but authentic version,
        replayed, never replaces a newer one."""
        if self._cipher is None:
            return None  # nothing is authenticated, version times included
        ready = (p.version_ns for p, _ in self._ready if p.path == chunk.path)
        held = max(self._ledger.newest_version(chunk.path), *ready, 0)
        if chunk.version_ns >= held:
            return None
        return (
            f"{chunk.path}: chunk {chunk.index + 1}/{chunk.n_chunks}: version time {chunk.version_ns} "
            f"is older than the version held ({held}): a replay, or the sender's clock went back"
        )

    def held_offsets(self) -> dict[tuple[str, int], int]:
        """Per partition, the first offset of a file still incomplete: commits stop there."""
        held: dict[tuple[str, int], int] = {}
        for partial in self._files.values():
            for tp, offset in partial.first_offsets.items():
                held[tp] = min(offset, held.get(tp, offset))
        return held

    def incomplete(self) -> list[tuple[str, int, int]]:
        return [(p.path, len(p.received), p.n_chunks) for p in self._files.values()]

    def drop_partitions(self, partitions: list[tuple[str, int]]) -> None:
        """Forget files that had chunks in revoked partitions; their new owner re-reads them."""
        lost = set(partitions)
        for key, partial in list(self._files.items()):
            if lost & partial.first_offsets.keys():
                partial.discard()
                del self._files[key]

    def close(self) -> None:
        for path, have, total in self.incomplete():
            logger.warning("incomplete file left for the next run file=%s chunks=%d/%d", path, have, total)
        for partial in self._files.values():
            partial.discard()
        self._files.clear()
        shutil.rmtree(self._work, ignore_errors=True)

    def _already_done(self, chunk: Chunk) -> bool:
        status = self._ledger.status(*chunk.key)
        if status in DONE_STATUSES:
            return True  # handed to a processor: done whether or not the file is still here
        if status != "verified":
            return False
        try:
            return target_path(self.out_dir, chunk.path).exists()
        except UnsafePathError:
            return False

    def commit(self) -> list[DoneFile]:
        """Flush verified files to disk, rename them into place, record them, release offsets.

        On `OutputError` (full disk, ...) nothing is lost: the files stay ready and the
        offsets held, and calling `commit` again carries on.
        """
        if not self._ready:
            return []
        flush_files([p.temp_path for p, _ in self._ready if p.temp_path.exists()], self._work)
        for partial, target in self._ready:
            if not partial.temp_path.exists() and target.exists():
                continue  # renamed by an earlier attempt
            try:
                os.replace(partial.temp_path, target)
            except OSError as exc:
                raise OutputError(f"cannot move {partial.path} into place: {exc.strerror or exc}") from exc
        ready, self._ready = self._ready, []
        flush_folders(target.parent for _, target in ready)
        self._ledger.record_many([(p.path, p.sha256, p.size, "verified", "", p.version_ns) for p, _ in ready])
        for partial, _ in ready:
            del self._files[partial.key]
            logger.info(
                "file verified file=%s size=%d sha256=%s", partial.path, partial.size, partial.sha256.hex()
            )
            self._on_verdict(partial.path, partial.sha256, partial.size, "verified", "")
        return [
            DoneFile(p.path, target, p.sha256, p.hash_name, target.stat().st_size, p.size)
            for p, target in ready
        ]

    def _finish(self, partial: PartialFile) -> Outcome:
        reason = partial.verify()
        if reason is not None:
            return self._set_aside(partial, reason)
        try:
            target = target_path(self.out_dir, partial.path)
        except UnsafePathError as exc:
            return self._set_aside(partial, str(exc))
        self._ready.append((partial, target))
        return Outcome.COMPLETE

    def _fail(self, key: FileKey, reason: str, record: Record) -> Outcome:
        logger.error(
            "chunk rejected topic=%s partition=%d offset=%d reason=%s",
            record.topic,
            record.partition,
            record.offset,
            reason,
        )
        partial = self._files.get(key)
        if partial is not None:
            return self._set_aside(partial, reason)
        if self._ledger.status(*key) == "verified":
            return Outcome.DUPLICATE  # a damaged extra copy of a file already verified
        self._failed.add(key)
        self._ledger.record(key[0], key[1], key[2], "failed", reason)
        self._on_verdict(key[0], key[1], key[2], "failed", reason)
        return Outcome.FAILED

    def _set_aside(self, partial: PartialFile, reason: str) -> Outcome:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        safe_name = partial.path.replace("/", "__")[-120:]
        aside = self._failed_dir / f"{stamp}-{partial.sha256.hex()[:12]}-{safe_name}"
        self._failed_dir.mkdir(parents=True, exist_ok=True)
        os.replace(partial.temp_path, aside)
        del self._files[partial.key]
        self._failed.add(partial.key)
        self._ledger.record(partial.path, partial.sha256, partial.size, "failed", reason)
        logger.error(
            "file failed verification, kept aside file=%s reason=%s kept=%s", partial.path, reason, aside
        )
        self._on_verdict(partial.path, partial.sha256, partial.size, "failed", reason)
        return Outcome.FAILED
