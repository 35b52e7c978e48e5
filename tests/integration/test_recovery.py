"""Recover in seconds: a restarted downloader, a broker back, a node lost, space back (issue 18).

Each test measures, then asserts a generous bound; bench/recovery.py prints the figures."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from labstream import broker

from .conftest import labstream, stop_cluster
from .test_roundtrip import tree
from .watchproc import Watcher, start_download, wait_for

# Each test times a recovery: under xdist it runs alone, no other test of the run slows it.
pytestmark = pytest.mark.serial
OUTAGE_PORT = int(os.environ.get("LABSTREAM_TEST_RECOVERY_PORT", "31392"))
PROBLEM = re.compile(r" (WARNING|ERROR) ")


def upload(src: Path, config: Path, topic: str, names: list[str]) -> None:
    src.mkdir(exist_ok=True)
    for name in names:
        (src / name).write_bytes(os.urandom(50_000))
    labstream("upload", src, "--config", config, "--topic", topic)


def first_new(out: Path, seen: set[str]) -> bool:
    return out.exists() and bool(set(tree(out)) - seen)


def test_sigkilled_downloader_restarts_to_a_verified_file_within_seconds(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    src, out, log = tmp_path / "src", tmp_path / "out", tmp_path / "download.log"
    upload(src, config_file, topic, ["a.bin"])
    group = ("--group", f"{topic}-g")
    proc = start_download(out, config_file, topic, log, *group)
    wait_for(lambda: (out / "a.bin").exists())
    time.sleep(1.5)  # the auto-commit interval passes
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    upload(src, config_file, topic, ["b.bin"])
    started = time.monotonic()
    proc = start_download(out, config_file, topic, log, *group)
    try:
        wait_for(lambda: (out / "b.bin").exists(), timeout=60, every=0.05)
        seconds = time.monotonic() - started
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    # bench/recovery.py measured 0.5-1.4 s (interpreter start included); without static
    # membership (group.instance.id = none) 7.0-8.4 s, the dead member's session.
    assert seconds < 6.0, f"restart to first verified file took {seconds:.1f} s"
    assert tree(out) == tree(src)


@pytest.fixture
def own_broker() -> Iterator[str]:
    state = broker.start(OUTAGE_PORT)
    yield state.bootstrap
    broker.stop(OUTAGE_PORT)


def test_both_sides_resume_within_seconds_of_the_broker_and_log_calmly(
    own_broker: str, tmp_path: Path, topic: str
) -> None:
    config = tmp_path / "outage.config"
    config.write_text(f"[cluster]\nbootstrap.servers = {own_broker}\n")
    root, out, log = tmp_path / "instrument", tmp_path / "out", tmp_path / "download.log"
    root.mkdir()
    watcher = Watcher(root, config, topic, tmp_path / "state", "--chunk-size", "65536")
    downloader = start_download(out, config, topic, log)
    try:
        (root / "before.bin").write_bytes(os.urandom(100_000))
        wait_for(lambda: (out / "before.bin").exists())
        marks = (len(watcher.text().splitlines()), len(log.read_text().splitlines()))
        broker.stop(OUTAGE_PORT)
        for i in range(5):
            (root / f"during{i}.bin").write_bytes(os.urandom(100_000))
        wait_for(lambda: "all Kafka brokers are unreachable" in watcher.text(), timeout=60)
        time.sleep(12)  # longer than one rate-limit interval: each condition may log again
        broker.start(OUTAGE_PORT)
        back = time.monotonic()
        wait_for(lambda: first_new(out, {"before.bin"}), timeout=60, every=0.05)
        resumed = time.monotonic() - back
        wait_for(lambda: tree(out) == tree(root), timeout=120)
        time.sleep(3)  # stale warnings after the recovery would show up here
    finally:
        downloader.send_signal(signal.SIGTERM)
        downloader.wait(60)
    assert watcher.stop() == 0
    assert downloader.returncode == 0, log.read_text()[-2000:]
    problems = [
        line
        for text, mark in ((watcher.text(), marks[0]), (log.read_text(), marks[1]))
        for line in text.splitlines()[mark:]
        if PROBLEM.search(line) and "stopping cleanly" not in line
    ]
    # One run here: 26 problem lines over both logs for a ~20 s outage; issue 18 saw 10 s
    # to resume and thousands of lines.
    assert resumed < 6.0, f"first file downstream {resumed:.1f} s after the broker answered"
    assert len(problems) <= 40, "\n".join(problems)
    for text in (watcher.text(), log.read_text()):
        lines = text.splitlines()
        back = max(i for i, line in enumerate(lines) if "Kafka answers again" in line)
        stale = [
            line for line in lines[back + 1 :] if PROBLEM.search(line) and "stopping cleanly" not in line
        ]
        assert not stale, "\n".join(stale)


def test_writing_resumes_within_a_second_of_space_returning(
    small_disk: Path, tmp_path: Path, config_file: Path, topic: str
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        (src / f"frame{i}.raw").write_bytes(os.urandom(1024 * 1024))
    labstream("upload", src, "--config", config_file, "--topic", topic, "--chunk-size", "65536")
    out, log = small_disk / "out", tmp_path / "download.log"
    proc = start_download(out, config_file, topic, log, "--group", f"{topic}-g")
    try:
        wait_for(lambda: "cannot write the output folder; waiting" in log.read_text())
        time.sleep(8)  # the old back-off would by now wait 8 s or more between attempts
        before = set(tree(out))
        subprocess.run(["mount", "-o", "remount,size=32m", str(small_disk)], check=True)
        grown = time.monotonic()
        wait_for(lambda: first_new(out, before), timeout=60, every=0.05)
        resumed = time.monotonic() - grown
        wait_for(lambda: tree(out) == tree(src), timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert proc.returncode == 0, log.read_text()[-2000:]
    # Space is probed every 0.25 s; the old doubling back-off waited its full delay (6.6 s seen).
    assert resumed < 3.0, f"first file {resumed:.1f} s after space returned"


CLUSTER_PORTS = [29692, 29693, 29694]  # below the ephemeral range (restarts rebind them)


@pytest.fixture
def cluster() -> Iterator[str]:
    broker.start_cluster(CLUSTER_PORTS)
    yield ",".join(f"127.0.0.1:{p}" for p in CLUSTER_PORTS)
    stop_cluster(CLUSTER_PORTS)


def coordinator_port(bootstrap: str, group: str) -> int:
    """The port of the broker coordinating `group` (node ids are 1.. in port order)."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    found = admin.describe_consumer_groups([group], request_timeout=10)[group].result(15)
    return CLUSTER_PORTS[found.coordinator.id - 1]


