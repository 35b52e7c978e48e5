"""Verified small files wait for one shared commit (issue 16): one flush, one folder sync, one
ledger transaction and one offset store for many files, while every guarantee holds for the
files that wait: their offsets stay held, a later message cannot break them, a revoked
partition or a full disk leaves nothing half done.

The downloader runs against the in-memory Kafka (labstream.kafka.memory), a real
implementation of the consumer interface."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from labstream.download import Assembler, Downloader, Ledger, Outcome
from labstream.download import assembler as assembler_module
from labstream.download import downloader as downloader_module
from labstream.download.durability import GroupFlusher
from labstream.download.ledger import Ledger as LedgerClass
from labstream.download.limits import Limits
from labstream.download.options import DownloadOptions
from labstream.errors import OutputError
from labstream.kafka import Record
from labstream.kafka.memory import MemoryBroker
from labstream.outcomes import Verdict
from labstream.wire import Chunk, encode

from .test_download_batch import records as v2_records
from .test_wire_v2 import v2_chunks_of

TOPIC = "t"


def v1_record(path: str, content: bytes, offset: int) -> Record:
    digest = hashlib.sha256(content).digest()
    chunk = Chunk(path, len(content), digest, 0, 1, 1024, content)  # content: one chunk
    return Record(TOPIC, 0, offset, path.encode(), encode(chunk))


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture
def verdicts() -> list[Verdict]:
    return []


@pytest.fixture
def assembler(out: Path, verdicts: list[Verdict]) -> Iterator[Assembler]:
    with Ledger(out / ".labstream" / "ledger.sqlite") as ledger:
        assembler = Assembler(out, ledger, verdicts.append)
        yield assembler
        assembler.close()


@pytest.fixture
def flushes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many files each flush to disk covered."""
    seen: list[int] = []
    real = assembler_module.flush_files

    def counting(paths: list[Path], folder: Path, flusher: GroupFlusher | None = None) -> None:
        seen.append(len(paths))
        real(paths, folder, flusher)

    monkeypatch.setattr(assembler_module, "flush_files", counting)
    return seen


