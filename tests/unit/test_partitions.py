"""Partitions: the setting from file and command line, the runners' topics, doctor's advice."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from labstream.config import Config, load_config
from labstream.doctor.check import Status
from labstream.doctor.partitions import check_partitions
from labstream.errors import ConfigError
from labstream.kafka.groups import GroupMembers, _members_on
from labstream.kafka.memory import MemoryBroker
from labstream.runners import run_download
from labstream.settings import download_settings, process_settings, upload_settings, watch_settings


def _config(tmp_path: Path, extra: str = "") -> Config:
    path = tmp_path / "p.config"
    path.write_text(f"[cluster]\nbootstrap.servers = 127.0.0.1:1\n[labstream]\ntopic_name = t\n{extra}")
    return load_config(path)


def test_partitions_default_to_4_and_come_from_the_file_for_every_role(tmp_path: Path) -> None:
    (tmp_path / "w").mkdir()
    assert download_settings(_config(tmp_path), {"out_dir": tmp_path / "o"}).partitions == 4
    config = _config(tmp_path, "partitions = 12\n")
    state = tmp_path.parent / f"{tmp_path.name}-state"
    assert watch_settings(config, {"file_directory": tmp_path / "w", "state": state}).partitions == 12
    assert download_settings(config, {"out_dir": tmp_path / "o"}).partitions == 12
    assert process_settings(config, {"processor": "metadata"}).partitions == 12
    assert upload_settings(config, {}).partitions == 12


def test_partitions_on_the_command_line_beat_the_file(tmp_path: Path) -> None:
    config = _config(tmp_path, "partitions = 12\n")
    assert upload_settings(config, {"partitions": 6}).partitions == 6


def test_zero_partitions_are_refused_naming_the_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="partitions 0: a topic needs at least 1 partition"):
        upload_settings(_config(tmp_path, "partitions = 0\n"), {})


def test_a_downloader_creates_its_topic_with_the_partitions_asked(tmp_path: Path) -> None:
    broker = MemoryBroker()
    given = {"out_dir": tmp_path / "o", "exit_when_idle": 0.2, "partitions": 7, "heartbeat_seconds": 0}
    run_download(download_settings(_config(tmp_path), given), threading.Event(), clients=broker)
    assert len(broker._topics["t"]) == 7


def test_more_members_than_partitions_is_a_warning_naming_the_idle_ones() -> None:
    check = check_partitions("data", 2, [GroupMembers("g1", 3, 2), GroupMembers("g2", 2, 2)])
    assert check.status is Status.WARN
    assert "g1 (3 members)" in check.detail and "g2" not in check.detail
    assert "1 member(s) receive nothing" in check.detail
    assert "kafka-topics.sh --alter --topic data --partitions N" in check.fix


def test_a_one_partition_topic_read_by_a_group_gets_advice_without_a_warning() -> None:
    check = check_partitions("data", 1, [GroupMembers("g", 1, 1)])
    assert check.status is Status.INFO
    assert "can use one consumer only" in check.detail and "--partitions N" in check.fix


def test_members_within_the_partitions_and_unread_topics_pass() -> None:
    assert check_partitions("data", 4, [GroupMembers("g", 4, 4)]).status is Status.OK
    assert check_partitions("data", 1, []).status is Status.OK


def _member(*assigned: tuple[str, int]) -> SimpleNamespace:
    parts = [SimpleNamespace(topic=t, partition=p) for t, p in assigned]
    return SimpleNamespace(assignment=SimpleNamespace(topic_partitions=parts))


def test_a_group_counts_its_empty_handed_members_and_ignores_other_topics() -> None:
    members = [_member(("data", 0)), _member(("data", 1)), _member()]
    assert _members_on(members, "data") == (3, 2)
    assert _members_on([_member(("other", 0)), _member()], "data") is None
    assert _members_on([_member(("other", 0)), _member(("data", 0))], "data") == (1, 1)
