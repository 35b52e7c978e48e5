"""The broker goes away and comes back: the watcher queues, the downloader waits, nothing lost."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labstream import broker

from .test_roundtrip import tree
from .watchproc import Watcher, start_download, wait_for

OUTAGE_PORT = int(os.environ.get("LABSTREAM_TEST_OUTAGE_PORT", "29392"))


@pytest.fixture
def own_broker() -> Iterator[str]:
    """A broker of this test's own, so stopping it disturbs no other test."""
    state = broker.start(OUTAGE_PORT)
    yield state.bootstrap
    broker.stop(OUTAGE_PORT)


def test_watcher_and_downloader_ride_out_a_broker_outage(own_broker: str, tmp_path: Path, topic: str) -> None:
    config = tmp_path / "outage.config"
    config.write_text(f"[cluster]\nbootstrap.servers = {own_broker}\n")
    root, out = tmp_path / "instrument", tmp_path / "out"
    root.mkdir()
    watcher = Watcher(root, config, topic, tmp_path / "state", "--chunk-size", "65536")
    log = tmp_path / "download.log"
    downloader = start_download(out, config, topic, log)
    try:
        (root / "before.bin").write_bytes(os.urandom(300_000))
        wait_for(lambda: (out / "before.bin").exists())
        broker.stop(OUTAGE_PORT)
        for i in range(20):
            (root / f"during{i:02d}.bin").write_bytes(os.urandom(200_000))
        wait_for(lambda: "all Kafka brokers are unreachable" in watcher.text(), timeout=60)
        time.sleep(3)
        assert watcher.proc.poll() is None and downloader.poll() is None
        assert "sent" not in {s for k, s in watcher.statuses().items() if k.startswith("during")}
        broker.start(OUTAGE_PORT)
        wait_for(lambda: tree(out) == tree(root), timeout=180)
    finally:
        downloader.send_signal(signal.SIGTERM)
        downloader.wait(60)
    assert watcher.stop() == 0
    assert downloader.returncode == 0, log.read_text()[-2000:]
    assert list(watcher.statuses().values()).count("sent") == 21


def test_files_not_acknowledged_during_a_long_outage_are_sent_again_when_it_ends(
    own_broker: str, tmp_path: Path, topic: str
) -> None:
    """An outage longer than message.timeout.ms: the deliveries fail, the files stay `sending`
    (never `failed`) and go out again once the broker is back; nothing is lost."""
    config = tmp_path / "outage.config"
    config.write_text(f"[cluster]\nbootstrap.servers = {own_broker}\n[producer]\nmessage.timeout.ms = 3000\n")
    root, out = tmp_path / "instrument", tmp_path / "out"
    root.mkdir()
    watcher = Watcher(root, config, topic, tmp_path / "state", "--chunk-size", "65536")
    (root / "before.bin").write_bytes(os.urandom(100_000))
    wait_for(lambda: watcher.statuses().get("before.bin") == "sent")
    broker.stop(OUTAGE_PORT)
    for i in range(3):
        (root / f"during{i}.bin").write_bytes(os.urandom(300_000))
    wait_for(lambda: watcher.text().count("file not acknowledged") >= 3, timeout=90)
    assert {watcher.statuses()[f"during{i}.bin"] for i in range(3)} <= {"sending", "queued"}
    broker.start(OUTAGE_PORT)
    wait_for(lambda: list(watcher.statuses().values()).count("sent") == 4, timeout=180)
    assert watcher.stop() == 0
    assert "sending again a file not acknowledged" in watcher.text()
    log = tmp_path / "download.log"
    downloader = start_download(out, config, topic, log, "--exit-when-idle", "5")
    assert downloader.wait(120) == 0, log.read_text()[-2000:]
    assert tree(out) == tree(root)