def test_many_small_files_queued_are_committed_with_one_flush(
    out: Path, flushes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(downloader_module, "COMMIT_SECONDS", 3600.0)  # counts, not the clock
    kafka = MemoryBroker()
    kafka.create_topic(TOPIC, partitions=1)
    count = 3 * downloader_module.BATCH + 5  # four consume calls, the last one not full
    with kafka.producer() as producer:
        for record in v2_records([f"f{i:03d}.bin" for i in range(count)], size=100):
            producer.send(TOPIC, record.key or b"", record.value, lambda _error: None)
    report = Downloader(
        {"group.id": "g"}, TOPIC, out, DownloadOptions(exit_when_idle=0.3), clients=kafka
    ).run()
    assert report.files == count
    assert flushes == [count]  # not one flush per consume call of BATCH messages
    assert len(list(out.glob("f*.bin"))) == count


def test_a_commit_is_due_at_the_file_count_byte_count_or_age_limit(
    assembler: Assembler, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(downloader_module, "COMMIT_SECONDS", 3600.0)
    monkeypatch.setattr(downloader_module, "COMMIT_FILES", 3)
    monkeypatch.setattr(downloader_module, "COMMIT_BYTES", 1 << 20)
    due = downloader_module._commit_due
    assert not due(assembler)
    for i, record in enumerate(v2_records(["a.bin", "b.bin", "c.bin"], size=10)):
        assembler.add(record)
        assert due(assembler) is (i == 2)
    assembler.commit()
    assembler.add(v2_records(["big.bin"], size=1 << 20, start=3)[0])
    assert due(assembler)
    assembler.commit()
    monkeypatch.setattr(downloader_module, "COMMIT_SECONDS", 0.0)
    assembler.add(v2_records(["old.bin"], size=10, start=4)[0])
    assert due(assembler)


def test_files_waiting_for_their_commit_hold_their_offsets(assembler: Assembler, out: Path) -> None:
    for record in v2_records([f"w{i}.bin" for i in range(5)], size=100, start=40):
        assert assembler.add(record) is Outcome.COMPLETE
    assert assembler.held_offsets() == {(TOPIC, 0): 40}
    assert not list(out.glob("w*.bin"))  # nothing visible before it is durable
    assert len(assembler.commit()) == 5
    assert assembler.held_offsets() == {}


def test_a_damaged_copy_of_a_file_waiting_for_commit_leaves_it_verified(
    assembler: Assembler, out: Path, verdicts: list[Verdict]
) -> None:
    content = os.urandom(300)
    good = v1_record("d.bin", content, 0)
    damaged = bytearray(good.value)
    damaged[-1] ^= 0xFF  # the same file's key, a payload that fails its checksum
    assert assembler.add(good) is Outcome.COMPLETE
    assert assembler.add(Record(TOPIC, 0, 1, b"d.bin", bytes(damaged))) is Outcome.DUPLICATE
    assembler.commit()
    assert (out / "d.bin").read_bytes() == content
    assert [v.outcome for v in verdicts] == ["verified"]


def test_files_of_a_revoked_partition_waiting_for_commit_are_dropped_cleanly(
    assembler: Assembler, out: Path, verdicts: list[Verdict]
) -> None:
    for record in v2_records([f"r{i}.bin" for i in range(4)], size=100):
        assert assembler.add(record) is Outcome.COMPLETE
    assembler.drop_partitions([(TOPIC, 0)])
    assert assembler.commit() == []
    assert verdicts == []  # the partition's new owner reads them again; nothing failed here
    assert not list(out.glob("r*.bin"))
    assert not list((out / ".labstream").glob("failed/*"))


def test_a_full_disk_while_recording_a_commit_is_carried_on_by_the_retry(
    assembler: Assembler, out: Path, verdicts: list[Verdict], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = LedgerClass.record_many
    failures = [OutputError("ledger: database or disk is full")]

    def full_once(self: LedgerClass, rows: list[tuple[str, bytes, int, str, str, int, str]]) -> None:
        if failures:
            raise failures.pop()
        real(self, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(LedgerClass, "record_many", full_once)
    for record in v2_records(["x.bin", "y.bin"], size=100):
        assembler.add(record)
    with pytest.raises(OutputError):
        assembler.commit()
    assert assembler.held_offsets() == {(TOPIC, 0): 0}  # not released while not recorded
    done = assembler.commit()
    assert sorted(d.relpath for d in done) == ["x.bin", "y.bin"]
    assert [v.outcome for v in verdicts] == ["verified", "verified"]
    assert assembler.held_offsets() == {}


def test_no_thread_is_left_after_a_batched_download(out: Path) -> None:
    kafka = MemoryBroker()
    kafka.create_topic(TOPIC, partitions=1)
    Downloader({"group.id": "g"}, TOPIC, out, DownloadOptions(exit_when_idle=0.1), clients=kafka).run()
    assert not [t for t in threading.enumerate() if t.name.startswith("labstream-download")]


def test_files_waiting_for_commit_do_not_count_as_incomplete_bytes(
    out: Path, verdicts: list[Verdict]
) -> None:
    chunks = v2_chunks_of("growing.bin", os.urandom(8192), 4096)
    growing = [Record(TOPIC, 1, i, b"growing.bin", encode(c)) for i, c in enumerate(chunks)]
    with Ledger(out / ".labstream" / "ledger.sqlite") as ledger:
        assembler = Assembler(
            out, ledger, verdicts.append, limits=Limits(max_file_size=1 << 20, max_incomplete_bytes=1 << 20)
        )
        try:
            assert assembler.add(growing[0]) is Outcome.INCOMPLETE
            for record in v2_records([f"ready{i}.bin" for i in range(12)], size=100_000):
                assert assembler.add(record) is Outcome.COMPLETE  # 1.2 MB waiting: over the limit
            assert assembler.add(growing[1]) is Outcome.COMPLETE  # not given up for their bytes
            assert len(assembler.commit()) == 13
            assert [v.outcome for v in verdicts] == ["verified"] * 13
        finally:
            assembler.close()


def test_a_stop_between_a_batch_and_its_commit_commits_what_is_verified(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop that comes after a full batch was verified but before its commit was due (another
    consumer thread, a signal, `q`), with no grace: the verified files are committed and
    counted, not left to be read and verified again by the next run."""
    kafka = MemoryBroker()
    kafka.create_topic(TOPIC, partitions=1)
    with kafka.producer() as producer:
        for record in v2_records([f"f{i:03d}.bin" for i in range(300)], size=2000):
            producer.send(TOPIC, record.key or b"", record.value, lambda _error: None)
        producer.flush(10)
    stop = threading.Event()
    complete = [0]
    expire = Assembler.expire

    def expire_then_stop(self: Assembler) -> int:  # runs after the commit decision of a batch
        if complete[0] >= 64:
            stop.set()
        return expire(self)

    def on_outcome(outcome: Outcome, _nbytes: int) -> None:
        complete[0] += outcome is Outcome.COMPLETE

    monkeypatch.setattr(Assembler, "expire", expire_then_stop)
    downloader = Downloader(  # no grace: nothing more is read after the stop
        {"group.id": "g"},
        TOPIC,
        out,
        DownloadOptions(stop_grace_seconds=0),
        stop=stop,
        on_outcome=on_outcome,
        clients=kafka,
    )
    report = downloader.run()
    assert complete[0] >= 64
    assert report.files == complete[0] and report.failed == 0
    assert len(list(out.glob("f*.bin"))) == complete[0]
    assert sum(kafka.committed("g").values()) == complete[0]  # the offsets moved past every one


def test_files_verified_before_a_rebalance_are_committed_not_read_again(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A consumer joining the group takes partitions from a downloader whose first batch (every
    partition's files, one full consume) is verified but not yet committed: those files are
    committed in the revoke, with their offsets, so the partitions' new owner starts after
    them instead of reading and verifying them again."""
    kafka = MemoryBroker()
    count = _one_batch_then_a_newcomer(kafka, monkeypatch)
    report = Downloader(
        {"group.id": "g"}, TOPIC, out, DownloadOptions(exit_when_idle=0.3), clients=kafka
    ).run()
    # Every file is in place and counted once, and the committed offsets of all four
    # partitions (two now the newcomer's) are past every file: nothing is read again.
    assert report.files == count and report.failed == 0
    assert len(list(out.glob("f*.bin"))) == count
    assert len(kafka.committed("g")) == 4 and sum(kafka.committed("g").values()) == count


def _one_batch_then_a_newcomer(
    kafka: MemoryBroker,
    monkeypatch: pytest.MonkeyPatch,
    during_revoke: Callable[[], None] = lambda: None,
    handed_early: int = 0,
) -> int:
    """A full first batch over four partitions, verified, waiting for its commit, when a
    second consumer joins the group (`during_revoke` runs just before the join takes effect).
    `handed_early`: files a processor was handed already (the first, to time it)."""
    monkeypatch.setattr(downloader_module, "COMMIT_SECONDS", 3600.0)
    kafka.create_topic(TOPIC, partitions=4)
    count = downloader_module.BATCH
    with kafka.producer() as producer:
        for record in v2_records([f"f{i:03d}.bin" for i in range(count)], size=100):
            producer.send(TOPIC, record.key or b"", record.value, lambda _error: None)
        producer.flush(10)
    newcomer: list[object] = []
    expire = Assembler.expire

    def expire_then_join(self: Assembler) -> int:  # after the first batch, before its commit
        if not newcomer:
            assert self.ready_files() == count - handed_early  # verified, waiting for the commit
            during_revoke()
            newcomer.append(kafka.consumer({"group.id": "g"}, [TOPIC]))
        return expire(self)

    monkeypatch.setattr(Assembler, "expire", expire_then_join)
    return count


def test_a_full_disk_during_the_revoke_drops_the_files_without_waiting(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The revoke makes one attempt: the group's rebalance does not wait for space. The
    files are dropped with their partitions (their new owner reads them again); the partitions
    kept are committed once space is back."""
    kafka = MemoryBroker()
    full = [True]
    real = assembler_module.flush_files

    def flush(paths: list[Path], folder: Path, flusher: GroupFlusher | None = None) -> None:
        if full[0]:
            full[0] = False  # full once: the revoke's attempt
            raise OutputError("No space left on device")
        real(paths, folder, flusher)

    count = _one_batch_then_a_newcomer(
        kafka, monkeypatch, lambda: monkeypatch.setattr(assembler_module, "flush_files", flush)
    )
    # Idle time long enough that a revoke waiting for space (1 s) would get it and commit all.
    report = Downloader(
        {"group.id": "g"}, TOPIC, out, DownloadOptions(exit_when_idle=2.5), clients=kafka
    ).run()
    assert report.failed == 0 and 0 < report.files < count  # only the partitions kept
    assert len(list(out.glob("f*.bin"))) == report.files == sum(kafka.committed("g").values())


def test_a_processor_hands_its_uncommitted_files_over_at_a_revoke(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A processor's code may run for minutes; it does not run inside the rebalance. The files
    of the partitions lost are dropped unprocessed and their offsets not moved: the new owner
    processes them."""
    kafka = MemoryBroker()
    count = _one_batch_then_a_newcomer(kafka, monkeypatch, handed_early=1)
    handed: list[str] = []
    report = Downloader(
        {"group.id": "g"},
        TOPIC,
        out,
        DownloadOptions(exit_when_idle=0.3),
        clients=kafka,
        after_commit=lambda done, _ledger: handed.extend(f.relpath for f in done),
    ).run()
    assert 0 < len(handed) == report.files < count
    assert sum(kafka.committed("g").values()) == len(handed)


def test_a_file_waiting_for_its_commit_keeps_its_name_from_a_later_file_below_it(
    assembler: Assembler, out: Path, verdicts: list[Verdict]
) -> None:
    """ "a" then "a/b" in one batch: "a" came first and is placed, as it is when a commit
    separates them; "a/b" fails alone (its folder would be the file "a")."""
    records = v2_records(["a", "a/b", "c"], size=10)
    assert [assembler.add(r) for r in records] == [Outcome.COMPLETE, Outcome.FAILED, Outcome.COMPLETE]
    assembler.commit()
    assert (out / "a").is_file() and (out / "c").is_file()
    assert [(v.path, v.outcome) for v in verdicts] == [
        ("a/b", "failed"),
        ("a", "verified"),
        ("c", "verified"),
    ]


def test_a_fast_processor_still_gets_its_files_in_batches(out: Path) -> None:
    """The first file is handed alone to time the processor; an instant one then gets the rest
    of the consumed batch in one commit (no fsync per file)."""
    kafka = MemoryBroker()
    kafka.create_topic(TOPIC, partitions=1)
    count = downloader_module.BATCH
    with kafka.producer() as producer:
        for record in v2_records([f"f{i:03d}.bin" for i in range(count)], size=100):
            producer.send(TOPIC, record.key or b"", record.value, lambda _error: None)
        producer.flush(10)
    handed: list[int] = []
    Downloader(
        {"group.id": "g"},
        TOPIC,
        out,
        DownloadOptions(exit_when_idle=0.3),
        clients=kafka,
        after_commit=lambda done, _ledger: handed.append(len(done)),
    ).run()
    assert sum(handed) == count and handed[0] == 1 and len(handed) <= 3, handed