def longest_gap(since: float, times: Iterable[float]) -> float:
    after = [since, *sorted(t for t in times if t >= since)]
    return max(b - a for a, b in itertools.pairwise(after))


def test_one_of_three_brokers_killed_pauses_the_pipeline_for_seconds(
    cluster: str, tmp_path: Path, topic: str
) -> None:
    config = tmp_path / "cluster.config"
    config.write_text(f"[cluster]\nbootstrap.servers = {cluster}\n")
    root, out, log = tmp_path / "instrument", tmp_path / "out", tmp_path / "download.log"
    root.mkdir()
    watcher = Watcher(root, config, topic, tmp_path / "state", "--settle-seconds", "0.3")
    group = f"{topic}-g"
    downloader = start_download(out, config, topic, log, "--group", group)
    arrivals: dict[str, float] = {}

    def arrived() -> int:
        for path in out.glob("f*") if out.exists() else []:
            arrivals.setdefault(path.name, time.monotonic())
        return len(arrivals)

    killed = float("inf")
    try:
        for i in range(100):
            (root / f"f{i:03d}").write_bytes(os.urandom(20_000))
            if i == 20:
                wait_for(lambda: arrived() >= 10)
                # The group's coordinator: the worst node to lose (leaderships and the group).
                os.kill(broker.status(coordinator_port(cluster, group)).pid or 0, signal.SIGKILL)
                killed = time.monotonic()
            arrived()
            time.sleep(0.1)  # a steady instrument: ten files a second
        wait_for(lambda: arrived() >= 100, timeout=120, every=0.05)
    finally:
        downloader.send_signal(signal.SIGTERM)
        downloader.wait(60)
    assert watcher.stop() == 0
    pause = longest_gap(killed, arrivals.values())
    # bench/recovery.py, coordinator killed: before 9.4-11.6 s (the controller fenced the dead
    # node after its 9 s broker session), after 1.9-3.3 s.
    assert pause < 8.0, f"no file arrived for {pause:.1f} s after the kill"
    assert tree(out) == tree(root)
    verified = Counter(re.findall(r"file verified file=(\S+)", log.read_text()))
    assert max(verified.values()) == 1, "a file presented twice"
