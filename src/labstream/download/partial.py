"""One file being reassembled: a temporary file, the chunks it has, a running hash."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from labstream.errors import OutputError
from labstream.wire import Chunk

__all__ = ["PartialFile"]

READ_SIZE = 1 << 20
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class PartialFile:
    """Chunks land at their offsets; the hash runs along while chunks arrive in order."""

    def __init__(self, first: Chunk, temp_path: Path) -> None:
        self.key = first.key
        self.path = first.path
        self.size = first.file_size
        self.sha256 = first.file_digest
        self.n_chunks = first.n_chunks
        self.temp_path = temp_path
        self.received: set[int] = set()
        self.first_offsets: dict[tuple[str, int], int] = {}
        self.hash_name = first.hash_name
        self.version_ns = first.version_ns
        self._hasher: hashlib._Hash | None = hashlib.new(first.hash_name)
        self._hashed_to = 0

    @property
    def complete(self) -> bool:
        return len(self.received) == self.n_chunks

    def add(self, chunk: Chunk, topic: str, partition: int, offset: int) -> bool:
        """Write a chunk; False if this index was already here (a harmless duplicate)."""
        tp = (topic, partition)
        self.first_offsets[tp] = min(offset, self.first_offsets.get(tp, offset))
        if chunk.index in self.received:
            return False
        try:
            # The temporary name is new to this run, so creating without truncating is safe;
            # the first chunk (often the only one) creates the file in the same call.
            fd = os.open(self.temp_path, _WRITE_FLAGS, 0o644)
            try:
                os.lseek(fd, chunk.offset, os.SEEK_SET)
                _write_all(fd, chunk.data)
            finally:
                os.close(fd)
        except OSError as exc:
            raise OutputError(f"cannot write {self.temp_path}: {exc.strerror or exc}") from exc
        self.received.add(chunk.index)
        if self._hasher is not None:
            if chunk.offset == self._hashed_to:
                self._hasher.update(chunk.data)
                self._hashed_to += len(chunk.data)
            else:
                self._hasher = None  # out of order: hash the whole file at the end
        return True

    def verify(self) -> str | None:
        """None if size and SHA-256 match the sender's; otherwise the reason."""
        if not self.temp_path.exists():  # an empty file: nothing was written yet
            self.temp_path.touch()
        actual_size = self.temp_path.stat().st_size
        if self.size >= 0 and actual_size != self.size:  # openmsistream does not say (-1)
            return f"size {actual_size} != {self.size} announced"
        digest = self._hasher.digest() if self._hasher is not None else self._hash_from_disk()
        if digest != self.sha256:
            return f"{self.hash_name} {digest.hex()} != {self.sha256.hex()} announced"
        return None

    def discard(self) -> None:
        self.temp_path.unlink(missing_ok=True)

    def _hash_from_disk(self) -> bytes:
        digest = hashlib.new(self.hash_name)
        with open(self.temp_path, "rb") as handle:
            while block := handle.read(READ_SIZE):
                digest.update(block)
        return digest.digest()
