"""Resumable sends (wire v2): a send cut short continues from its acknowledged prefix."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from labstream.errors import SourceFileError
from labstream.kafka.memory import MemoryBroker, MemoryProducer
from labstream.upload import RateLimiter, SourceFile
from labstream.upload import sender as sender_module
from labstream.upload.ledger import UploadLedger, UploadState
from labstream.upload.resume import MAX_RESUME_AGE, AckedPrefix, Checkpoint
from labstream.upload.sender import FileSender, SentFile
from labstream.upload.streamer import DirectoryStreamer, StreamOptions
from labstream.watch import Filters
from labstream.wire import decode

from .test_sender_v2 import download

CHUNK = 64 * 1024
N = 40  # chunks in the test file
EVERY = 4  # chunks between checkpoints in these tests


@pytest.fixture(autouse=True)
def frequent_checkpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        sender_module, "AckedPrefix", functools.partial(AckedPrefix, every_bytes=EVERY * CHUNK)
    )


class CrashingLimiter(RateLimiter):
    """Before chunk `at` (1-based) is produced: the cluster acknowledges what it has, then
    the sender is stopped, as a kill would (the chunk in hand still goes out)."""

    def __init__(self, producer: MemoryProducer, stop: threading.Event, at: int) -> None:
        super().__init__(1e12)
        self._producer, self._stop, self._at, self._seen = producer, stop, at, 0

    def take(self, nbytes: int) -> None:
        self._seen += 1
        if self._seen == self._at:
            self._producer.poll()
            self._stop.set()


def interrupted_send(broker: MemoryBroker, source: SourceFile, at: int) -> list[Checkpoint]:
    """Send `source` until chunk `at`; the checkpoints written on the way."""
    checkpoints: list[Checkpoint] = []
    stop = threading.Event()
    with broker.producer() as producer:
        sender = FileSender(producer, "t", CHUNK, stop=stop, rate=CrashingLimiter(producer, stop, at))
        with pytest.raises(SourceFileError, match="stopped"):
            sender.send(source, lambda *_: None, on_checkpoint=checkpoints.append)
    return checkpoints


def resumed_send(broker: MemoryBroker, source: SourceFile, resume: Checkpoint) -> list[SentFile]:
    done: list[SentFile] = []
    with broker.producer() as producer:
        FileSender(producer, "t", CHUNK).send(
            source, lambda sent, error: done.append(sent), resume=resume, on_checkpoint=lambda _: None
        )
    return done


def payload_bytes(broker: MemoryBroker) -> int:
    return sum(len(decode(r.value).data) for r in broker.messages("t"))


@pytest.fixture
def source(tmp_path: Path) -> SourceFile:
    (tmp_path / "w").mkdir()
    path = tmp_path / "w" / "big.bin"
    path.write_bytes(os.urandom(N * CHUNK - 100))
    return SourceFile(path, "big.bin")


def test_interrupted_send_resumes_from_its_acknowledged_prefix_with_the_same_file_id(
    tmp_path: Path, source: SourceFile
) -> None:
    broker = MemoryBroker()
    checkpoints = interrupted_send(broker, source, at=25)
    assert [c.acked for c in checkpoints] == [4, 8, 12, 16, 20, 24]  # contiguous, not per chunk
    first = len(broker.messages("t"))
    done = resumed_send(broker, source, checkpoints[-1])
    again = [decode(r.value) for r in broker.messages("t")[first:]]
    assert [c.index for c in again] == list(range(24, N))  # the acknowledged prefix is not sent
    assert {c.file_id for c in again} == {checkpoints[-1].file_id} and not any(c.aborted for c in again)
    content = source.path.read_bytes()
    assert done[0].sha256 == hashlib.sha256(content).digest()  # the prefix was hashed again
    assert payload_bytes(broker) <= len(content) + CHUNK  # only the chunk in hand went twice
    download(broker, tmp_path / "out")
    assert (tmp_path / "out" / "big.bin").read_bytes() == content


def test_a_send_interrupted_by_a_stop_with_a_checkpoint_is_not_aborted(source: SourceFile) -> None:
    broker = MemoryBroker()
    interrupted_send(broker, source, at=10)
    assert not any(decode(r.value).aborted for r in broker.messages("t"))


def test_changed_file_starts_over_with_a_new_id_and_aborts_the_old_send(
    tmp_path: Path, source: SourceFile
) -> None:
    broker = MemoryBroker()
    old = interrupted_send(broker, source, at=25)[-1]
    first = len(broker.messages("t"))
    st = source.path.stat()
    with open(source.path, "r+b") as handle:
        handle.write(b"CHANGED")
    os.utime(source.path, ns=(st.st_atime_ns, st.st_mtime_ns))  # only ctime tells
    resumed_send(broker, source, old)
    again = [decode(r.value) for r in broker.messages("t")[first:]]
    assert again[0].aborted and again[0].file_id == old.file_id
    assert [c.index for c in again[1:]] == list(range(N)) and again[1].file_id != old.file_id
    download(broker, tmp_path / "out")
    assert (tmp_path / "out" / "big.bin").read_bytes() == source.path.read_bytes()


@pytest.mark.parametrize(
    "change",
    [
        {"at": time.time() - MAX_RESUME_AGE - 60},  # receivers may have given the file up
        {"chunk_size": CHUNK * 2},
        {"wire": "labstream-v1"},
    ],
)
def test_a_checkpoint_that_no_longer_fits_starts_over(
    tmp_path: Path, source: SourceFile, change: dict[str, object]
) -> None:
    broker = MemoryBroker()
    old = interrupted_send(broker, source, at=25)[-1]
    first = len(broker.messages("t"))
    resumed_send(broker, source, dataclasses.replace(old, **change))  # type: ignore[arg-type]
    again = [decode(r.value) for r in broker.messages("t")[first:]]
    data = [c for c in again if not c.aborted]
    assert [c.index for c in data] == list(range(N)) and data[0].file_id != old.file_id
    download(broker, tmp_path / "out")
    assert (tmp_path / "out" / "big.bin").read_bytes() == source.path.read_bytes()


def test_acked_prefix_counts_only_contiguous_acknowledgements() -> None:
    saved: list[int] = []
    start = Checkpoint(b"i" * 16, "labstream", CHUNK, 0, N * CHUNK, 1, 2, 3, 0.0)
    prefix = AckedPrefix(start, lambda c: saved.append(c.acked), every_bytes=2 * CHUNK, every_seconds=1e9)
    for index in (1, 2, 3, 5):
        prefix.acked(index)
    assert prefix.prefix == 0 and saved == []  # chunk 0 is still missing
    prefix.acked(0)
    assert prefix.prefix == 4 and saved == [4]
    prefix.acked(4)
    assert prefix.prefix == 6 and saved == [4, 6]


def test_ledger_keeps_a_checkpoint_only_while_the_file_is_unfinished(tmp_path: Path) -> None:
    checkpoint = Checkpoint(b"i" * 16, "labstream", CHUNK, 7, 100, 1, 2, 3, 4.5)
    with UploadLedger(tmp_path / "ledger.sqlite") as ledger:
        ledger.set("f", 100, 1, UploadState.SENDING)
        ledger.save_checkpoint("f", checkpoint)
        ledger.set("f", 100, 1, UploadState.QUEUED)  # requeued after a restart
        ledger.set("f", 100, 1, UploadState.SENDING)
        assert ledger.checkpoint("f") == checkpoint
        ledger.set("f", 100, 1, UploadState.SENT, sha256=b"s" * 32)
        assert ledger.checkpoint("f") is None
        ledger.save_checkpoint("f", checkpoint)  # a late delivery report after the end
        assert ledger.checkpoint("f") is None and ledger.get("f").status == "sent"  # type: ignore[union-attr]


def test_ledger_of_an_older_version_gains_the_checkpoint_columns(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE files (relpath TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
        " sha256 TEXT, status TEXT NOT NULL, reason TEXT, updated_at REAL NOT NULL)"
    )
    db.execute("INSERT INTO files VALUES ('old', 3, 1, NULL, 'sending', NULL, 1.0)")
    db.commit()
    db.close()
    checkpoint = Checkpoint(b"i" * 16, "labstream", CHUNK, 7, 3, 1, 2, 3, 4.5)
    with UploadLedger(path) as ledger:
        assert ledger.checkpoint("old") is None and ledger.unfinished()[0].relpath == "old"
        ledger.save_checkpoint("old", checkpoint)
        assert ledger.checkpoint("old") == checkpoint


def test_watcher_restarted_after_a_crash_continues_the_send_from_the_ledger(
    tmp_path: Path, source: SourceFile
) -> None:
    """The first run dies mid-file (its ledger row stays `sending`, with checkpoints); the
    next run's streamer takes the row up and finishes the same send."""
    root = source.path.parent
    broker = MemoryBroker()
    st = source.path.stat()
    with UploadLedger(tmp_path / "state" / "ledger.sqlite") as ledger:
        ledger.set_meta("baseline", "done")
        ledger.set("big.bin", st.st_size, st.st_mtime_ns, UploadState.SENDING)
        for checkpoint in interrupted_send(broker, source, at=25):
            ledger.save_checkpoint("big.bin", checkpoint)
        first = len(broker.messages("t"))
        stop = threading.Event()
        options = StreamOptions(chunk_size=CHUNK, settle_seconds=0.1, rescan_seconds=0.3, filters=Filters())
        streamer = DirectoryStreamer(root, broker.producer(), "t", ledger, options, stop)
        thread = threading.Thread(target=streamer.run, name="labstream-test-stream")
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while ledger.get("big.bin").status != "sent":  # type: ignore[union-attr]
                assert time.monotonic() < deadline, ledger.get("big.bin")
                time.sleep(0.05)
        finally:
            stop.set()
            thread.join(30)
    again = [decode(r.value) for r in broker.messages("t")[first:] if r.key == b"big.bin"]
    assert [c.index for c in again] == list(range(24, N))
    download(broker, tmp_path / "out")
    assert (tmp_path / "out" / "big.bin").read_bytes() == source.path.read_bytes()
