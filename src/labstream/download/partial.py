"""One file being reassembled: a temporary file, the byte ranges it has, a running hash.

The first chunk fixes the file's layout (chunk size, number of chunks, and the size when
known); every later chunk must fit it (`GeometryError` otherwise), so every offset is
bounded by the file's size, which `Limits.max_file_size` bounds. A file is complete only
when every byte came from a received payload: holes are never hashed.
"""

from __future__ import annotations

import hashlib
import os
import threading
from bisect import bisect_left, bisect_right
from pathlib import Path

from labstream.download.durability import WRITEBACK_BYTES, start_writeback
from labstream.errors import GeometryError
from labstream.hashing import HashPipe
from labstream.wire import Chunk

__all__ = ["BLOCK", "MAX_RANGES", "HashInterrupted", "PartialFile", "RangeSet"]

READ_SIZE = 1 << 20
BLOCK = 4096  # what a partial file costs on disk at least, per separate range
MAX_RANGES = 1 << 16  # separate byte ranges one file may have before it counts as scattered
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0)


class HashInterrupted(Exception):
    """Hashing stopped because the downloader is stopping; the file stays incomplete."""


class RangeSet:
    """Disjoint, merged [start, end) ranges in two sorted lists of ints: compact when in order."""

    __slots__ = ("_ends", "_starts", "total")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        self.total = 0

    def __len__(self) -> int:
        return len(self._starts)

    def covers(self, start: int, end: int) -> bool:
        i = bisect_right(self._starts, start) - 1
        return i >= 0 and self._ends[i] >= end

    def overlaps(self, start: int, end: int) -> bool:
        i = bisect_right(self._starts, start) - 1
        if i >= 0 and self._ends[i] > start:
            return True
        return i + 1 < len(self._starts) and self._starts[i + 1] < end

    def add(self, start: int, end: int) -> None:
        """Add a range that overlaps none already here."""
        i = bisect_left(self._starts, start)
        joins_prev = i > 0 and self._ends[i - 1] == start
        joins_next = i < len(self._starts) and self._starts[i] == end
        if joins_prev and joins_next:
            self._ends[i - 1] = self._ends[i]
            del self._starts[i], self._ends[i]
        elif joins_prev:
            self._ends[i - 1] = end
        elif joins_next:
            self._starts[i] = start
        else:
            self._starts.insert(i, start)
            self._ends.insert(i, end)
        self.total += end - start


