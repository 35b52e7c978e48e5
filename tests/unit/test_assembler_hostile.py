"""Messages meant to stall, crash or exhaust a downloader: each ends as one failed file."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest

from labstream.download import Assembler, Ledger, Outcome
from labstream.download.limits import Limits
from labstream.download.placement import check_writable, output_error
from labstream.errors import OutputAccessError, OutputError, PlacementError
from labstream.kafka import Record

from .test_assembler import CHUNK, add, records
from .test_wire import _raw

Verdict = tuple[str, str, str]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def omsi(
    data: bytes,
    number: int,
    total: int,
    offset: int | object,
    *,
    name: bytes = b"f.bin",
    file_hash: bytes = b"\x01" * 64,
) -> bytes:
    """openmsistream's DataFileChunk, with whatever offset and numbering we like."""
    packed: bytes = msgpack.packb(
        [name, file_hash, hashlib.sha512(data).digest(), offset, number, total, b"", b"", data, 0.0],
        use_bin_type=True,
    )
    return packed


def rec(value: bytes, offset: int = 0, partition: int = 0) -> Record:
    return Record("t", partition, offset, None, value)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture
def verdicts() -> list[Verdict]:
    return []


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(out: Path) -> Iterator[Ledger]:
    with Ledger(out / ".labstream" / "ledger.sqlite") as ledger:
        yield ledger


def make(out: Path, ledger: Ledger, verdicts: list[Verdict], clock: Clock, **kwargs: object) -> Assembler:
    stop = kwargs.pop("stop", None)
    limits = Limits(**kwargs)  # type: ignore[arg-type]
    return Assembler(
        out,
        ledger,
        lambda v: verdicts.append((v.path, v.outcome, v.reason)),
        limits=limits,
        stop=stop,  # type: ignore[arg-type]
        clock=clock,
    )


@pytest.fixture
def assembler(out: Path, ledger: Ledger, verdicts: list[Verdict], clock: Clock) -> Iterator[Assembler]:
    assembler = make(out, ledger, verdicts, clock)
    yield assembler
    assembler.close()


def deliver(assembler: Assembler, path: str, content: bytes, start: int = 0) -> list[Outcome]:
    return [add(assembler, r) for r in records(path, content, start=start)]


def assert_goes_on(assembler: Assembler, out: Path, start: int = 900) -> None:
    """A good file after the hostile ones is delivered and nothing holds the offsets."""
    assert deliver(assembler, "after/good.txt", b"good", start)[-1] is Outcome.COMPLETE
    assert (out / "after" / "good.txt").read_bytes() == b"good"
    assert assembler.held_offsets() == {}


# --- a file and a folder with the same name ------------------------------------------


def test_file_then_folder_of_that_name_fails_only_the_second(
    assembler: Assembler, out: Path, verdicts: list[Verdict]
) -> None:
    assert deliver(assembler, "a", b"file a") == [Outcome.COMPLETE]
    assert deliver(assembler, "a/b", b"file a/b", 1) == [Outcome.FAILED]
    assert (out / "a").read_bytes() == b"file a"
    assert [(p, v) for p, v, _ in verdicts] == [("a", "verified"), ("a/b", "failed")]
    assert_goes_on(assembler, out)


def test_folder_then_file_of_that_name_fails_only_the_second(
    assembler: Assembler, out: Path, verdicts: list[Verdict]
) -> None:
    assert deliver(assembler, "a/b", b"file a/b") == [Outcome.COMPLETE]
    assert [assembler.add(r) for r in records("a", b"file a", start=1)] == [Outcome.COMPLETE]
    assert assembler.commit() == []  # `a` cannot replace the folder: set aside, no error
    assert (out / "a" / "b").read_bytes() == b"file a/b"
    assert verdicts[-1][:2] == ("a", "failed")
    assert [p.read_bytes() for p in (out / ".labstream" / "failed").iterdir()] == [b"file a"]
    assert_goes_on(assembler, out)


def test_file_and_folder_of_one_name_in_one_batch(
    assembler: Assembler, out: Path, verdicts: list[Verdict]
) -> None:
    batch = records("x", b"file x") + records("x/y", b"file x/y", start=1)
    for record in batch:
        assembler.add(record)
    assembler.commit()
    assert sorted(v for _, v, _ in verdicts) == ["failed", "verified"]  # one of them wins
    assert_goes_on(assembler, out)


