"""Senders in wire v2 read each byte once, and never let a file that changed be presented."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from labstream.download import Assembler, Ledger, Outcome
from labstream.errors import ConfigError
from labstream.kafka.memory import MemoryBroker, MemoryProducer
from labstream.upload import RateLimiter, SourceFile, Uploader, parse_rate
from labstream.upload.uploader import POLL_SECONDS
from labstream.wire import decode, wire_format

CHUNK = 64 * 1024


def download(broker: MemoryBroker, out: Path) -> list[Outcome]:
    with Ledger(out / ".labstream" / "ledger.sqlite") as ledger:
        assembler = Assembler(out, ledger)
        outcomes = [assembler.add(r) for r in broker.messages("t")]
        assembler.commit()
        assembler.close()
    return outcomes


def upload(broker: MemoryBroker, files: list[SourceFile], **kwargs: object) -> object:
    with broker.producer() as producer:
        return Uploader(producer, "t", chunk_size=CHUNK, **kwargs).upload(files)  # type: ignore[arg-type]


def _read_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def test_v2_upload_reads_each_byte_once_and_reports_the_sha256(tmp_path: Path) -> None:
    content = os.urandom(8 << 20)
    (tmp_path / "big.bin").write_bytes(content)
    broker = MemoryBroker()
    before = _read_bytes()
    report = upload(broker, [SourceFile(tmp_path / "big.bin", "big.bin")])
    read = _read_bytes() - before
    assert len(content) <= read < 1.05 * len(content)  # v1 reads it twice: hash, then send
    assert report.sent[0].sha256 == hashlib.sha256(content).digest()  # type: ignore[attr-defined]
    assert {decode(r.value).wire_version for r in broker.messages("t")} == {2}
    assert download(broker, tmp_path / "out")[-1] is Outcome.COMPLETE
    assert (tmp_path / "out" / "big.bin").read_bytes() == content


def test_v1_stays_writable(tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(b"x" * (3 * CHUNK))
    broker = MemoryBroker()
    upload(broker, [SourceFile(tmp_path / "f.bin", "f.bin")], wire=wire_format("labstream-v1"))
    assert {decode(r.value).wire_version for r in broker.messages("t")} == {1}
    download(broker, tmp_path / "out")
    assert (tmp_path / "out" / "f.bin").read_bytes() == b"x" * (3 * CHUNK)


class RewritingLimiter(RateLimiter):
    """A writer racing the sender: at chunk `at`, it rewrites the middle of the file and
    sets its mtime back, as a careless instrument program (or a `utime` trick) would."""

    def __init__(self, path: Path, at: int) -> None:
        super().__init__(1e12)
        self._path, self._at, self._seen = path, at, 0

    def take(self, nbytes: int) -> None:
        self._seen += 1
        if self._seen == self._at:
            st = self._path.stat()
            with open(self._path, "r+b") as handle:
                handle.seek(st.st_size // 2)
                handle.write(b"REWRITTEN" * 100)
            os.utime(self._path, ns=(st.st_atime_ns, st.st_mtime_ns))
            assert self._path.stat().st_mtime_ns == st.st_mtime_ns


# The rewrite happens before chunk `at` is produced: before the middle is read, after it,
# and just before the last chunk is read.
@pytest.mark.parametrize("at", [2, 10, 16 - 1])
def test_file_rewritten_during_upload_with_mtime_restored_is_never_presented(tmp_path: Path, at: int) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(16 * CHUNK))
    broker = MemoryBroker()
    with broker.producer() as producer:
        uploader = Uploader(producer, "t", chunk_size=CHUNK)
        uploader._sender._rate = RewritingLimiter(path, at)
        report = uploader.upload([SourceFile(path, "big.bin")])
    assert "changed while it was sent" in report.failed["big.bin"] and report.sent == []
    last = decode(broker.messages("t")[-1].value)
    assert last.aborted and last.file_id == decode(broker.messages("t")[0].value).file_id
    assert Outcome.COMPLETE not in download(broker, tmp_path / "out")
    assert not (tmp_path / "out" / "big.bin").exists()


class ThreadWatchingLimiter(RateLimiter):
    """Notes, each time a chunk is about to be produced, which hashing threads are running."""

    def __init__(self) -> None:
        super().__init__(1e12)
        self.hashing_threads: set[str] = set()

    def take(self, nbytes: int) -> None:
        names = {t.name for t in threading.enumerate() if t.name.startswith("labstream-hash")}
        self.hashing_threads |= names


def test_large_file_is_hashed_on_a_second_thread_while_its_chunks_are_produced(tmp_path: Path) -> None:
    content = os.urandom(32 * CHUNK + 123)
    (tmp_path / "big.bin").write_bytes(content)
    broker = MemoryBroker()
    with broker.producer() as producer:
        uploader = Uploader(producer, "t", chunk_size=CHUNK)
        watcher = ThreadWatchingLimiter()
        uploader._sender._rate = watcher
        report = uploader.upload([SourceFile(tmp_path / "big.bin", "big.bin")])
    assert watcher.hashing_threads  # the SHA-256 overlaps reading and producing
    assert report.sent[0].sha256 == hashlib.sha256(content).digest()
    last = decode(broker.messages("t")[-1].value)
    assert last.file_digest == hashlib.sha256(content).digest()
    assert download(broker, tmp_path / "out")[-1] is Outcome.COMPLETE
    assert (tmp_path / "out" / "big.bin").read_bytes() == content


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_rate_limit_holds_within_one_percent_over_30_seconds() -> None:
    clock = FakeClock()
    limiter = RateLimiter(20 << 20, clock=clock, sleep=clock.sleep)
    sent = 0
    while clock.now < 30.0:
        limiter.take(CHUNK * 8)
        sent += CHUNK * 8
        clock.now += 0.001  # the work of producing
    assert abs(sent / clock.now / (20 << 20) - 1) < 0.01


@pytest.mark.parametrize(
    ("text", "rate"),
    [("20MiB/s", 20 << 20), ("500KB/s", 500_000), ("1.5 GiB/s", 1.5 * (1 << 30)), ("1048576", 1 << 20)],
)
def test_rates_parse(text: str, rate: float) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "fast", "0MiB/s", "20 MiB per s", "-1MB/s", "20PiB/s"])
def test_bad_rates_are_one_clear_error(text: str) -> None:
    with pytest.raises(ConfigError, match="rate"):
        parse_rate(text)


class CountingProducer(MemoryProducer):
    """Counts the polls made from the thread that created it (the upload's main thread)."""

    def __init__(self, broker: MemoryBroker) -> None:
        super().__init__(broker)
        self.main = threading.get_ident()
        self.main_polls = 0

    def poll(self, timeout: float = 0.0) -> None:
        if threading.get_ident() == self.main:
            self.main_polls += 1
        super().poll(timeout)


def test_upload_main_thread_polls_now_and_then_not_per_delivery_report(tmp_path: Path) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(64 * CHUNK))
    producer = CountingProducer(MemoryBroker())
    started = time.monotonic()
    report = Uploader(producer, "t", chunk_size=CHUNK, threads=2).upload(
        [SourceFile(tmp_path / "big.bin", "b")]
    )
    elapsed = time.monotonic() - started
    assert report.files == 1  # type: ignore[attr-defined]
    # One poll per POLL_SECONDS wait, plus one more each time a worker ends the wait early.
    assert producer.main_polls <= elapsed / POLL_SECONDS + 2 + 1
