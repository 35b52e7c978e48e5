"""Files in, verified files out, through the real broker and the real CLI."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from .conftest import labstream

CHUNK = 64 * 1024


def tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".labstream" not in p.parts
    }


def roundtrip(src: Path, out: Path, config: Path, topic: str, *upload_args: str) -> str:
    sent = labstream("upload", src, "--config", config, "--topic", topic, *upload_args)
    assert "every chunk acknowledged" in sent.stdout
    got = labstream("download", out, "--config", config, "--topic", topic, "--exit-when-idle", "4")
    return got.stdout


@pytest.mark.parametrize(
    "size",
    [0, CHUNK, CHUNK + 1, 30 * 1024 * 1024 + 17],
    ids=["empty", "one-chunk", "one-chunk-plus-one", "30MB"],
)
def test_single_file_sizes(size: int, tmp_path: Path, config_file: Path, topic: str) -> None:
    src = tmp_path / "data.bin"
    src.write_bytes(os.urandom(size))
    out = tmp_path / "out"
    report = roundtrip(src, out, config_file, topic, "--chunk-size", str(CHUNK))
    assert "downloaded 1 verified file(s)" in report
    assert (out / "data.bin").read_bytes() == src.read_bytes()
    assert not list((out / ".labstream" / "partial").rglob("*.part"))


def test_two_hundred_small_files_with_subfolders_and_odd_names(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    src = tmp_path / "instrument"
    names = ["plain.txt", "with space.csv", "µ-XRD Ti₃C₂ 測定.dat", "deep/er/still deeper/file.bin"]
    for i in range(200):
        path = src / f"run{i % 7}" / f"{i:03d} {names[i % len(names)]}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(i * 97 % 5000))
    out = tmp_path / "out"
    report = roundtrip(src, out, config_file, topic, "--threads", "4", "--chunk-size", "1024")
    assert "downloaded 200 verified file(s)" in report
    assert tree(out) == tree(src)


# v1 chunks carry the digest, so every chunk of the second copy is a duplicate; v2 chunks
# carry a new file id per send, so the second copy is recognised at its last chunk.
@pytest.mark.parametrize(("wire", "duplicates"), [("labstream-v1", 4), ("labstream", 1)])
def test_same_file_twice_gives_one_copy(
    tmp_path: Path, config_file: Path, topic: str, wire: str, duplicates: int
) -> None:
    src = tmp_path / "twice.bin"
    src.write_bytes(os.urandom(3 * CHUNK + 5))
    for _ in range(2):
        labstream(
            "upload",
            src,
            "--config",
            config_file,
            "--topic",
            topic,
            "--chunk-size",
            str(CHUNK),
            "--wire",
            wire,
        )
    out = tmp_path / "out"
    report = labstream(
        "download", out, "--config", config_file, "--topic", topic, "--exit-when-idle", "4"
    ).stdout
    assert "downloaded 1 verified file(s)" in report and f"{duplicates} duplicate chunk(s)" in report
    assert tree(out) == {"twice.bin": hashlib.sha256(src.read_bytes()).hexdigest()}


def test_second_download_run_resumes_from_committed_offsets(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    first, second = tmp_path / "first.bin", tmp_path / "second.bin"
    first.write_bytes(os.urandom(1000))
    second.write_bytes(os.urandom(2000))
    out = tmp_path / "out"
    args = ("--config", config_file, "--topic", topic, "--group", f"{topic}-g", "--exit-when-idle", "4")
    labstream("upload", first, "--config", config_file, "--topic", topic)
    assert "downloaded 1 verified" in labstream("download", out, *args).stdout
    labstream("upload", second, "--config", config_file, "--topic", topic)
    report = labstream("download", out, *args).stdout
    assert "downloaded 1 verified" in report and "0 duplicate" in report
    assert tree(out).keys() == {"first.bin", "second.bin"}


def test_two_downloaders_in_one_group_share_the_work(tmp_path: Path, config_file: Path, topic: str) -> None:
    src = tmp_path / "src"
    for i in range(40):
        (src / f"d{i % 4}").mkdir(parents=True, exist_ok=True)
        (src / f"d{i % 4}" / f"f{i}.bin").write_bytes(os.urandom(20000 + i))
    labstream("upload", src, "--config", config_file, "--topic", topic, "--chunk-size", "4096")
    out = tmp_path / "out"
    report = labstream(
        "download", out, "--config", config_file, "--topic", topic, "--threads", "2", "--exit-when-idle", "5"
    ).stdout
    assert "downloaded 40 verified file(s)" in report
    assert tree(out) == tree(src)
