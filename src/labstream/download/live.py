"""Live sends in, verified prefixes out: a growing file kept at its final path.

A live send (docs/wire-format.md, "Live files") is appended bytes at explicit offsets and,
after each appended segment, a mark with the SHA-256 of the whole prefix so far. Bytes wait
in a temporary tail until their mark matches; only then are they appended to the file at
its final path, flushed, and recorded in the ledger's `live` table. So what anyone sees
there is always exactly a prefix of what the instrument wrote, and verified. The closing
mark (LIVE_END) makes it an ordinary verified file: ledger row, receipt, processors.

Offsets are held at the first message after the last verified mark, so a restarted
downloader reads the unverified tail again and continues from the ledger's verified length
(re-hashing that prefix once). A data chunk that overlaps bytes held (a resumed sender
sending again what it was not sure of) must carry the same bytes; anything else — a gap,
different bytes, a mark that does not match — fails the send: the verified prefix stays,
the unverified tail is set aside, a failed receipt names the send.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from labstream.download.durability import flush_files, flush_folders
from labstream.download.ledger import Ledger
from labstream.download.limits import Limits
from labstream.download.owners import Owners
from labstream.download.placement import output_error, target_path
from labstream.errors import PlacementError, UnsafePathError
from labstream.hashing import prefix_blocks
from labstream.kafka import Record
from labstream.logsafe import shown
from labstream.wire import Chunk
from labstream.wire.chunk import LIVE_DATA, LIVE_END

__all__ = ["LiveFile", "LiveFiles", "LiveResult"]

logger = logging.getLogger(__name__)
FileKey = tuple[str, bytes, int]
COMPARE_BLOCK = 1 << 20  # bytes read at a time to compare a resent overlap


@dataclass
class LiveFile:
    """One live send being received."""

    key: FileKey
    source: str
    version_ns: int
    stored: str
    target: Path
    tail: Path  # bytes [verified, received) waiting for their mark
    verified: int = 0
    received: int = 0
    running: hashlib._Hash = field(default_factory=hashlib.sha256)  # at `received`
    held: dict[tuple[str, int], int] = field(default_factory=dict)  # partition -> first offset
    touched: float = 0.0
    conflict: str = ""  # why it is stored under another name than sent

    @property
    def path(self) -> str:
        return self.key[0]

    @property
    def file_id(self) -> bytes:
        return self.key[1]

    @property
    def sent_as(self) -> str:
        return self.path if self.stored != self.path else ""


@dataclass(frozen=True)
class LiveResult:
    """What a live message did: `outcome` names an assembler Outcome value; `done` is the
    file closed by a LIVE_END, `grew` one whose verified prefix grew by a mark (`digest`:
    the SHA-256 of the whole file, or of the prefix now verified)."""

    outcome: str
    done: LiveFile | None = None
    digest: bytes = b""
    grew: LiveFile | None = None


# fail(key, reason, source, tail to set aside or None) -> an Outcome value
OnFail = Callable[[FileKey, str, str, Path | None], str]


class LiveFiles:
    """The live sends of one assembler (one consumer thread)."""

    def __init__(
        self,
        out_dir: Path,
        work: Path,
        ledger: Ledger,
        owners: Owners,
        limits: Limits,
        on_fail: OnFail,
    ) -> None:
        self._out_dir = out_dir
        self._work = work
        self._ledger = ledger
        self._owners = owners
        self._limits = limits
        self._on_fail = on_fail
        self._files: dict[FileKey, LiveFile] = {}
        self._serial = 0

    def add(self, chunk: Chunk, record: Record, now: float) -> LiveResult:
        live = self._files.get(chunk.key)
        if live is None:
            try:
                live = self._open(chunk, now)
            except (UnsafePathError, PlacementError) as exc:
                return LiveResult(self._on_fail(chunk.key, str(exc), chunk.source, None))
            if live is None:
                return LiveResult("duplicate")  # a send not in progress here: nothing to extend
        live.touched = now
        if chunk.live == LIVE_DATA:
            return self._append(live, chunk, record)
        return self._mark(live, chunk, record)

    def held_offsets(self) -> dict[tuple[str, int], int]:
        held: dict[tuple[str, int], int] = {}
        for live in self._files.values():
            for tp, offset in live.held.items():
                held[tp] = min(offset, held.get(tp, offset))
        return held

    def in_progress(self) -> list[LiveFile]:
        return list(self._files.values())

    def get(self, key: FileKey) -> LiveFile | None:
        return self._files.get(key)

    def tail_bytes(self) -> int:
        """Bytes received and not verified yet (in the tails) of all live sends."""
        return sum(live.received - live.verified for live in self._files.values())

    def give_up(self, live: LiveFile, reason: str) -> None:
        """A limit of the assembler's: as a failed send (the verified prefix stays)."""
        self._fail(live, reason)

    def progress(self) -> list[tuple[str, int, int]]:
        """(stored path, bytes verified so far, -1: size unknown) of each live file."""
        return [(live.stored, live.verified, -1) for live in self._files.values()]

    def expire(self, deadline: float) -> None:
        """Live sends without a message since `deadline` fail (their sender is gone)."""
        timeout = self._limits.incomplete_timeout
        for live in [f for f in self._files.values() if f.touched < deadline]:
            self._fail(live, f"given up: no new live data for {timeout:g} s (incomplete_timeout)")

    def drop_partitions(self, partitions: set[tuple[str, int]]) -> None:
        """Forget sends with messages in revoked partitions; their new owner continues them
        from the ledger (the offsets it resumes at are those held here)."""
        for live in list(self._files.values()):
            if partitions & live.held.keys() or not live.held:
                self._forget(live)

    def abort(self, path: str, source: str, file_id: bytes) -> bool:
        """The sender gave a live send up (its file changed other than by appending): the
        verified prefix stays where it is, the rest is dropped. False: not one known here."""
        live = self._files.pop((path, file_id, -1), None)
        if live is not None:
            _remove(live.tail)
        elif self._ledger.live(path, source, file_id) is None:
            return False
        self._ledger.end_live(path, source, file_id)
        return True

    def close(self) -> None:
        for live in list(self._files.values()):
            self._forget(live)

    # -- receiving ---------------------------------------------------------------------------

    def _open(self, chunk: Chunk, now: float) -> LiveFile | None:
        row = self._ledger.live(chunk.path, chunk.source, chunk.file_id)
        if row is not None:
            return self._resume(chunk, row[0], row[1], now)
        starts = chunk.offset == 0 and chunk.live in (LIVE_DATA, LIVE_END)  # END: an empty file
        if not starts:
            return None  # its start was read before: the send completed or failed since
        stored, avoided = self._owners.resolve(chunk.source, chunk.path)
        try:
            target = target_path(self._out_dir, stored)
        except (UnsafePathError, PlacementError):
            self._owners.release(stored, (chunk.source, chunk.path))
            raise
        live = self._track(chunk, stored, target, now)
        if avoided is not None:
            live.conflict = (
                f"name conflict: {chunk.path} holds a file of "
                f"{avoided[0] or 'a sender without a source'}; stored as {stored}"
            )
        logger.info("live file started file=%s source=%s", shown(stored), shown(chunk.source or "-"))
        return live

    def _resume(self, chunk: Chunk, stored: str, verified: int, now: float) -> LiveFile | None:
        """A send this folder holds a verified prefix of (a restart): re-hash it once."""
        live = self._track(chunk, stored, target_path(self._out_dir, stored), now)
        try:
            with open(live.target, "r+b") as handle:
                if os.fstat(handle.fileno()).st_size < verified:
                    raise OSError(f"holds fewer than the {verified} bytes verified")
                handle.truncate(verified)  # bytes appended before a crash, not recorded
                hashed = 0
                for block in prefix_blocks(handle, verified, COMPARE_BLOCK):
                    live.running.update(block)
                    hashed += len(block)
                if hashed < verified:
                    raise OSError("ended before its verified length")
        except OSError as exc:
            self._fail(live, f"live file changed in the output folder: {exc}")
            return None
        live.verified = live.received = verified
        logger.info("live file continued file=%s verified_bytes=%d", shown(stored), verified)
        return live

    def _append(self, live: LiveFile, chunk: Chunk, record: Record) -> LiveResult:
        data = memoryview(chunk.data)
        start, end = chunk.offset, chunk.offset + len(data)
        if end > self._limits.max_file_size:
            return self._fail(live, f"live file over {self._limits.max_file_size} bytes (max_file_size)")
        if start > live.received:
            return self._fail(live, f"live data at {start} but only {live.received} bytes received: a gap")
        if start < live.received:
            same = self._same_as_held(live, start, data[: live.received - start])
            if not same:
                return self._fail(live, f"live data at {start} differs from the bytes received there")
            if end <= live.received:
                return LiveResult("duplicate")
            data = data[live.received - start :]
        live.held.setdefault((record.topic, record.partition), record.offset)
        try:
            with open(live.tail, "ab") as handle:
                handle.write(data)
        except OSError as exc:
            raise output_error(exc, f"cannot write {shown(live.stored)}", self._out_dir) from exc
        live.running.update(data)
        live.received += len(data)
        return LiveResult("incomplete")

    def _mark(self, live: LiveFile, chunk: Chunk, record: Record) -> LiveResult:
        length = chunk.offset
        if length <= live.verified and not (chunk.live == LIVE_END and length == live.received):
            return LiveResult("duplicate")  # a mark sent again by a resumed sender
        if length != live.received:
            return self._fail(live, f"mark of {length} bytes but {live.received} received")
        digest = live.running.copy().digest()
        if digest != chunk.file_digest:
            return self._fail(live, f"prefix of {length} bytes fails its SHA-256 (lying mark or damage)")
        self._publish(live)
        live.held.clear()
        if chunk.live != LIVE_END:
            self._ledger.set_live(
                live.path, live.source, live.file_id, live.stored, length, digest, live.version_ns
            )
            return LiveResult("incomplete", digest=digest, grew=live)
        self._ledger.end_live(live.path, live.source, live.file_id)
        del self._files[live.key]
        _remove(live.tail)
        logger.info(
            "live file closed, verified file=%s size=%d sha256=%s", shown(live.stored), length, digest.hex()
        )
        return LiveResult("complete", live, digest)

    def _publish(self, live: LiveFile) -> None:
        """Make [verified, received) visible at the final path, flushed to disk. The first
        segment is renamed into place (the file appears whole); later ones are appended."""
        try:
            live.tail.touch()  # a mark may come with no data before it (an empty file, a resume)
            if live.verified == 0:
                flush_files([live.tail], self._work)
                os.replace(live.tail, live.target)
                flush_folders([live.target.parent])
                self._owners.committed([live.stored])
                live.tail = self._new_tail()
            else:
                _append_file(live.tail, live.target, live.verified)
                os.truncate(live.tail, 0)
        except OSError as exc:
            raise output_error(exc, f"cannot write {shown(live.stored)}", self._out_dir) from exc
        live.verified = live.received

    def _same_as_held(self, live: LiveFile, start: int, data: memoryview) -> bool:
        """The bytes at [start, start + len(data)) here: the verified file, then the tail."""
        try:
            held = _read(live.target, start, min(len(data), max(0, live.verified - start)))
            rest = len(data) - len(held)
            if rest:
                held += _read(live.tail, max(start, live.verified) - live.verified, rest)
        except OSError:
            return False
        return held == data

    def _fail(self, live: LiveFile, reason: str) -> LiveResult:
        """The verified prefix stays; the unverified tail is set aside; one failed verdict."""
        self._files.pop(live.key, None)
        self._ledger.end_live(live.path, live.source, live.file_id)
        if live.verified == 0:
            self._owners.release(live.stored, (live.source, live.path))
        tail = live.tail if _size(live.tail) > 0 else None
        outcome = self._on_fail(live.key, reason, live.source, tail)
        _remove(live.tail)
        return LiveResult(outcome)

    def _forget(self, live: LiveFile) -> None:
        self._files.pop(live.key, None)
        _remove(live.tail)

    def _track(self, chunk: Chunk, stored: str, target: Path, now: float) -> LiveFile:
        live = LiveFile(chunk.key, chunk.source, chunk.version_ns, stored, target, self._new_tail())
        live.touched = now
        self._files[chunk.key] = live
        return live

    def _new_tail(self) -> Path:
        self._serial += 1
        return self._work / f"live-{self._serial}.part"