@pytest.mark.parametrize("existing", ["file", "folder"])
def test_existing_name_in_the_output_folder_fails_only_that_file(
    assembler: Assembler, out: Path, verdicts: list[Verdict], existing: str
) -> None:
    if existing == "file":
        (out / "e").write_text("lab's own")
        assert deliver(assembler, "e/f", b"inside") == [Outcome.FAILED]
        assert (out / "e").read_text() == "lab's own"
    else:
        (out / "e" / "sub").mkdir(parents=True)
        assert [assembler.add(r) for r in records("e", b"over a folder")] == [Outcome.COMPLETE]
        assembler.commit()
        assert (out / "e" / "sub").is_dir()
    assert verdicts[-1][1] == "failed"
    assert_goes_on(assembler, out)


def test_name_too_long_for_the_filesystem_fails_only_that_file(
    assembler: Assembler, out: Path, verdicts: list[Verdict]
) -> None:
    deep = "/".join(["d" * 254] * 16)  # 4079 bytes: a valid relative path, too long for the OS
    deliver(assembler, deep, b"deep")
    assert verdicts[-1][1] == "failed" and "name too long" in verdicts[-1][2]
    assert_goes_on(assembler, out)


def test_only_full_disk_waits(tmp_path: Path) -> None:
    def classify(code: int, out_dir: Path = tmp_path) -> OutputError:
        return output_error(OSError(code, os.strerror(code)), "writing x", out_dir)

    assert type(classify(errno.ENOSPC)) is OutputError and classify(errno.ENOSPC).retriable
    assert type(classify(errno.EDQUOT)) is OutputError
    for code in (errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.EINVAL, errno.ELOOP):
        assert isinstance(classify(code), PlacementError) and not classify(code).retriable
    # Permission denied on one name inside a writable output folder: that file's problem.
    assert isinstance(classify(errno.EACCES), PlacementError)
    # ... on the output folder itself: stop with one clear error.
    denied = classify(errno.EACCES, tmp_path / "not-there")
    assert isinstance(denied, OutputAccessError) and not denied.retriable


def test_unwritable_output_folder_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(OutputAccessError, match="cannot write the output folder"):
        check_writable(tmp_path / "a-file" / "out")


# --- offsets no file can have, and hash amplification ---------------------------------


@pytest.mark.parametrize("offset", [2**64 - 1, 2**62, 2**40 + 7])
@pytest.mark.parametrize("number", [1, 2])
def test_openmsistream_offsets_no_file_can_have_fail_the_file(
    assembler: Assembler, out: Path, offset: int, number: int
) -> None:
    outcome = add(assembler, rec(omsi(b"x" * 100, number, 2, offset)))
    # Beyond 2^63 - 1 the decoder refuses the message itself; below, the file fails.
    assert outcome is (Outcome.REJECTED if offset + 100 > 2**63 - 1 else Outcome.FAILED)
    assert sum(p.stat().st_size for p in (out / ".labstream").rglob("*.part")) == 0
    assert_goes_on(assembler, out)


def test_labstream_geometry_near_2_to_62_fails_the_file(assembler: Assembler, out: Path) -> None:
    n = 2**32 - 1
    value = _raw(
        b"huge.bin", size=(n - 1) * 2**30 + 3, offset=(n - 1) * 2**30, index=n - 1, n=n, chunk_size=2**30
    )
    assert add(assembler, rec(value)) is Outcome.FAILED
    assert_goes_on(assembler, out)


def test_file_over_max_file_size_is_refused_at_its_first_chunk(
    out: Path, ledger: Ledger, verdicts: list[Verdict], clock: Clock
) -> None:
    assembler = make(out, ledger, verdicts, clock, max_file_size=3 * CHUNK)
    first = records("big.bin", os.urandom(4 * CHUNK))[0]
    assert add(assembler, first) is Outcome.FAILED
    assert "over the limit" in verdicts[-1][2]
    assert not list((out / ".labstream").rglob("*.part"))
    assert_goes_on(assembler, out)
    assembler.close()


def test_a_far_offset_waits_for_the_bytes_before_it_and_is_never_hashed(
    assembler: Assembler, out: Path
) -> None:
    # Before: chunk 2 of 2 at 4 GiB made the file "complete" and cost a 4 GiB SHA-512.
    assert add(assembler, rec(omsi(b"tail", 2, 2, 2**32))) is Outcome.INCOMPLETE
    assert assembler.incomplete() == [("f.bin", 4, 2)]


