"""A consumer batch looked at before its files are placed (labstream.download.lookahead):
its messages decoded once, the ledger asked once for all its files, and nothing else changes
(failures stay per file, name conflicts and copies are found as before, offsets move only
past durable files)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from labstream.download import Assembler, Downloader, Ledger, Outcome, durability
from labstream.download.options import DownloadOptions
from labstream.kafka import Record
from labstream.kafka.memory import MemoryBroker
from labstream.wire import encode

from .test_download_batch import records
from .test_wire_v2 import v2_chunks_of

TOPIC = "t"


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture
def ledger(out: Path) -> Iterator[Ledger]:
    with Ledger(out / ".labstream" / "ledger.sqlite") as ledger:
        yield ledger


@pytest.fixture
def assembler(out: Path, ledger: Ledger) -> Iterator[Assembler]:
    assembler = Assembler(out, ledger)
    yield assembler
    assembler.close()


def _selects(ledger: Ledger) -> list[str]:
    seen: list[str] = []
    ledger._db.set_trace_callback(lambda sql: seen.append(sql) if sql.lstrip().startswith("SELECT") else None)
    return seen


def test_a_prepared_batch_asks_the_ledger_once_per_table_not_once_per_file(
    assembler: Assembler, ledger: Ledger
) -> None:
    batch = records([f"f{i:02d}.bin" for i in range(20)], size=100)
    selects = _selects(ledger)
    assembler.prepare(batch)
    assert all(assembler.add(r) is Outcome.COMPLETE for r in batch)
    assert len(selects) == 2  # owners of the 20 names, copies of the 20 digests
    assert len(assembler.commit()) == 20


def test_an_unprepared_batch_still_asks_per_file(assembler: Assembler, ledger: Ledger) -> None:
    batch = records([f"f{i:02d}.bin" for i in range(5)], size=100)
    selects = _selects(ledger)
    assert all(assembler.add(r) is Outcome.COMPLETE for r in batch)
    assert len(selects) == 10


def test_a_prepared_answer_is_not_used_once_the_ledger_is_written(ledger: Ledger) -> None:
    ledger.prefetch(["a.bin"], [])
    assert ledger.owner("a.bin") is None
    ledger.claim_many([("a.bin", "pc1", "a.bin")])
    assert ledger.owner("a.bin") == ("pc1", "a.bin")


def test_a_batch_with_nothing_to_look_up_drops_the_answers_of_the_one_before(ledger: Ledger) -> None:
    ledger.prefetch(["a.bin"], [])
    ledger.prefetch([], [])
    with Ledger(ledger.path) as other:  # another process's write: no generation of ours moves
        other.claim_many([("a.bin", "pc1", "a.bin")])
    assert ledger.owner("a.bin") == ("pc1", "a.bin")


def test_a_damaged_message_in_a_prepared_batch_fails_only_its_file(assembler: Assembler, out: Path) -> None:
    batch = records([f"f{i}.bin" for i in range(5)], size=100)
    damaged = bytearray(batch[2].value)
    damaged[-1] ^= 0xFF
    batch[2] = Record(TOPIC, 0, batch[2].offset, batch[2].key, bytes(damaged))
    assembler.prepare(batch)
    outcomes = [assembler.add(r) for r in batch]
    assert outcomes == [Outcome.COMPLETE] * 2 + [Outcome.FAILED] + [Outcome.COMPLETE] * 2
    assert sorted(d.relpath for d in assembler.commit()) == ["f0.bin", "f1.bin", "f3.bin", "f4.bin"]


def test_the_same_bytes_already_stored_are_found_through_a_prepared_answer(
    assembler: Assembler, out: Path
) -> None:
    content = os.urandom(100)
    (first,) = v2_chunks_of("same.bin", content, 1 << 20)
    (again,) = v2_chunks_of("same.bin", content, 1 << 20)  # a new file id: sent again
    assert assembler.add(Record(TOPIC, 0, 0, None, encode(first))) is Outcome.COMPLETE
    assembler.commit()
    batch = [Record(TOPIC, 0, 1, None, encode(again))]
    assembler.prepare(batch)
    assert assembler.add(batch[0]) is Outcome.DUPLICATE


def test_a_name_held_by_another_source_is_avoided_through_a_prepared_answer(
    assembler: Assembler, ledger: Ledger, out: Path
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "a.bin").write_bytes(b"theirs")
    ledger.claim_many([("a.bin", "pc1", "a.bin")])
    batch = records(["a.bin"], size=100)  # no source: not pc1's
    assembler.prepare(batch)
    assert assembler.add(batch[0]) is Outcome.COMPLETE
    (done,) = assembler.commit()
    assert done.relpath == "a.from-unnamed.bin"
    assert (out / "a.bin").read_bytes() == b"theirs"


def test_offsets_move_past_a_batch_only_once_its_files_are_durable(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka = MemoryBroker()
    kafka.create_topic(TOPIC, partitions=1)
    count = 150
    with kafka.producer() as producer:
        for record in records([f"f{i:03d}.bin" for i in range(count)], size=100):
            producer.send(TOPIC, record.key or b"", record.value, lambda _error: None)
    durable: set[str] = set()
    committed_then: list[tuple[int, int]] = []  # (offset committed, files durable) at each flush
    real = durability._flush_group

    def flush_group(paths: list[Path], folder: Path) -> None:
        committed_then.append((kafka.committed("g").get((TOPIC, 0), 0), len(durable)))
        real(paths, folder)
        durable.update(p.name for p in paths)

    monkeypatch.setattr(durability, "_flush_group", flush_group)
    options = DownloadOptions(exit_when_idle=0.3)
    report = Downloader({"group.id": "g"}, TOPIC, out, options, clients=kafka).run()
    assert report.files == count
    assert kafka.committed("g") == {(TOPIC, 0): count}
    assert all(offset <= files for offset, files in committed_then)  # never past a file not durable
