"""A growing file sent while it is written: one send, each appended byte read and produced once.

`LiveSend.extend()` produces what was appended since the last call as live data chunks at
explicit offsets, then a mark carrying the SHA-256 of the whole prefix so far (the hash state
is kept here, so nothing is read twice). `extend(end=True)` closes the send with the last
mark once the file has settled. Readers keep a verified prefix at the final path
(labstream.download.live; docs/wire-format.md, "Live files").

A change that is not an append (the file shrank, or its first or last block sent differs)
raises `LiveChanged`: the caller aborts this send (`abort()`, an aborted trailer) and starts
a new version. A delivery that fails does the same at the next `extend()`: a live send is
never continued past a hole. Each acknowledged mark is handed to `on_point` (the ledger),
so a restarted watcher continues the send after re-hashing that prefix once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import BinaryIO

from labstream.errors import LabstreamError, SourceFileError
from labstream.hashing import prefix_blocks
from labstream.logsafe import shown
from labstream.upload.resume import MAX_RESUME_AGE, LivePoint
from labstream.upload.sender import FileSender, OnFileDone, SentFile, _reading
from labstream.upload.source import SourceFile
from labstream.watch.filters import Filters
from labstream.wire.v2 import aborted_trailer, live_data, live_mark, new_file_id

__all__ = ["LiveChanged", "LiveSend", "LiveSends"]

logger = logging.getLogger(__name__)
EDGE = 4096  # the first and last bytes sent, compared before each append


class LiveChanged(SourceFileError):
    """The file is no longer an append of what this live send sent."""


class LiveSend:
    """One live send of `source`; `extend` is called from one thread at a time."""

    def __init__(
        self,
        sender: FileSender,
        source: SourceFile,
        *,
        resume: LivePoint | None = None,
        on_point: Callable[[LivePoint], None] | None = None,
    ) -> None:
        self._sender = sender
        self._source = source
        self._on_point = on_point
        self._chunk_size = sender.chunk_size
        self._lock = threading.Lock()
        self._failed: str | None = None  # a delivery that failed: the send cannot go on
        self.file_id, self.version_ns = new_file_id(), time.time_ns()
        self.sent, self._seq = 0, 0
        self._digest = hashlib.sha256()
        self._head, self._tail = b"", b""
        if resume is not None:
            self._continue(resume)

    @property
    def relpath(self) -> str:
        return self._source.relpath

    def extend(self, *, end: bool = False, on_done: OnFileDone | None = None) -> bool:
        """Produce the bytes appended since, then a mark; with `end`, the closing mark if the
        file did not grow meanwhile (True: closed; `on_done` fires once it is acknowledged)."""
        with self._lock:
            failed = self._failed
        if failed is not None:
            raise LiveChanged(f"{self.relpath}: live data not acknowledged: {failed}")
        start = self.sent
        with _reading(self._source) as handle:
            size = os.fstat(handle.fileno()).st_size
            self._check_append(handle, size)
            handle.seek(self.sent)
            self._produce_until(handle, size)
            closing = end and not handle.read(1)
            st = os.fstat(handle.fileno())
        if self.sent == start and not closing:
            return False  # nothing appended: no mark
        digest = self._digest.copy().digest()
        mark = live_mark(
            self.relpath,
            self.sent,
            digest,
            self._next_seq(),
            self._chunk_size,
            self.file_id,
            self.version_ns,
            self._sender.source_name,
            end=closing,
        )
        point = LivePoint(
            self.file_id, self.version_ns, self._chunk_size, self.sent, digest, self._seq, time.time()
        )
        done = None
        if closing and on_done is not None:
            sent = SentFile(
                self._source, self.sent, st.st_mtime_ns, digest, self._seq, self.file_id, st.st_ctime_ns
            )
            done = (sent, on_done)
        self._sender.produce(mark, self._on_mark(point, done))
        return closing

    def abort(self) -> None:
        """Tell readers this send will never complete (best effort)."""
        _abort(self._sender, self.relpath, self.file_id, self.version_ns)

    def _continue(self, point: LivePoint) -> None:
        """Continue an acknowledged prefix after a restart, if the file still starts with it
        (re-hashed once); else a new send, after an aborted trailer for the old one."""
        why = self._resume_refusal(point)
        if why is None:
            self.file_id, self.version_ns, self._seq = point.file_id, point.version_ns, point.seq
            logger.info("live file continued file=%s from_byte=%d", shown(self.relpath), self.sent)
            return
        logger.info("live file sent again from the start file=%s reason=%s", shown(self.relpath), why)
        _abort(self._sender, self.relpath, point.file_id, point.version_ns)  # readers drop that send
        self.sent, self._digest, self._head, self._tail = 0, hashlib.sha256(), b"", b""

    def _resume_refusal(self, point: LivePoint) -> str | None:
        if point.chunk_size != self._chunk_size:
            return "the chunk size changed"
        if time.time() - point.at > MAX_RESUME_AGE:
            return "its checkpoint is too old"
        with _reading(self._source) as handle:
            for block in prefix_blocks(handle, point.sent, self._chunk_size):
                self._digest.update(block)
                self._remember(block, self.sent)
                self.sent += len(block)
        if self.sent < point.sent:
            return "the file is shorter than what was sent"
        if self._digest.digest() != point.sha256:
            return "the bytes sent changed"
        return None

    def _check_append(self, handle: BinaryIO, size: int) -> None:
        if size < self.sent:
            raise LiveChanged(f"{self.relpath}: shrank from {self.sent} to {size} bytes (truncated)")
        if self._head and _read_at(handle, 0, len(self._head)) != self._head:
            raise LiveChanged(f"{self.relpath}: its first bytes changed (rewritten)")
        if self._tail and _read_at(handle, self.sent - len(self._tail), len(self._tail)) != self._tail:
            raise LiveChanged(f"{self.relpath}: its last bytes sent changed (rewritten)")

    def _produce_until(self, handle: BinaryIO, size: int) -> None:
        while self.sent < size:
            if self._sender.stopping:
                raise SourceFileError(f"{self.relpath}: stopped while a live segment was sent")
            block = handle.read(min(self._chunk_size, size - self.sent))
            if not block:
                break  # truncated meanwhile: seen by the next extend
            chunk = live_data(
                self.relpath,
                self.sent,
                block,
                self._next_seq(),
                self._chunk_size,
                self.file_id,
                self.version_ns,
                self._sender.source_name,
            )
            self._sender.produce(chunk, self._on_data)
            self._digest.update(block)
            self._remember(block, self.sent)
            self.sent += len(block)

    def _remember(self, block: bytes, at: int) -> None:
        if at < EDGE:
            self._head = (self._head + block[: EDGE - at])[:EDGE]
        # Only the block's own last EDGE bytes: joining the whole block copied every byte sent
        # once more (a new 516 KiB object per chunk: a fifth of the send threads' CPU time
        # for a file growing 17 MiB/s, py-spy over bench/live.py --big).
        self._tail = (self._tail + block[-EDGE:])[-EDGE:]

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq - 1

    def _on_data(self, error: str | None) -> None:
        if error is not None:
            with self._lock:
                self._failed = self._failed or error

    def _on_mark(
        self, point: LivePoint, done: tuple[SentFile, OnFileDone] | None
    ) -> Callable[[str | None], None]:
        def on_delivery(error: str | None) -> None:
            with self._lock:
                if error is not None:
                    self._failed = self._failed or error
                failed = self._failed
            if done is not None:
                done[1](done[0], None if failed is None else f"not acknowledged: {failed}")
            elif failed is None and self._on_point is not None:
                self._on_point(point)

        return on_delivery


def _abort(sender: FileSender, relpath: str, file_id: bytes, version_ns: int) -> None:
    """An aborted trailer for the live send `file_id` of `relpath` (best effort)."""
    trailer = aborted_trailer(relpath, 0, sender.chunk_size, file_id, version_ns, sender.source_name)
    try:
        sender.produce(trailer, None)
    except LabstreamError as exc:
        logger.warning("aborted trailer not sent file=%s reason=%s", shown(relpath), exc)


def _read_at(handle: BinaryIO, at: int, length: int) -> bytes:
    handle.seek(at)
    return handle.read(length)


class LiveSends:
    """The live sends of one watcher, by path. Events of one file are handled one at a time
    (grown: send what was appended; settled: close the send)."""

    def __init__(
        self,
        sender: FileSender,
        patterns: tuple[str, ...],
        load_point: Callable[[str], LivePoint | None],
        save_point: Callable[[str, LivePoint | None], None],
    ) -> None:
        self._sender = sender
        self._filters = Filters(patterns, ())
        self._load_point = load_point
        self._save_point = save_point
        self._lock = threading.Lock()
        self._sends: dict[str, LiveSend] = {}
        self._busy: dict[str, threading.Lock] = {}

    def matches(self, relpath: str) -> bool:
        return bool(self._filters.include) and self._filters.accepts(relpath)

    def progress(self) -> list[tuple[str, int]]:
        """(path, bytes produced) of every live send open in this process."""
        with self._lock:
            return [(path, send.sent) for path, send in self._sends.items()]

    def handle(self, source: SourceFile, *, close: bool, on_done: OnFileDone) -> bool:
        """Send what `source` gained; `close`: and close the send once nothing more came
        (True: closed, `on_done` fires on its acknowledgement). A file changed other than by
        appending is sent again as a new version (the old send aborted)."""
        with self._file_lock(source.relpath):
            send = self._open(source)
            try:
                closed = send.extend(end=close, on_done=on_done)
            except LiveChanged as exc:
                logger.warning(
                    "live file changed, sending it again as a new version file=%s reason=%s",
                    shown(source.relpath),
                    shown(exc),
                )
                self._drop(send, abort=True)
                send = self._open(source)
                closed = send.extend(end=close, on_done=on_done)
            except SourceFileError:
                if not self._sender.stopping:
                    self._drop(send, abort=True)  # unreadable or gone: readers drop the tail
                raise
            if closed:
                self._drop(send, abort=False)
            return closed

    def _open(self, source: SourceFile) -> LiveSend:
        with self._lock:
            send = self._sends.get(source.relpath)
        if send is not None:
            return send
        relpath = source.relpath
        send = LiveSend(
            self._sender,
            source,
            resume=self._load_point(relpath),
            on_point=lambda point: self._save_point(relpath, point),
        )
        with self._lock:
            self._sends[relpath] = send
        return send

    def _drop(self, send: LiveSend, *, abort: bool) -> None:
        if abort:
            send.abort()
        with self._lock:
            self._sends.pop(send.relpath, None)
        self._save_point(send.relpath, None)

    def _file_lock(self, relpath: str) -> threading.Lock:
        with self._lock:
            return self._busy.setdefault(relpath, threading.Lock())