def test_openmsistream_chunks_must_keep_their_layout(assembler: Assembler, verdicts: list[Verdict]) -> None:
    assert add(assembler, rec(omsi(b"a" * 10, 1, 3, 0))) is Outcome.INCOMPLETE
    assert add(assembler, rec(omsi(b"b" * 10, 3, 3, 1000))) is Outcome.FAILED
    assert "does not fit" in verdicts[-1][2]
    assert assembler.held_offsets() == {}


def test_chunks_with_another_chunk_size_fail_the_file(
    assembler: Assembler, out: Path, verdicts: list[Verdict]
) -> None:
    size = 4 * CHUNK
    first = _raw(b"m.bin", size=size, offset=0, index=0, n=4, chunk_size=CHUNK, payload=b"\0" * CHUNK)
    other = _raw(
        b"m.bin", size=size, offset=2 * CHUNK, index=1, n=2, chunk_size=2 * CHUNK, payload=b"\0" * 2 * CHUNK
    )
    assert add(assembler, rec(first)) is Outcome.INCOMPLETE
    assert add(assembler, rec(other, 1)) is Outcome.FAILED
    assert "another layout" in verdicts[-1][2]
    assert_goes_on(assembler, out)


def test_a_file_is_complete_only_when_every_byte_was_received(assembler: Assembler) -> None:
    content = os.urandom(3 * 10)
    digest = hashlib.sha512(content).digest()
    chunks = [omsi(content[i * 10 : (i + 1) * 10], i + 1, 3, i * 10, file_hash=digest) for i in range(3)]
    assert add(assembler, rec(chunks[2])) is Outcome.INCOMPLETE
    assert add(assembler, rec(chunks[2], 1)) is Outcome.DUPLICATE
    assert add(assembler, rec(chunks[0], 2)) is Outcome.INCOMPLETE
    assert add(assembler, rec(chunks[1], 3)) is Outcome.COMPLETE


# --- files that never complete --------------------------------------------------------


def firsts(count: int) -> list[Record]:
    return [records(f"never/{i}.bin", os.urandom(3 * CHUNK), start=i)[0] for i in range(count)]


