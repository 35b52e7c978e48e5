"""The downloader with wire v2: the digest arrives last, and only bytes that match it appear."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from labstream.download import Assembler, Ledger, Outcome
from labstream.download.limits import Limits
from labstream.kafka import Record
from labstream.wire import Chunk, encode
from labstream.wire.crypto import PayloadCipher
from labstream.wire.v2 import aborted_trailer, new_file_id

from .test_wire_v2 import v2_chunks_of

CHUNK = 1024
Verdict = tuple[str, bytes, int, str, str]


def recs(chunks: list[Chunk], start: int = 0, cipher: PayloadCipher | None = None) -> list[Record]:
    return [Record("t", 0, start + i, c.path.encode(), encode(c, cipher)) for i, c in enumerate(chunks)]


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture
def verdicts() -> list[Verdict]:
    return []


@pytest.fixture
def assembler(out: Path, verdicts: list[Verdict]) -> Iterator[Assembler]:
    with Ledger(out / ".labstream" / "ledger.sqlite") as ledger:
        assembler = Assembler(
            out,
            ledger,
            lambda v: verdicts.append((v.path, v.digest, v.size, v.outcome, v.reason)),
            limits=Limits(max_file_size=1 << 20),
        )
        yield assembler
        assembler.close()


def feed(assembler: Assembler, records: list[Record]) -> list[Outcome]:
    outcomes = [assembler.add(r) for r in records]
    assembler.commit()
    return outcomes


def test_v2_file_is_rebuilt_with_later_chunks_in_any_order_with_a_verified_verdict(
    assembler: Assembler, out: Path, verdicts: list[Verdict]
) -> None:
    content = os.urandom(5 * CHUNK + 7)
    records = recs(v2_chunks_of("a/b.bin", content, CHUNK))
    outcomes = feed(assembler, records[:1] + records[:0:-1])  # the last chunk, with the digest, next
    assert outcomes[-1] is Outcome.COMPLETE and Outcome.COMPLETE not in outcomes[:-1]
    assert (out / "a/b.bin").read_bytes() == content
    assert verdicts == [("a/b.bin", hashlib.sha256(content).digest(), len(content), "verified", "")]


def test_v2_last_chunk_alone_presents_nothing_and_holds_no_offsets(assembler: Assembler, out: Path) -> None:
    chunks = v2_chunks_of("f.bin", os.urandom(3 * CHUNK), CHUNK)
    assert feed(assembler, recs(chunks[-1:], start=5)) == [Outcome.DUPLICATE]
    assert not (out / "f.bin").exists() and assembler.held_offsets() == {}


def test_v2_resumed_tail_of_a_file_already_verified_is_dropped_without_a_verdict(
    assembler: Assembler, out: Path, verdicts: list[Verdict]
) -> None:
    """A sender killed after the cluster had every chunk but before it checkpointed them
    resumes with the same file id and produces the tail again (labstream.upload.resume)."""
    content = os.urandom(4 * CHUNK)
    chunks = v2_chunks_of("f.bin", content, CHUNK)
    assert feed(assembler, recs(chunks))[-1] is Outcome.COMPLETE
    assert feed(assembler, recs(chunks[2:], start=4)) == [Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert assembler.held_offsets() == {} and assembler.incomplete() == []
    assert [v[3] for v in verdicts] == ["verified"]
    assert (out / "f.bin").read_bytes() == content


def test_v2_resumed_send_completes_the_file_in_progress(assembler: Assembler, out: Path) -> None:
    """The continuation of a send (same file id) finishes the file; chunks sent twice are
    duplicates; the commits stay held at the first chunk until then."""
    content = os.urandom(5 * CHUNK + 3)
    chunks = v2_chunks_of("f.bin", content, CHUNK)
    assert feed(assembler, recs(chunks[:3])) == [Outcome.INCOMPLETE] * 3
    assert assembler.held_offsets() == {("t", 0): 0}
    outcomes = feed(assembler, recs(chunks[2:], start=10))  # resumed from an older checkpoint
    assert outcomes == [Outcome.DUPLICATE, Outcome.INCOMPLETE, Outcome.INCOMPLETE, Outcome.COMPLETE]
    assert (out / "f.bin").read_bytes() == content and assembler.held_offsets() == {}


def test_v2_forged_digest_is_never_presented(
    assembler: Assembler, out: Path, verdicts: list[Verdict]
) -> None:
    content = os.urandom(2 * CHUNK)
    chunks = v2_chunks_of("f.bin", content, CHUNK)
    forged = dataclasses.replace(chunks[-1], file_digest=hashlib.sha256(b"other").digest())
    assert feed(assembler, recs([chunks[0], forged])) == [Outcome.INCOMPLETE, Outcome.FAILED]
    assert not (out / "f.bin").exists()
    assert verdicts[0][1] == hashlib.sha256(b"other").digest() and verdicts[0][3] == "failed"


def test_v2_second_last_chunk_cannot_change_the_digest(assembler: Assembler, out: Path) -> None:
    content = os.urandom(3 * CHUNK)
    chunks = v2_chunks_of("f.bin", content, CHUNK)
    forged = dataclasses.replace(chunks[-1], file_digest=bytes(32))
    assert feed(assembler, recs([chunks[0], chunks[2], forged, chunks[1]])) == [
        Outcome.INCOMPLETE,
        Outcome.INCOMPLETE,
        Outcome.DUPLICATE,
        Outcome.COMPLETE,
    ]
    assert (out / "f.bin").read_bytes() == content


def test_v2_last_chunk_of_another_file_id_does_not_complete_a_file(assembler: Assembler, out: Path) -> None:
    content = os.urandom(2 * CHUNK)
    mine = v2_chunks_of("f.bin", content, CHUNK)
    theirs = v2_chunks_of("f.bin", content, CHUNK)  # same bytes, another send
    assert feed(assembler, recs([mine[0], theirs[1]])) == [Outcome.INCOMPLETE, Outcome.DUPLICATE]
    assert not (out / "f.bin").exists()


def test_v2_aborted_trailer_drops_the_send_for_good(
    assembler: Assembler, out: Path, verdicts: list[Verdict]
) -> None:
    content = os.urandom(3 * CHUNK)
    chunks = v2_chunks_of("f.bin", content, CHUNK)
    trailer = aborted_trailer("f.bin", len(content), CHUNK, chunks[0].file_id, 1)
    outcomes = feed(assembler, recs([chunks[0], trailer, chunks[1], chunks[2]]))
    assert outcomes == [Outcome.INCOMPLETE, Outcome.ABORTED, Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert not (out / "f.bin").exists() and assembler.held_offsets() == {} and verdicts == []


def test_v2_huge_claimed_size_fails_alone(assembler: Assembler, out: Path, verdicts: list[Verdict]) -> None:
    content = os.urandom(CHUNK)
    good = v2_chunks_of("f.bin", content, CHUNK)
    huge = dataclasses.replace(good[0], file_size=1 << 40, n_chunks=1 << 30, file_digest=b"")
    assert feed(assembler, recs([huge]))[0] is Outcome.FAILED
    assert verdicts[0][:4] == ("f.bin", b"", 1 << 40, "failed")  # counted; no digest to receipt
    assert feed(assembler, recs(good))[0] is Outcome.COMPLETE
    assert (out / "f.bin").read_bytes() == content


def test_v2_same_bytes_sent_again_are_a_duplicate_with_a_receipt_for_the_new_send(
    assembler: Assembler, verdicts: list[Verdict]
) -> None:
    content = os.urandom(2 * CHUNK)
    feed(assembler, recs(v2_chunks_of("f.bin", content, CHUNK)))
    assembler.commit()
    again = feed(assembler, recs(v2_chunks_of("f.bin", content, CHUNK), start=2))
    assert again[-1] is Outcome.DUPLICATE and len(verdicts) == 2
    assert verdicts[0] == verdicts[1] and verdicts[1][3] == "verified"  # a receipt for each send


def test_v2_sealed_unauthenticated_trailer_cannot_stop_an_authentic_file(out: Path) -> None:
    cipher = PayloadCipher(os.urandom(32))
    content = os.urandom(3 * CHUNK)
    chunks = v2_chunks_of("f.bin", content, CHUNK)
    trailer = aborted_trailer("f.bin", len(content), CHUNK, chunks[0].file_id, 1)
    with Ledger(out / ".labstream" / "ledger.sqlite") as ledger:
        assembler = Assembler(out, ledger, cipher=cipher)
        records = recs(chunks[:1], cipher=cipher) + recs([trailer], 1) + recs(chunks[1:], 2, cipher=cipher)
        outcomes = feed(assembler, records)
        assembler.close()
    assert outcomes[1] is Outcome.REJECTED and outcomes[-1] is Outcome.COMPLETE
    assert (out / "f.bin").read_bytes() == content


def test_v2_empty_file(assembler: Assembler, out: Path) -> None:
    assert feed(assembler, recs(v2_chunks_of("empty", b"", CHUNK))) == [Outcome.COMPLETE]
    assert (out / "empty").read_bytes() == b""


def test_v2_id_is_random_per_send() -> None:
    assert len({new_file_id() for _ in range(100)}) == 100


def test_v2_same_bytes_twice_in_one_batch_give_one_copy(
    assembler: Assembler, verdicts: list[Verdict], out: Path
) -> None:
    content = os.urandom(2 * CHUNK)
    records = recs(v2_chunks_of("f.bin", content, CHUNK)) + recs(
        v2_chunks_of("f.bin", content, CHUNK), start=2
    )
    assert feed(assembler, records)[-1] is Outcome.DUPLICATE
    assert len(verdicts) == 2 and verdicts[0] == verdicts[1]  # each send verified, once it is in place
    assert [p.name for p in out.iterdir() if p.is_file()] == ["f.bin"]


def test_a_large_file_is_handed_to_disk_writeback_as_it_arrives_each_byte_once(
    assembler: Assembler, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its final fsync then has little left to wait for: runs of WRITEBACK_BYTES (here 4
    chunks), contiguous from the start, and the rest with the last chunk."""
    from labstream.download import partial as partial_module

    started: list[tuple[int, int]] = []
    monkeypatch.setattr(partial_module, "WRITEBACK_BYTES", 4 * CHUNK)
    monkeypatch.setattr(partial_module, "start_writeback", lambda _fd, at, n: started.append((at, n)))
    content = os.urandom(10 * CHUNK + 7)
    assert feed(assembler, recs(v2_chunks_of("big.bin", content, CHUNK)))[-1] is Outcome.COMPLETE
    assert started == [(0, 4 * CHUNK), (4 * CHUNK, 4 * CHUNK), (8 * CHUNK, 2 * CHUNK + 7)]
    assert (out / "big.bin").read_bytes() == content


def test_start_writeback_on_a_real_file_raises_nothing_and_changes_no_byte(tmp_path: Path) -> None:
    from labstream.download.durability import start_writeback

    path = tmp_path / "f"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        os.write(fd, b"x" * (1 << 20))
        start_writeback(fd, 0, 1 << 20)  # sync_file_range on Linux, nothing elsewhere
        start_writeback(fd, 1 << 20, 0)
        os.fsync(fd)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"x" * (1 << 20)
