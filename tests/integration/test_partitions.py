"""Partitions on the real broker: the count asked for, one partition per send, doctor's advice."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from labstream.config import load_config
from labstream.download import Downloader
from labstream.download.options import DownloadOptions
from labstream.kafka import consumer_settings, describe_topic, ensure_topic, producer_settings, read_topic
from labstream.kafka.groups import topic_groups
from labstream.wire.codec import decode

from .conftest import labstream


def _partitions(config_file: Path, topic: str) -> int:
    info = describe_topic(producer_settings(load_config(config_file)), topic)
    assert info is not None
    return info.partitions


def test_upload_with_partitions_6_creates_a_topic_of_6_partitions(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    (tmp_path / "a.bin").write_bytes(os.urandom(1000))
    labstream("upload", "-c", config_file, "-t", topic, "--partitions", "6", tmp_path / "a.bin")
    assert _partitions(config_file, topic) == 6


def test_partitions_in_the_config_section_sizes_the_topic_a_downloader_creates(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    config = tmp_path / "sized.config"
    config.write_text(config_file.read_text() + "\n[labstream]\npartitions = 3\n")
    labstream("download", "-c", config, "-t", topic, tmp_path / "out", "--exit-when-idle", "1")
    assert _partitions(config_file, topic) == 3


def test_every_chunk_of_a_send_lands_in_one_partition_in_order(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    for i in range(12):
        (tmp_path / f"f{i}.bin").write_bytes(os.urandom(20_000))
    labstream(
        "upload",
        "-c",
        config_file,
        "-t",
        topic,
        "--partitions",
        "6",
        "--chunk-size",
        "4096",
        *tmp_path.glob("*.bin"),
    )
    where: dict[str, set[int]] = {}
    order: dict[str, list[int]] = {}
    for timed in read_topic(consumer_settings(load_config(config_file), None), topic):
        chunk = decode(timed.record.value)
        where.setdefault(chunk.path, set()).add(timed.record.partition)
        order.setdefault(chunk.path, []).append(chunk.index)
    assert len(where) == 12
    assert all(len(parts) == 1 for parts in where.values())
    assert len(set().union(*where.values())) > 1  # the files themselves spread out
    assert all(indexes == sorted(indexes) and len(indexes) == 5 for indexes in order.values())


def test_doctor_warns_when_3_consumers_share_a_2_partition_topic(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    config = load_config(config_file)
    ensure_topic(producer_settings(config), topic, partitions=2)
    group = f"crowded-{topic}"
    stop = threading.Event()
    downloader = Downloader(
        consumer_settings(config, group),
        topic,
        tmp_path / "out",
        DownloadOptions(consumer_threads=3),
        stop=stop,
    )
    worker = threading.Thread(target=downloader.run)
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = topic_groups(producer_settings(config), topic)
            if found and found[0].members == 3:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"the group never showed 3 members: {found}")
        done = labstream(
            "doctor", "-c", config_file, "-t", topic, "--role", "download", "-g", group, "--json"
        )
    finally:
        stop.set()
        worker.join(60)
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["partitions"]["status"] == "warn"
    assert f"{group} (3 members)" in checks["partitions"]["detail"]
    assert "1 member(s) receive nothing" in checks["partitions"]["detail"]
    assert "--partitions" in checks["partitions"]["fix"]
