"""Which dashboard row a process is: members of one consumer group on one host are one row
each (keyed by their output or work folder), a restarted member keeps its row, and a beat
from an older sender (one instance per host and group, no folder) still parses and shows."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from labstream.config import Config
from labstream.dashboard.store import Store
from labstream.dashboard.views import fleet
from labstream.heartbeat import parse_heartbeat
from labstream.kafka.memory import MemoryBroker
from labstream.runners.telemetry import group_monitoring
from labstream.settings import Telemetry

CONFIG = Config("memory.config", {"cluster": {"bootstrap.servers": "127.0.0.1:1"}})
TOPIC = "beats"


class _Report:
    files, failed, bytes = 3, 0, 300


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "d.sqlite") as opened:
        yield opened


def _members_beat(broker: MemoryBroker, places: list[Path]) -> None:
    """One heartbeat (and the last, "stopped") from a downloader of group g per place."""
    telemetry = Telemetry(heartbeat_seconds=60.0, heartbeat_topic=TOPIC)
    with ExitStack() as stack:
        for place in places:
            stack.enter_context(
                group_monitoring(
                    CONFIG,
                    telemetry,
                    role="download",
                    topic="t",
                    group="g",
                    place=place,
                    report=_Report,
                    key=None,
                    clients=broker,
                )
            )


def _store_beats(broker: MemoryBroker, store: Store) -> None:
    store.add_heartbeats([parse_heartbeat(r.value) for r in broker.messages(TOPIC)])


def test_four_downloaders_of_one_group_on_one_host_are_four_instances(tmp_path: Path, store: Store) -> None:
    broker = MemoryBroker()
    places = [tmp_path / f"out-{i}" for i in range(4)]
    _members_beat(broker, places)
    _store_beats(broker, store)
    consumers = fleet(store)["consumers"]
    assert len(consumers) == 4
    assert len({c["host"] for c in consumers}) == 1 and {c["grp"] for c in consumers} == {"g"}
    assert sorted(c["folder"] for c in consumers) == sorted(str(p.resolve()) for p in places)


def test_a_restarted_downloader_keeps_its_row(tmp_path: Path, store: Store) -> None:
    broker = MemoryBroker()
    for _run in range(2):
        _members_beat(broker, [tmp_path / "out"])
    _store_beats(broker, store)
    (row,) = fleet(store)["consumers"]
    assert row["folder"] == str((tmp_path / "out").resolve()) and row["state"] == "stopped"


def test_a_beat_from_an_older_downloader_without_folder_still_parses_and_shows(store: Store) -> None:
    now = time.time()
    older = {  # as a sender from before per-folder instances, run/seq and folder wrote it
        "v": 1,
        "instance": "download@srv:t/g",
        "role": "download",
        "host": "srv",
        "pid": 41,
        "version": "0.1.0",
        "started": now - 60,
        "at": now,
        "interval": 10.0,
        "state": "running",
        "topic": "t",
        "group": "g",
        "verified": 5,
    }
    store.add_heartbeats([parse_heartbeat(json.dumps(older).encode())])
    (row,) = fleet(store)["consumers"]
    assert (row["instance"], row["host"], row["grp"], row["verified"], row["folder"]) == (
        "download@srv:t/g",
        "srv",
        "g",
        5,
        "",
    )
    assert row["state"] == "alive"
