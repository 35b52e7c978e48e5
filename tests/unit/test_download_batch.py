"""Per-file costs of small files on download: folder checks once per folder per batch, no
hash hand-off for a file's completing chunk, one ledger transaction per batch."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from labstream.download import Assembler, Ledger, Outcome
from labstream.download import placement as placement_module
from labstream.download.ledger import Ledger as LedgerClass
from labstream.kafka import Record
from labstream.wire import encode

from .test_wire_v2 import v2_chunks_of

SMALL = 64 * 1024 + 4  # the benchmark's small files: one chunk each, over OFFLOAD_BYTES


def records(names: list[str], size: int = SMALL, start: int = 0) -> list[Record]:
    chunks = [c for name in names for c in v2_chunks_of(name, os.urandom(size), 1 << 20)]
    return [Record("t", 0, start + i, c.path.encode(), encode(c)) for i, c in enumerate(chunks)]


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture
def assembler(out: Path) -> Iterator[Assembler]:
    with Ledger(out / ".labstream" / "ledger.sqlite") as ledger:
        assembler = Assembler(out, ledger)
        yield assembler
        assembler.close()


@pytest.fixture
def realpaths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = os.path.realpath

    def counting(path: str | os.PathLike[str]) -> str:
        seen.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(placement_module.os.path, "realpath", counting)
    return seen


def test_folder_checks_run_once_per_folder_per_batch(
    assembler: Assembler, out: Path, realpaths: list[str]
) -> None:
    names = [f"run{i % 2}/f{i:03d}.bin" for i in range(40)]
    outcomes = [assembler.add(r) for r in records(names)]
    assembler.commit()
    assert outcomes == [Outcome.COMPLETE] * 40
    assert len(realpaths) == 2 * 2  # (output folder, parent) for each of the 2 folders, not 40 files
    assert sorted(p.relative_to(out).as_posix() for p in out.glob("run*/*")) == sorted(names)


def test_a_folder_swapped_for_a_link_is_caught_in_the_next_batch(
    assembler: Assembler, out: Path, tmp_path: Path
) -> None:
    assembler.add(records(["run/a.bin"])[0])
    assembler.commit()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in os.listdir(out / "run"):
        os.unlink(out / "run" / name)
    (out / "run").rmdir()
    (out / "run").symlink_to(elsewhere)
    assert assembler.add(records(["run/b.bin"], start=1)[0]) is Outcome.FAILED
    assembler.commit()
    assert list(elsewhere.iterdir()) == []


def test_a_file_completed_by_one_chunk_is_hashed_without_the_hash_thread(assembler: Assembler) -> None:
    for record in records([f"f{i}.bin" for i in range(5)]):
        assert assembler.add(record) is Outcome.COMPLETE
    assembler.commit()
    assert not [t for t in threading.enumerate() if t.name.startswith("labstream-hash")]


def test_one_ledger_transaction_per_batch(assembler: Assembler, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    record_many = LedgerClass.record_many

    def counting(self: LedgerClass, rows: list[tuple[str, bytes, int, str, str, int, str]]) -> None:
        calls.append(len(rows))
        record_many(self, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(LedgerClass, "record_many", counting)
    monkeypatch.setattr(LedgerClass, "record", lambda *_a, **_k: calls.append(-1))
    for record in records([f"f{i}.bin" for i in range(30)]):
        assembler.add(record)
    assembler.commit()
    assert calls == [30]
