from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from labstream.download import Assembler, Ledger, Outcome
from labstream.kafka import Record
from labstream.wire import Chunk, encode, n_chunks_for

from .test_wire import _raw

CHUNK = 1024


def records(
    path: str, content: bytes, *, sha: bytes | None = None, start: int = 0, partition: int = 0
) -> list[Record]:
    digest = sha or hashlib.sha256(content).digest()
    n = n_chunks_for(len(content), CHUNK)
    return [
        Record(
            "t",
            partition,
            start + i,
            path.encode(),
            encode(Chunk(path, len(content), digest, i, n, CHUNK, content[i * CHUNK : (i + 1) * CHUNK])),
        )
        for i in range(n)
    ]


def add(assembler: Assembler, record: Record) -> Outcome:
    """One message, then the end-of-batch commit the downloader does."""
    outcome = assembler.add(record)
    assembler.commit()
    return outcome


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture
def assembler(out: Path) -> Iterator[Assembler]:
    with Ledger(out / ".labstream" / "ledger.sqlite") as ledger:
        assembler = Assembler(out, ledger)
        yield assembler
        assembler.close()


def test_interleaved_out_of_order_files_are_rebuilt(assembler: Assembler, out: Path) -> None:
    a, b = os.urandom(10 * CHUNK + 3), os.urandom(7 * CHUNK)
    mixed = records("x/a.bin", a) + records("y/z/b b.bin", b, start=100)
    random.Random(1).shuffle(mixed)
    outcomes = [add(assembler, r) for r in mixed]
    assert outcomes.count(Outcome.COMPLETE) == 2
    assert (out / "x" / "a.bin").read_bytes() == a
    assert (out / "y" / "z" / "b b.bin").read_bytes() == b
    assert assembler.held_offsets() == {}


def test_duplicates_do_no_harm(assembler: Assembler, out: Path) -> None:
    content = os.urandom(3 * CHUNK)
    first = records("f.bin", content)
    assert [add(assembler, r) for r in first[:2]] == [Outcome.INCOMPLETE] * 2
    assert add(assembler, first[1]) is Outcome.DUPLICATE
    assert add(assembler, first[2]) is Outcome.COMPLETE
    again = [add(assembler, r) for r in records("f.bin", content, start=10)]
    assert again == [Outcome.DUPLICATE] * 3
    assert (out / "f.bin").read_bytes() == content


def test_incomplete_file_holds_back_offsets(assembler: Assembler) -> None:
    big = records("big.bin", os.urandom(4 * CHUNK), start=5)
    small = records("small.bin", b"tiny", start=20)
    add(assembler, big[0])
    add(assembler, small[0])
    add(assembler, big[1])
    assert assembler.held_offsets() == {("t", 0): 5}
    for record in big[2:]:
        add(assembler, record)
    assert assembler.held_offsets() == {}


def test_lying_hash_is_kept_aside_not_presented(assembler: Assembler, out: Path) -> None:
    outcomes = [add(assembler, r) for r in records("lie.bin", b"data" * 600, sha=b"\1" * 32)]
    assert outcomes[-1] is Outcome.FAILED
    assert not (out / "lie.bin").exists()
    kept = list((out / ".labstream" / "failed").iterdir())
    assert len(kept) == 1 and kept[0].name.endswith("lie.bin")
    assert assembler.held_offsets() == {}


def test_corrupted_chunk_fails_the_file_and_drops_the_rest(assembler: Assembler, out: Path) -> None:
    chunks = records("c.bin", os.urandom(4 * CHUNK))
    bad = bytearray(chunks[1].value)
    bad[-1] ^= 0xFF
    chunks[1] = Record("t", 0, 1, b"c.bin", bytes(bad))
    outcomes = [add(assembler, r) for r in chunks]
    assert outcomes == [Outcome.INCOMPLETE, Outcome.FAILED, Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert not (out / "c.bin").exists()
    assert assembler.held_offsets() == {}


def test_resend_after_failure_is_accepted(assembler: Assembler, out: Path) -> None:
    content = os.urandom(2 * CHUNK)
    chunks = records("r.bin", content)
    bad = bytearray(chunks[0].value)
    bad[-1] ^= 1
    assert add(assembler, Record("t", 0, 0, None, bytes(bad))) is Outcome.FAILED
    outcomes = [add(assembler, r) for r in records("r.bin", content, start=10)]
    assert outcomes[-1] is Outcome.COMPLETE and (out / "r.bin").read_bytes() == content


@pytest.mark.parametrize(
    "path", [b"../escape.txt", b"/tmp/abs.txt", b"C:/x.txt", b".labstream/ledger.sqlite"]
)
def test_hostile_paths_write_nothing(assembler: Assembler, out: Path, tmp_path: Path, path: bytes) -> None:
    before = sorted(p for p in tmp_path.rglob("*"))
    outcome = add(assembler, Record("t", 0, 0, None, _raw(path)))
    assert outcome in (Outcome.REJECTED, Outcome.FAILED)
    assert not (tmp_path / "escape.txt").exists()
    assert sorted(p for p in tmp_path.rglob("*") if ".labstream/failed" not in str(p)) == before


def test_symlink_inside_output_cannot_redirect_writes(
    assembler: Assembler, out: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (out / "link").symlink_to(outside)
    outcomes = [add(assembler, r) for r in records("link/evil.txt", b"payload")]
    assert outcomes == [Outcome.FAILED]
    assert list(outside.iterdir()) == []


def test_newer_version_replaces_older_and_old_replay_is_ignored(assembler: Assembler, out: Path) -> None:
    old, new = b"version 1", b"version 2!"
    for r in records("v.txt", old) + records("v.txt", new, start=1):
        add(assembler, r)
    assert (out / "v.txt").read_bytes() == new
    assert [add(assembler, r) for r in records("v.txt", old, start=2)] == [Outcome.DUPLICATE]
    assert (out / "v.txt").read_bytes() == new


def test_revoked_partition_forgets_its_files(assembler: Assembler) -> None:
    add(assembler, records("p.bin", os.urandom(3 * CHUNK), partition=2)[0])
    assembler.drop_partitions([("t", 2)])
    assert assembler.held_offsets() == {} and assembler.incomplete() == []


def test_files_of_a_batch_appear_only_at_commit(assembler: Assembler, out: Path) -> None:
    batch = [r for i in range(12) for r in records(f"b/{i}.bin", os.urandom(100 + i), start=i)]
    assert [assembler.add(r) for r in batch] == [Outcome.COMPLETE] * 12
    assert not (out / "b" / "0.bin").exists()
    assert assembler.held_offsets() == {("t", 0): 0}
    assembler.commit()
    assert len(list((out / "b").iterdir())) == 12 and assembler.held_offsets() == {}