class PartialFile:
    """Chunks land at their offsets; the hash runs along while chunks arrive in order."""

    def __init__(
        self, first: Chunk, temp_path: Path, max_file_size: int, now: float, hashing: HashPipe | None = None
    ) -> None:
        self._hashing = hashing
        self.key = first.key
        self.path = first.path
        self.size = first.file_size  # the announced size, -1 for openmsistream: the ledger key
        self.sha256 = first.file_digest  # wire v2: b"" until the last chunk brings it
        self.wire_version = first.wire_version
        self.n_chunks = first.n_chunks
        self.hash_name = first.hash_name
        self.version_ns = first.version_ns
        self.source = first.source  # the sending instrument ("" none)
        self.file_id = first.file_id  # wire v2: the send's id (b"" otherwise)
        self.stored = first.path  # where it goes: decided when it is complete (download.owners)
        self.conflict = ""  # why it is stored elsewhere than its path (another source has it)
        self.temp_path = temp_path
        self.touched = now
        self.first_offsets: dict[tuple[str, int], int] = {}
        self._chunk_size, self._expected = _layout(first)
        smallest = (
            self._expected if self._expected is not None else (self.n_chunks - 1) * self._chunk_size + 1
        )
        if smallest > max_file_size:
            raise GeometryError(f"file of {smallest} bytes or more is over the limit of {max_file_size}")
        self._ranges = RangeSet()
        self._got_empty = False
        self._place(first)  # a first chunk that does not fit itself costs nothing more
        self._hasher: hashlib._Hash | None = hashlib.new(first.hash_name)
        self._hashed_to = 0
        self._writeback_from = 0  # bytes before this were handed to the disk's writeback

    @property
    def complete(self) -> bool:
        if self._expected is None or self._ranges.total != self._expected or not self.sha256:
            return False
        return self._expected > 0 or self._got_empty

    @property
    def verdict_key(self) -> tuple[str, bytes, int] | None:
        """(path, digest, size) for the ledger and receipts; None while the digest is unknown
        (wire v2 before its last chunk): a verdict needs the digest senders know."""
        return (self.path, self.sha256, self.size) if self.sha256 else None

    @property
    def sent_as(self) -> str:
        """The path it was sent as, when it is stored under another name (another source
        holds its path); "" when stored where it was sent."""
        return self.path if self.stored != self.path else ""

    @property
    def stored_as(self) -> str:
        """Where it is stored, when that is not the path it was sent as; else ""."""
        return self.stored if self.stored != self.path else ""

    @property
    def received_bytes(self) -> int:
        return self._ranges.total

    @property
    def disk_bytes(self) -> int:
        """What the temporary file costs at most, in whole blocks."""
        return BLOCK * (1 + len(self._ranges) + self._ranges.total // BLOCK)

    def add(self, chunk: Chunk, topic: str, partition: int, offset: int, now: float) -> bool:
        """Write a chunk; False if its bytes were already here (a harmless duplicate).

        `GeometryError` if the chunk does not fit the file's layout; `OSError` as raised.
        """
        start, end = self._place(chunk)
        tp = (topic, partition)
        self.first_offsets[tp] = min(offset, self.first_offsets.get(tp, offset))
        if self._got_empty if start == end else self._ranges.covers(start, end):
            return False
        if self._ranges.overlaps(start, end):
            raise GeometryError(f"chunk {chunk.index + 1}/{self.n_chunks} overlaps bytes already received")
        if len(self._ranges) >= MAX_RANGES:
            raise GeometryError(f"chunks too scattered (more than {MAX_RANGES} separate ranges)")
        # The temporary name is new to this run, so creating without truncating is safe;
        # the first chunk (often the only one) creates the file in the same call.
        fd = os.open(self.temp_path, _WRITE_FLAGS, 0o644)
        try:
            _write_all(fd, chunk.data, start)
            # A small file's writeback starts with its flush, as soon as it is verified.
            tail = chunk.index == self.n_chunks - 1 and 0 < self._writeback_from < end
            if end - self._writeback_from >= WRITEBACK_BYTES or tail:
                start_writeback(fd, self._writeback_from, end - self._writeback_from)
                self._writeback_from = end
        finally:
            os.close(fd)
        if start == end:
            self._got_empty = True
        else:
            self._ranges.add(start, end)
        if chunk.index == self.n_chunks - 1:
            self._expected = end
            if chunk.wire_version == 2:
                self.sha256 = chunk.file_digest  # from the payload-bearing chunk that was placed
        self.touched = now
        if self._hasher is not None:
            if start == self._hashed_to:
                if self._hashing is not None:
                    last = self.complete  # verified next: nothing to overlap the hash with
                    self._hashing.update(self._hasher, chunk.data, last=last)
                else:
                    self._hasher.update(chunk.data)
                self._hashed_to = end
            else:
                self._hasher = None  # out of order: hash the whole file at the end
        return True

    def verify(self, stop: threading.Event | None = None) -> str | None:
        """None if size and digest match the sender's; otherwise the reason.

        `HashInterrupted` if `stop` is set while hashing from disk.
        """
        if self._hasher is not None:  # every byte hashed as it was written: no stat, no read
            if self._hashing is not None:
                self._hashing.wait()
            digest = self._hasher.digest()
        else:
            actual_size = os.stat(self.temp_path).st_size
            if actual_size != self._expected:
                return f"size {actual_size} != {self._expected} received"
            digest = self._hash_from_disk(stop)
        if digest != self.sha256:
            return f"{self.hash_name} {digest.hex()} != {self.sha256.hex()} announced"
        return None

    def discard(self) -> None:
        self.temp_path.unlink(missing_ok=True)

    def _place(self, chunk: Chunk) -> tuple[int, int]:
        """The byte range of `chunk` in the file; `GeometryError` if it does not fit."""
        where = f"chunk {chunk.index + 1}/{chunk.n_chunks}"
        size = self._chunk_size
        if chunk.n_chunks != self.n_chunks or (chunk.file_size >= 0 and chunk.chunk_size != size):
            raise GeometryError(f"{where} has another layout than the file's first chunk")
        if chunk.source != self.source:
            raise GeometryError(f"{where} names another source than the file's first chunk")
        if not 0 <= chunk.index < self.n_chunks or chunk.offset != chunk.index * size:
            raise GeometryError(f"{where} at offset {chunk.offset} does not fit chunks of {size} bytes")
        length = len(chunk.data)
        last = chunk.index == self.n_chunks - 1
        if self._expected is not None and last:
            fits = length == self._expected - chunk.offset
        else:
            fits = length == size if not last else 0 < length <= size
        if not fits:
            raise GeometryError(f"{where} has {length} bytes, which does not fit the file's layout")
        return chunk.offset, chunk.offset + length

    def _hash_from_disk(self, stop: threading.Event | None) -> bytes:
        digest = hashlib.new(self.hash_name)
        with open(self.temp_path, "rb") as handle:
            while block := handle.read(READ_SIZE):
                if stop is not None and stop.is_set():
                    raise HashInterrupted(self.path)
                digest.update(block)
        return digest.digest()


def _layout(first: Chunk) -> tuple[int, int | None]:
    """(chunk size, file size or None until the last chunk) that `first` implies."""
    if first.file_size >= 0:  # labstream's format says both
        return first.chunk_size, first.file_size
    # openmsistream gives an offset, a chunk number and the data: all chunks but the last
    # have one size, and each sits at (number - 1) * that size.
    n, index, length = first.n_chunks, first.index, len(first.data)
    if n == 1:
        return max(1, length), length
    if index < n - 1:
        if length == 0:
            raise GeometryError(f"chunk {index + 1}/{n} is empty")
        return length, None
    if first.offset % index or first.offset == 0:
        raise GeometryError(f"last chunk {n}/{n} at offset {first.offset} fits no chunk size")
    return first.offset // index, None


def _write_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """Write all of `data` at `offset`: one pwrite where there is one (no seek first)."""
    view = memoryview(data)
    if not hasattr(os, "pwrite"):  # Windows
        os.lseek(fd, offset, os.SEEK_SET)
    while view:
        written = os.pwrite(fd, view, offset) if hasattr(os, "pwrite") else os.write(fd, view)
        view, offset = view[written:], offset + written
