"""Resumable sends (wire v2): how far one send got, kept so that a restart continues it.

A send is checkpointed with its file id and the number of chunks acknowledged **from the
first on without a gap** (the acknowledged prefix): every few MiB or every second, from the
delivery reports, never per chunk. After a crash (`kill -9`), a stop or an outage, the
sender re-reads that prefix only to rebuild the SHA-256 state, and produces the rest under
the **same** file id, so receivers finish the file they are holding: chunks they already
have are duplicates. A checkpoint is used only if the file's size, mtime_ns and ctime_ns
are unchanged, the chunk size and wire format are the same, and it is younger than
`MAX_RESUME_AGE`; otherwise the file is sent again from the start under a new id.

Why the age limit: a downloader gives up a file that receives no chunk for its
`incomplete_timeout` (an hour by default) and then drops the rest of that send. A
continuation older than that could complete nowhere, so past half of it, the whole file
is sent again instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from labstream.errors import LabstreamError

__all__ = [
    "CHECKPOINT_BYTES",
    "CHECKPOINT_SECONDS",
    "MAX_RESUME_AGE",
    "AckedPrefix",
    "Checkpoint",
    "LivePoint",
    "OnCheckpoint",
]

logger = logging.getLogger(__name__)

# A lost checkpoint costs at most this much sent again; a ledger write per 16 MiB is nothing.
CHECKPOINT_BYTES = 16 << 20
CHECKPOINT_SECONDS = 1.0
# Half of the downloader's default incomplete_timeout (labstream.download.limits).
MAX_RESUME_AGE = 1800.0


@dataclass(frozen=True)
class LivePoint:
    """How far a live send (labstream.upload.live) got: acknowledged up to its last mark."""

    file_id: bytes
    version_ns: int
    chunk_size: int
    sent: int  # bytes [0, sent) produced, marked and acknowledged
    sha256: bytes  # their SHA-256: a restart re-hashes them once and compares
    seq: int  # the number of the send's next message
    at: float  # time.time() when it was written


@dataclass(frozen=True)
class Checkpoint:
    """One send of one file version, and how many of its first chunks were acknowledged."""

    file_id: bytes
    wire: str
    chunk_size: int
    acked: int  # chunks 0 .. acked-1 are all acknowledged
    size: int
    mtime_ns: int
    ctime_ns: int
    version_ns: int
    at: float  # time.time() when it was written

    def fits(self, wire: str, chunk_size: int, state: tuple[int, int, int], now: float) -> str | None:
        """None if this send can be continued now; otherwise why not."""
        if (self.wire, self.chunk_size) != (wire, chunk_size):
            return "the wire format or chunk size changed"
        if (self.size, self.mtime_ns, self.ctime_ns) != tuple(state):
            return "the file changed"
        if not 0 <= now - self.at <= MAX_RESUME_AGE:
            return f"the checkpoint is older than {MAX_RESUME_AGE:g} s"
        return None


OnCheckpoint = Callable[[Checkpoint], None]


class AckedPrefix:
    """Tracks the acknowledged prefix of one send from its delivery reports (any thread) and
    hands a checkpoint to `on_checkpoint` every `every_bytes` or `every_seconds` of progress.

    A checkpoint that cannot be written is logged and skipped: it only means more of the
    file is sent again after a crash, never that anything is lost.
    """

    def __init__(
        self,
        start: Checkpoint,
        on_checkpoint: OnCheckpoint,
        *,
        every_bytes: int = CHECKPOINT_BYTES,
        every_seconds: float = CHECKPOINT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._saved = start
        self._prefix = start.acked
        self._beyond: set[int] = set()  # acknowledged, but after a gap
        self._on_checkpoint = on_checkpoint
        self._every_chunks = max(1, every_bytes // start.chunk_size)
        self._every_seconds = every_seconds
        self._clock = clock
        self._last = clock()

    @property
    def prefix(self) -> int:
        with self._lock:
            return self._prefix

    def acked(self, index: int) -> None:
        """Chunk `index` was acknowledged."""
        with self._lock:
            if index < self._prefix:
                return
            self._beyond.add(index)
            while self._prefix in self._beyond:
                self._beyond.discard(self._prefix)
                self._prefix += 1
            grown = self._prefix - self._saved.acked
            if grown <= 0:
                return
            if grown < self._every_chunks and self._clock() - self._last < self._every_seconds:
                return
            # Written under the lock: checkpoints of one send reach the ledger in order.
            self._save()

    def _save(self) -> None:
        checkpoint = replace(self._saved, acked=self._prefix, at=time.time())
        self._last = self._clock()
        try:
            self._on_checkpoint(checkpoint)
        except LabstreamError as exc:
            logger.warning("checkpoint not written file_id=%s reason=%s", checkpoint.file_id.hex(), exc)
            return
        self._saved = checkpoint
