"""Three brokers (KRaft), replication 3, min.insync.replicas 2: kill -9 one mid-stream."""

from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from labstream import broker

from .conftest import stop_cluster
from .test_roundtrip import tree
from .watchproc import Watcher, start_download, wait_for

PORTS = [29492, 29493, 29494]


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    broker.start_cluster(PORTS)
    yield ",".join(f"127.0.0.1:{p}" for p in PORTS)
    stop_cluster(PORTS)


def test_kill_9_of_one_broker_loses_and_duplicates_nothing(cluster: str, tmp_path: Path, topic: str) -> None:
    config = tmp_path / "cluster.config"
    config.write_text(f"[cluster]\nbootstrap.servers = {cluster}\n")
    root, out = tmp_path / "instrument", tmp_path / "out"
    root.mkdir()
    watcher = Watcher(root, config, topic, tmp_path / "state", "--chunk-size", "65536")
    log = tmp_path / "download.log"
    downloader = start_download(out, config, topic, log)
    victim = PORTS[1]
    try:
        for i in range(60):
            (root / f"small{i:02d}.dat").write_bytes(os.urandom(20_000 + i))
        (root / "large").mkdir()
        (root / "large" / "a.raw").write_bytes(os.urandom(30 * 1024 * 1024))
        wait_for(lambda: len(tree(out)) >= 10 if out.exists() else False)
        os.kill(broker.status(victim).pid or 0, signal.SIGKILL)
        for i in range(60, 120):
            (root / f"small{i:02d}.dat").write_bytes(os.urandom(20_000 + i))
        (root / "large" / "b.raw").write_bytes(os.urandom(30 * 1024 * 1024))
        time.sleep(5)
        broker.start_cluster(PORTS, only=victim)
        wait_for(lambda: out.exists() and tree(out) == tree(root), timeout=300)
        assert watcher.proc.poll() is None and downloader.poll() is None, "a process gave up"
    finally:
        downloader.send_signal(signal.SIGTERM)
        downloader.wait(60)
    assert watcher.stop() == 0
    verified = Counter(re.findall(r"file verified file=(\S+)", log.read_text()))
    assert set(verified) == set(tree(root)) and max(verified.values()) == 1, "a file written twice"
