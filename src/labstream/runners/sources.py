"""`snapshot()` callables for each long-running stage, built from what it already exposes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from labstream.heartbeat.format import MAX_RECENT, MAX_TEXT, RecentFile, SendOutcome, Status
from labstream.upload.ledger import UploadLedger

if TYPE_CHECKING:
    from labstream.upload.streamer import StreamerStatus

__all__ = ["StatusSource", "counts_source", "watch_source"]

StatusSource = Callable[[], Status]


class _Streamer(Protocol):
    root: Any

    def status(self) -> StreamerStatus:
        """DirectoryStreamer.status()."""


def watch_source(
    streamer: _Streamer, ledger: UploadLedger, topic: str, last_error: Callable[[], str], source: str = ""
) -> StatusSource:
    """A watcher's state: backlog from the ledger, session counts, files finished since the
    previous call (sent or failed, with reasons), the last error logged."""
    lock = threading.Lock()
    cursor = [time.time()]  # files finished before this process started are not news
    last: list[tuple[str, float]] = [("", 0.0)]

    def snapshot() -> Status:
        status = streamer.status()
        files, size = ledger.backlog()
        with lock:
            rows = ledger.finished_since(cursor[0], MAX_RECENT)
            if rows:
                cursor[0] = rows[-1].updated_at
            recent = tuple(
                RecentFile(
                    r.relpath,
                    r.sha256 or "",
                    r.size,
                    SendOutcome(r.status),
                    r.updated_at,
                    (r.reason or "")[:MAX_TEXT],
                )
                for r in rows
                if len(r.relpath) <= MAX_TEXT
            )
            for item in recent:
                if item.outcome == SendOutcome.SENT:
                    last[0] = (item.path, item.at)
            last_file, last_at = last[0]
        session = status.session
        return Status(
            folder=str(streamer.root)[:MAX_TEXT],
            topic=topic,
            source=source,
            queued_files=files,
            queued_bytes=size,
            in_flight=max(len(status.sending), status.awaiting_ack),
            sent=session.sent,
            failed=session.failed,
            bytes=session.bytes,
            last_file=last_file,
            last_file_at=last_at,
            last_error=last_error()[:MAX_TEXT],
            recent=recent,
            problems="; ".join(status.problems)[:MAX_TEXT],
        )

    return snapshot


def counts_source(
    report: Callable[[], Any], topic: str, group: str, last_error: Callable[[], str], *, folder: str = ""
) -> StatusSource:
    """A downloader's or processor's state from its live report object: verified
    (`files` or `processed`), failed (+ rejected), bytes; `folder` its output or work folder."""

    def snapshot() -> Status:
        current = report()
        verified = getattr(current, "files", getattr(current, "processed", 0))
        return Status(
            folder=folder[:MAX_TEXT],
            topic=topic,
            group=group[:255],
            verified=int(verified),
            failed=int(getattr(current, "failed", 0)) + int(getattr(current, "rejected", 0)),
            bytes=int(getattr(current, "bytes", 0)),
            last_error=last_error()[:MAX_TEXT],
        )

    return snapshot