def test_too_many_incomplete_files_give_up_the_oldest(
    out: Path, ledger: Ledger, verdicts: list[Verdict], clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    assembler = make(out, ledger, verdicts, clock, max_incomplete_files=3)
    assert [add(assembler, r) for r in firsts(5)] == [Outcome.FAILED] * 0 + [Outcome.INCOMPLETE] * 5
    assert [p for p, _, _ in assembler.incomplete()] == ["never/2.bin", "never/3.bin", "never/4.bin"]
    assert [(p, v) for p, v, _ in verdicts] == [("never/0.bin", "failed"), ("never/1.bin", "failed")]
    assert "max_incomplete_files" in caplog.text
    assert assembler.held_offsets() == {("t", 0): 2}
    assert len(list((out / ".labstream").rglob("*.part"))) == 3
    assembler.close()


def test_a_file_complete_with_its_first_chunk_evicts_nobody(
    out: Path, ledger: Ledger, verdicts: list[Verdict], clock: Clock
) -> None:
    """The limit is on incomplete files: a one-chunk file arriving when it is reached never
    was incomplete, so nobody is given up for it (whatever order partitions are read in)."""
    assembler = make(out, ledger, verdicts, clock, max_incomplete_files=2)
    for r in firsts(2):
        add(assembler, r)
    (whole,) = records("whole.bin", b"w" * 10, start=7)
    assert add(assembler, whole) is Outcome.COMPLETE
    assert [p for p, _, _ in assembler.incomplete()] == ["never/0.bin", "never/1.bin"]
    assert [(p, v) for p, v, _ in verdicts] == [("whole.bin", "verified")]  # nobody given up
    assembler.close()


def test_a_first_chunk_that_does_not_fit_evicts_nobody(
    out: Path, ledger: Ledger, verdicts: list[Verdict], clock: Clock
) -> None:
    assembler = make(out, ledger, verdicts, clock, max_incomplete_files=2)
    for r in firsts(2):
        add(assembler, r)
    assert add(assembler, rec(omsi(b"x" * 100, 1, 2, 2**62), 50)) is Outcome.FAILED
    assert [p for p, _, _ in assembler.incomplete()] == ["never/0.bin", "never/1.bin"]
    assert [p for p, _, _ in verdicts] == ["f.bin"]
    assembler.close()


def test_incomplete_bytes_are_bounded(
    out: Path, ledger: Ledger, verdicts: list[Verdict], clock: Clock
) -> None:
    assembler = make(out, ledger, verdicts, clock, max_file_size=4 * CHUNK, max_incomplete_bytes=20 * 4096)
    for r in firsts(30):
        add(assembler, r)
    assert 0 < len(assembler.incomplete()) < 30
    assert len(verdicts) == 30 - len(assembler.incomplete())
    assert "max_incomplete_bytes" in verdicts[0][2]
    on_disk = sum(p.stat().st_blocks * 512 for p in (out / ".labstream").rglob("*.part"))
    assert on_disk <= 20 * 4096
    assert deliver(assembler, "good.txt", b"good", 900) == [Outcome.COMPLETE]
    assembler.close()


def test_a_file_of_the_largest_size_still_arrives(
    out: Path, ledger: Ledger, verdicts: list[Verdict], clock: Clock
) -> None:
    size = 4 * 4096
    assembler = make(out, ledger, verdicts, clock, max_file_size=size, max_incomplete_bytes=size)
    for r in firsts(3):
        add(assembler, r)
    content = os.urandom(size)
    assert deliver(assembler, "largest.bin", content, 100)[-1] is Outcome.COMPLETE
    assert (out / "largest.bin").read_bytes() == content
    assembler.close()


def test_incomplete_files_expire_and_release_the_offsets(
    out: Path, ledger: Ledger, verdicts: list[Verdict], clock: Clock
) -> None:
    assembler = make(out, ledger, verdicts, clock, incomplete_timeout=60.0)
    pending = records("slow.bin", os.urandom(3 * CHUNK), start=5)
    add(assembler, pending[0])
    clock.now += 50
    add(assembler, pending[1])  # new bytes: the clock starts again
    clock.now += 50
    assert assembler.expire() == 0
    clock.now += 11
    assert assembler.expire() == 1
    assert assembler.held_offsets() == {} and assembler.incomplete() == []
    assert verdicts == [("slow.bin", "failed", "given up: no new chunk for 60 s (incomplete_timeout)")]
    assert not list((out / ".labstream").rglob("*.part"))
    assert add(assembler, pending[2]) is Outcome.DUPLICATE  # the rest is dropped quietly
    assembler.close()


def test_limits_refuse_nonsense() -> None:
    assert Limits.from_values({"max_file_size": "2TiB"}).max_incomplete_bytes == 2 << 40
    assert Limits.from_values({"max_incomplete_bytes": "1GiB"}).max_file_size == 1 << 30
    assert Limits.from_values({"incomplete_timeout": "90"}).incomplete_timeout == 90.0
    for bad in (
        {"max_file_size": "lots"},
        {"max_file_size": str(2**63)},
        {"max_incomplete_files": "0"},
        {"incomplete_timeout": "-1"},
    ):
        with pytest.raises(Exception, match=r"max_file_size|max_incomplete_files|incomplete_timeout"):
            Limits.from_values(bad)  # type: ignore[arg-type]


# --- stopping during a long hash ------------------------------------------------------


def test_stop_interrupts_hashing_from_disk(
    out: Path, ledger: Ledger, verdicts: list[Verdict], clock: Clock
) -> None:
    stop = threading.Event()
    assembler = make(out, ledger, verdicts, clock, stop=stop)
    chunks = records("long.bin", os.urandom(3 * 1024 * CHUNK))
    chunks = chunks[1:] + chunks[:1]  # out of order: hashed from disk at the end
    for r in chunks[:-1]:
        assembler.add(r)
    stop.set()
    assert assembler.add(chunks[-1]) is Outcome.INCOMPLETE
    assert assembler.held_offsets() == {("t", 0): 0} and verdicts == []
    assembler.close()


# --- logs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        omsi(b"x", 1, 1, "0\nFORGED level=CRITICAL"),
        omsi(b"x", 1, 1, "\x1b[2J\x1b[31m"),
        omsi(b"x", 1, 1, 0, name="evil\u2028line\u202e.txt".encode()),
        _raw(b"evil\nFORGED.txt"),
        _raw("evil\u0085\u009b31m.txt".encode()),
    ],
)
def test_hostile_text_cannot_forge_a_log_line(
    assembler: Assembler, caplog: pytest.LogCaptureFixture, value: bytes
) -> None:
    caplog.set_level(logging.DEBUG)
    assert add(assembler, rec(value)) is Outcome.REJECTED
    assert caplog.records
    for record in caplog.records:
        text = record.getMessage()
        assert not any(c in text for c in "\n\r\x1b\x85\x9b\u2028\u2029\u202e"), text
