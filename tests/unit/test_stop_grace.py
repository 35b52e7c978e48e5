"""A stopped downloader may finish a file it mostly has, within a bounded grace (issue 18).

The downloader runs against the in-memory Kafka (labstream.kafka.memory), a real
implementation of the consumer interface."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from labstream.download import Downloader
from labstream.download.options import DownloadOptions
from labstream.kafka.memory import MemoryBroker
from labstream.wire import Chunk, encode, n_chunks_for

CHUNK = 1024
TOPIC = "t"
GROUP = "g"


def chunks(path: str, content: bytes) -> list[bytes]:
    digest = hashlib.sha256(content).digest()
    n = n_chunks_for(len(content), CHUNK)
    return [
        encode(Chunk(path, len(content), digest, i, n, CHUNK, content[i * CHUNK : (i + 1) * CHUNK]))
        for i in range(n)
    ]


def send(kafka: MemoryBroker, path: str, values: list[bytes]) -> None:
    with kafka.producer() as producer:
        for value in values:
            producer.send(TOPIC, path.encode(), value, lambda _error: None)


def partition_of(path: str) -> int:
    return zlib.crc32(path.encode()) % 4  # as MemoryBroker places keys


def wait_for(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def kafka() -> MemoryBroker:
    memory = MemoryBroker()
    memory.create_topic(TOPIC)
    return memory


@pytest.fixture
def big() -> tuple[str, bytes]:
    return "big.raw", os.urandom(20 * CHUNK)


@pytest.fixture
def late() -> str:
    """A file name in another partition than big.raw's."""
    return next(f"late{i}.bin" for i in range(100) if partition_of(f"late{i}.bin") != partition_of("big.raw"))


class Running:
    """A downloader in a thread, stopped from the test."""

    def __init__(self, out: Path, grace: float, kafka: MemoryBroker) -> None:
        self.handled = 0
        self.stop = threading.Event()
        self.downloader = Downloader(
            {"group.id": GROUP},
            TOPIC,
            out,
            DownloadOptions(stop_grace_seconds=grace),
            stop=self.stop,
            on_outcome=self._count,
            clients=kafka,
        )
        self.thread = threading.Thread(target=self.downloader.run, name="labstream-test-download")
        self.thread.start()

    def _count(self, *_: object) -> None:
        self.handled += 1

    def join(self) -> float:
        started = time.monotonic()
        self.thread.join(30)
        return time.monotonic() - started


@pytest.fixture
def running() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for run in started:
        run.stop.set()
        run.thread.join(30)


def test_a_file_mostly_received_finishes_after_the_stop_and_nothing_new_starts(
    kafka: MemoryBroker,
    tmp_path: Path,
    big: tuple[str, bytes],
    late: str,
    running: list[Running],
    caplog: pytest.LogCaptureFixture,
) -> None:
    name, content = big
    parts = chunks(name, content)
    send(kafka, name, parts[:15])
    run = Running(tmp_path / "out", grace=10.0, kafka=kafka)
    running.append(run)
    wait_for(lambda: run.handled == 15)
    with caplog.at_level(logging.INFO, logger="labstream.download.downloader"):
        run.stop.set()
        wait_for(lambda: "stopping after files mostly received" in caplog.text)
        send(kafka, name, parts[15:])
        send(kafka, late, chunks(late, b"new after the stop"))
        run.join()
    assert (tmp_path / "out" / name).read_bytes() == content
    assert not (tmp_path / "out" / late).exists()
    committed = kafka.committed(GROUP)
    assert committed[(TOPIC, partition_of(name))] == 20
    assert committed.get((TOPIC, partition_of(late)), 0) == 0, "the late file would be skipped"


def test_without_grace_the_file_is_left_and_its_offsets_are_held(
    kafka: MemoryBroker, tmp_path: Path, big: tuple[str, bytes], running: list[Running]
) -> None:
    name, content = big
    send(kafka, name, chunks(name, content)[:15])
    run = Running(tmp_path / "out", grace=0.0, kafka=kafka)
    running.append(run)
    wait_for(lambda: run.handled == 15)
    run.stop.set()
    run.join()
    assert not (tmp_path / "out" / name).exists()
    assert kafka.committed(GROUP).get((TOPIC, partition_of(name)), 0) == 0


def test_the_grace_is_bounded_when_the_rest_never_comes(
    kafka: MemoryBroker, tmp_path: Path, big: tuple[str, bytes], running: list[Running]
) -> None:
    name, content = big
    send(kafka, name, chunks(name, content)[:15])
    run = Running(tmp_path / "out", grace=1.0, kafka=kafka)
    running.append(run)
    wait_for(lambda: run.handled == 15)
    run.stop.set()
    took = run.join()
    assert not run.thread.is_alive()
    assert 0.5 < took < 10.0, f"stopped {took:.1f} s after the stop (grace 1 s)"
    assert not (tmp_path / "out" / name).exists()
    assert kafka.committed(GROUP).get((TOPIC, partition_of(name)), 0) == 0
