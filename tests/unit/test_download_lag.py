"""The lag a downloader shows moves as messages are read, not only when files complete: its
committed offsets are held at the first chunk of a file in progress (by design), so the lag
counts from the member's read position where that is further.

The downloader runs against the in-memory Kafka (labstream.kafka.memory)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from labstream.download import Downloader
from labstream.download.options import DownloadOptions
from labstream.kafka.lag import unread
from labstream.kafka.memory import MemoryBroker
from labstream.wire import encode

from .test_wire_v2 import v2_chunks_of

TOPIC = "t"


def test_unread_counts_from_a_members_position_past_the_committed_offset() -> None:
    ends = {0: 100, 1: 50, 2: 10}
    committed = {0: 20, 1: -1, 2: 5}  # partition 1: nothing committed yet
    assert unread(ends, committed, {}) == 80 + 50 + 5
    assert unread(ends, committed, {0: 90, 1: 40}) == 10 + 10 + 5
    assert unread(ends, committed, {0: 10}) == 80 + 50 + 5  # a position behind the commit: the commit
    assert unread(ends, {0: 120}, {}) == 50 + 10  # never negative


def test_a_large_file_in_progress_holds_the_commit_but_the_position_moves(tmp_path: Path) -> None:
    kafka = MemoryBroker()
    kafka.create_topic(TOPIC, partitions=1)
    chunks = v2_chunks_of("big.bin", os.urandom(10 << 10), 1 << 10)  # 10 chunks
    with kafka.producer() as producer:
        for chunk in chunks[:6]:  # the file is 60% here
            producer.send(TOPIC, chunk.path.encode(), encode(chunk), lambda _error: None)
    stop = threading.Event()
    options = DownloadOptions(stop_grace_seconds=0)  # stop at once, the file unfinished
    downloader = Downloader({"group.id": "g"}, TOPIC, tmp_path / "out", options, stop=stop, clients=kafka)
    worker = threading.Thread(target=downloader.run)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while downloader.positions() != {0: 6} and time.monotonic() < deadline:
            time.sleep(0.02)
        assert downloader.positions() == {0: 6}
        committed = {p: o for (_, p), o in kafka.committed("g").items()}
        assert committed.get(0, 0) == 0  # held at the file's first chunk until it is complete
        assert kafka.group_lag({}, "g", TOPIC).messages == 6  # the committed lag stands still
        assert unread({0: 6}, committed, downloader.positions()) == 0  # what is read moves on
    finally:
        stop.set()
        worker.join()
    assert downloader.positions() == {}  # no worker: no position claimed
