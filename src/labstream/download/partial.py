"""One file being reassembled: a temporary file, the chunks it has, a running hash."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from labstream.errors import OutputError
from labstream.wire import Chunk

__all__ = ["PartialFile"]

READ_SIZE = 1 << 20


class PartialFile:
    """Chunks land at their offsets; the hash runs along while chunks arrive in order."""

    def __init__(self, first: Chunk, temp_path: Path) -> None:
        self.key = first.key
        self.path = first.path
        self.size = first.file_size
        self.sha256 = first.file_sha256
        self.n_chunks = first.n_chunks
        self.temp_path = temp_path
        self.received: set[int] = set()
        self.first_offsets: dict[tuple[str, int], int] = {}
        self._hasher: hashlib._Hash | None = hashlib.sha256()
        self._hashed_to = 0
        try:
            fd = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0),
                         0o644)
        except OSError as exc:
            raise OutputError(f"cannot create {temp_path}: {exc.strerror or exc}") from exc
        os.close(fd)

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
            with open(self.temp_path, "r+b") as handle:
                handle.seek(chunk.offset)
                handle.write(chunk.data)
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
        actual_size = self.temp_path.stat().st_size
        if actual_size != self.size:
            return f"size {actual_size} != {self.size} announced"
        digest = self._hasher.digest() if self._hasher is not None else self._hash_from_disk()
        if digest != self.sha256:
            return f"sha256 {digest.hex()} != {self.sha256.hex()} announced"
        return None

    def discard(self) -> None:
        self.temp_path.unlink(missing_ok=True)

    def _hash_from_disk(self) -> bytes:
        digest = hashlib.sha256()
        with open(self.temp_path, "rb") as handle:
            while block := handle.read(READ_SIZE):
                digest.update(block)
        return digest.digest()
