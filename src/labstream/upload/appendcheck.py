"""Telling an append from a rewrite, cheaply, for a live send (labstream.upload.live).

Before each segment a live send checks that the file still holds what it sent: not shorter,
the first and last 4 KiB sent unchanged, and a few earlier blocks still matching the short
digests kept of every 64 KiB block sent. The blocks are checked in turn (SAMPLED per
segment, round robin), so a rewrite anywhere in what was sent is found within
blocks / SAMPLED segments, and a file of up to SAMPLED blocks (256 KiB) is checked whole
each time. What it costs: at most 4 KiB + 256 KiB read per segment, 8 bytes of memory per
64 KiB sent (1.3 MB for 10 GiB).
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO

__all__ = ["BLOCK", "EDGE", "AppendCheck", "NotAnAppend"]

EDGE = 4096  # the first and last bytes sent, compared before each append
BLOCK = 64 << 10  # bytes per kept digest
SAMPLED = 4  # blocks compared per check


class NotAnAppend(Exception):
    """What changed; the caller turns it into its own error."""


class AppendCheck:
    """What a live send keeps of the bytes it sent, fed in order by `add`."""

    def __init__(self) -> None:
        self.length = 0
        self._head = b""
        self._tail = b""
        self._sums: list[bytes] = []  # digest of each whole block sent
        self._block = _block_hash()
        self._next = 0  # the block the next check starts at

    def add(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        if self.length < EDGE:
            self._head = (self._head + bytes(view[: EDGE - self.length]))[:EDGE]
        self._tail = (self._tail + bytes(view[-EDGE:]))[-EDGE:]
        while view:
            room = BLOCK - self.length % BLOCK
            self._block.update(view[:room])
            self.length += min(room, len(view))
            if self.length % BLOCK == 0:
                self._sums.append(self._block.digest())
                self._block = _block_hash()
            view = view[room:]

    def check(self, handle: BinaryIO, size: int) -> None:
        """Raise NotAnAppend if the file behind `handle` (of `size` bytes) is not what was
        sent followed by more."""
        if size < self.length:
            raise NotAnAppend(f"shrank from {self.length} to {size} bytes (truncated)")
        if self._head and _read_at(handle, 0, len(self._head)) != self._head:
            raise NotAnAppend("its first bytes changed (rewritten)")
        if self._tail and _read_at(handle, self.length - len(self._tail), len(self._tail)) != self._tail:
            raise NotAnAppend("its last bytes sent changed (rewritten)")
        for index in self._sampled():
            block = _read_at(handle, index * BLOCK, BLOCK)
            if _block_hash(block).digest() != self._sums[index]:
                raise NotAnAppend(f"bytes {index * BLOCK} to {(index + 1) * BLOCK} changed (rewritten)")

    def _sampled(self) -> list[int]:
        count = len(self._sums)
        if count <= SAMPLED:
            return list(range(count))
        picked = [(self._next + i) % count for i in range(SAMPLED)]
        self._next = (self._next + SAMPLED) % count
        return picked


def _block_hash(data: bytes = b"") -> hashlib.blake2b:
    return hashlib.blake2b(data, digest_size=8)


def _read_at(handle: BinaryIO, at: int, length: int) -> bytes:
    handle.seek(at)
    return handle.read(length)