def _append_file(source: Path, target: Path, at: int) -> None:
    """Append `source` to `target` (which must hold exactly `at` bytes), then flush it. The
    bytes are copied in the kernel where it can (copy_file_range), else through a buffer."""
    flags = os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(target, flags)
    try:
        if os.fstat(fd).st_size != at:
            os.ftruncate(fd, at)  # a crash between an append and its ledger row
        with open(source, "rb") as src:
            _copy(src.fileno(), fd, os.fstat(src.fileno()).st_size, at)
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy(src: int, dst: int, length: int, at: int) -> None:
    copied = 0
    if hasattr(os, "copy_file_range"):
        try:
            while copied < length:
                step = os.copy_file_range(src, dst, length - copied, copied, at + copied)
                if step == 0:
                    break
                copied += step
        except OSError:  # a filesystem or kernel without it: the rest through a buffer
            pass
    os.lseek(src, copied, os.SEEK_SET)
    os.lseek(dst, at + copied, os.SEEK_SET)
    while block := os.read(src, COMPARE_BLOCK):
        view = memoryview(block)
        while view:
            view = view[os.write(dst, view) :]


def _read(path: Path, start: int, length: int) -> bytes:
    if length <= 0:
        return b""
    with open(path, "rb") as handle:
        handle.seek(start)
        return handle.read(length)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
