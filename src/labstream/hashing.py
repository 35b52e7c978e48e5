"""Hash large chunks on a second thread, so the thread that reads and sends (upload) or
consumes and writes (download) does only that; both sides use it.

hashlib releases the GIL on buffers over 2 KiB, so SHA-256 on this thread and the work of
the calling thread use both cores. Updates run in the order they were given; `wait` returns
once all of them are done. Small chunks, and a file's last chunk (its digest is waited for
at once, so there is nothing to overlap), are hashed inline when nothing is pending (a
thread hand-off costs more: for 2000 files of 64 KiB it was a quarter of the download's
samples), and the thread starts only with the first big chunk that is not the last.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Iterator
from typing import BinaryIO, Protocol

from labstream.loops import spawn

__all__ = ["HashPipe", "Updatable", "prefix_blocks"]

OFFLOAD_BYTES = 64 * 1024  # chunks at least this big go to the thread
MAX_PENDING = 16  # chunks queued at most (8 MiB at 512 KiB): bounds memory
_numbers = itertools.count()


class Updatable(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...


class HashPipe:
    """One background hashing thread per consumer thread; a context manager."""

    def __init__(self) -> None:
        # Made with the thread: a file sent in one chunk costs no queue and no thread.
        self._queue: queue.Queue[tuple[Updatable, bytes | memoryview] | None] | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> HashPipe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, hasher: Updatable, data: bytes | memoryview, *, last: bool = False) -> None:
        """`hasher.update(data)`, now or on the thread; `data` must not change afterwards.

        `last`: the caller waits for this hasher's digest next, so it is hashed inline."""
        # Only this (the consumer) thread adds work, so "nothing unfinished" stays true.
        idle = self._queue is None or self._queue.unfinished_tasks == 0
        if (last or len(data) < OFFLOAD_BYTES) and idle:
            hasher.update(data)
            return
        if self._queue is None:
            self._queue = queue.Queue(MAX_PENDING)
        if self._thread is None:
            self._thread = spawn(self._run, f"labstream-hash-{next(_numbers)}")
        self._queue.put((hasher, data))

    def wait(self) -> None:
        """Returns once every update given so far is done."""
        if self._queue is not None:
            self._queue.join()

    def close(self) -> None:
        if self._thread is not None and self._queue is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        work = self._queue
        assert work is not None
        while (item := work.get()) is not None:
            try:
                item[0].update(item[1])
            finally:
                work.task_done()
        work.task_done()


def prefix_blocks(handle: BinaryIO, length: int, block_size: int) -> Iterator[bytes]:
    """The first `length` bytes of `handle` (read from its start) in blocks of at most
    `block_size`; fewer if the file ends sooner: the caller counts what it got. How a live
    send's prefix is re-hashed after a restart, on either side."""
    handle.seek(0)
    left = length
    while left > 0:
        block = handle.read(min(block_size, left))
        if not block:
            return
        left -= len(block)
        yield block
