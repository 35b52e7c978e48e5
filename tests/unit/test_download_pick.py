"""The download's default group, start position and file picking, without a broker."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from labstream.config import Config
from labstream.errors import ConfigError
from labstream.settings import download_group, download_settings
from labstream.wire import Chunk, encode, peek_path
from labstream.wire.v2 import encode_v2, new_file_id

PLAIN = Config("t.config", {"cluster": {"bootstrap.servers": "127.0.0.1:1"}})
WITH_GROUP = Config("t.config", {"cluster": {"bootstrap.servers": "x:1"}, "consumer": {"group.id": "mine"}})


def test_the_default_group_belongs_to_the_output_folder(tmp_path: Path) -> None:
    one = download_group(PLAIN, None, tmp_path / "one")
    assert one == download_group(PLAIN, None, tmp_path / "one" / ".." / "one")  # same folder, same group
    assert one != download_group(PLAIN, None, tmp_path / "two")
    assert one is not None and one.startswith("labstream-download-") and len(one.rsplit("-", 1)[1]) == 12


def test_group_option_and_config_group_win(tmp_path: Path) -> None:
    assert download_group(PLAIN, "given", tmp_path) == "given"
    assert download_group(WITH_GROUP, None, tmp_path) is None  # the consumer settings take [consumer]'s
    assert download_group(WITH_GROUP, "given", tmp_path) == "given"


def test_start_position_is_one_of_three(tmp_path: Path) -> None:
    def start(**given: object) -> object:
        return download_settings(PLAIN, {"out_dir": tmp_path, "topic": "t", **given}).start

    assert start(from_end=True).offset_reset == "latest"  # type: ignore[attr-defined]
    assert start(from_beginning=True).offset_reset == "earliest"  # type: ignore[attr-defined]
    assert start(from_time="2024-05-01T13:00+00:00").at_ms == 1714568400000  # type: ignore[attr-defined]
    assert start().offset_reset is None and start().at_ms is None  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="at most one"):
        start(from_end=True, from_beginning=True)
    with pytest.raises(ConfigError, match="expected an ISO date"):
        start(from_time="yesterday-ish")


def test_picked_files_follow_include_then_exclude(tmp_path: Path) -> None:
    pick = download_settings(
        PLAIN,
        {"out_dir": tmp_path, "topic": "t", "download_include": ("*.raw",), "download_exclude": ("run2/*",)},
    ).pick
    assert pick.accepts("run1/a.raw") and pick.accepts("a.raw")
    assert not pick.accepts("run1/notes.txt") and not pick.accepts("run2/c.raw")
    everything = download_settings(PLAIN, {"out_dir": tmp_path, "topic": "t"}).pick
    assert everything.accepts("x.tmp")  # the watcher's default excludes are not a downloader's


def test_peek_path_reads_the_header_of_both_wire_versions() -> None:
    data = b"x" * 100
    chunk = Chunk("dir/f.bin", 100, hashlib.sha256(data).digest(), 0, 1, 128, data)
    assert peek_path(encode(chunk)) == "dir/f.bin"
    v2 = dataclasses.replace(chunk, wire_version=2, file_id=new_file_id())
    assert peek_path(encode_v2(v2)) == "dir/f.bin"
    assert peek_path(b"not a chunk") is None and peek_path(b"") is None
