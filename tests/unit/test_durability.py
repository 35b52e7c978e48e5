"""Files made durable in the background as they are verified; a commit waits for them."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labstream.download import Assembler, Ledger, Outcome, durability
from labstream.download.durability import GroupFlusher, flush_files
from labstream.errors import OutputError

from .test_download_batch import records


@pytest.fixture
def flusher(tmp_path: Path) -> Iterator[GroupFlusher]:
    flusher = GroupFlusher(tmp_path)
    yield flusher
    flusher.close()


@pytest.fixture
def groups(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The names of the files each flush covered, in order, recorded once they are durable."""
    seen: list[list[str]] = []
    real = durability._flush_group

    def recording(paths: list[Path], folder: Path) -> None:
        real(paths, folder)
        seen.append([p.name for p in paths])

    monkeypatch.setattr(durability, "_flush_group", recording)
    return seen


def _files(folder: Path, count: int) -> list[Path]:
    folder.mkdir(exist_ok=True)
    paths = [folder / f"f{i}" for i in range(count)]
    for path in paths:
        path.write_bytes(b"x" * 100)
    return paths


def test_files_handed_over_are_durable_once_unflushed_returns_none_left_to_the_caller(
    tmp_path: Path, flusher: GroupFlusher, groups: list[list[str]]
) -> None:
    paths = _files(tmp_path / "d", 40)
    for path in paths:
        flusher.start(path)
    assert flusher.unflushed(paths) == []
    assert sorted(name for group in groups for name in group) == sorted(p.name for p in paths)


def test_many_files_handed_over_together_are_flushed_as_one_group(
    tmp_path: Path, groups: list[list[str]]
) -> None:
    paths = _files(tmp_path / "d", 40)
    flusher = GroupFlusher(tmp_path)
    try:
        with flusher._lock:  # the thread cannot take any before all are handed over
            flusher._thread = durability.spawn(flusher._run, "labstream-flush-test")
            flusher._waiting.extend(paths)
            flusher._lock.notify_all()
        assert flusher.unflushed(paths) == []
    finally:
        flusher.close()
    assert groups == [[p.name for p in paths]]


def test_a_file_never_handed_over_is_left_to_the_caller(tmp_path: Path, flusher: GroupFlusher) -> None:
    started, never = _files(tmp_path / "d", 2)
    flusher.start(started)
    assert flusher.unflushed([started, never]) == [never]


def test_a_file_whose_background_flush_failed_fails_the_commit_flush_with_the_error(
    tmp_path: Path, flusher: GroupFlusher
) -> None:
    failing = tmp_path / "a-folder"  # cannot be opened for writing: its flush fails
    failing.mkdir()
    flusher.start(failing)
    with pytest.raises(OutputError, match="cannot flush received files to disk"):
        flush_files([failing], tmp_path, flusher)


def test_each_flush_counts_for_one_commit_only(tmp_path: Path, flusher: GroupFlusher) -> None:
    (path,) = _files(tmp_path / "d", 1)
    flusher.start(path)
    assert flusher.unflushed([path]) == []
    assert flusher.unflushed([path]) == [path]  # a retried commit flushes it again itself


def test_a_file_forgotten_before_its_flush_ends_is_not_counted_as_flushed(
    tmp_path: Path, flusher: GroupFlusher
) -> None:
    paths = _files(tmp_path / "d", 50)
    for path in paths:
        flusher.start(path)
    flusher.forget(paths[-1])
    assert flusher.unflushed(paths[:-1]) == []
    assert flusher.unflushed(paths[-1:]) == paths[-1:]


def test_every_file_is_durable_before_it_is_renamed_into_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, str]] = []
    real_group, real_replace = durability._flush_group, os.replace

    def flush_group(paths: list[Path], folder: Path) -> None:
        real_group(paths, folder)
        events.extend(("durable", p.name) for p in paths)

    def replace(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        events.append(("renamed", Path(source).name))
        real_replace(source, target)

    monkeypatch.setattr(durability, "_flush_group", flush_group)
    monkeypatch.setattr(os, "replace", replace)
    out = tmp_path / "out"
    with Ledger(out / ".labstream" / "ledger.sqlite") as ledger:
        assembler = Assembler(out, ledger)
        try:
            for record in records([f"f{i}.bin" for i in range(30)], size=1000):
                assert assembler.add(record) is Outcome.COMPLETE
            assert len(assembler.commit()) == 30
        finally:
            assembler.close()
    renamed = [name for kind, name in events if kind == "renamed"]
    assert len(renamed) == 30
    for name in renamed:
        assert events.index(("durable", name)) < events.index(("renamed", name))


def test_a_few_files_wait_for_a_group_until_a_commit_asks_for_them(
    tmp_path: Path, flusher: GroupFlusher, groups: list[list[str]]
) -> None:
    paths = _files(tmp_path / "d", 3)  # fewer than GROUP_FILES
    for path in paths:
        flusher.start(path)
    threading.Event().wait(0.2)
    assert groups == []  # each flush is a journal commit: not one per file
    assert flusher.unflushed(paths) == []
    assert groups == [[p.name for p in paths]]


def test_a_full_group_is_flushed_without_a_commit_asking(
    tmp_path: Path, flusher: GroupFlusher, groups: list[list[str]]
) -> None:
    paths = _files(tmp_path / "d", durability.GROUP_FILES)
    for path in paths:
        flusher.start(path)
    deadline = time.monotonic() + 10
    while not groups and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(name for group in groups for name in group) == sorted(p.name for p in paths)
