"""labstream and openmsistream 1.8.8 (its own venv) on the same topics, both directions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import labstream
from .openmsistream_env import digests, openmsistream_bin, openmsistream_config
from .watchproc import wait_for


@pytest.fixture(scope="module")
def omsi_bin() -> Path:
    return openmsistream_bin()


@pytest.fixture
def omsi_env(bootstrap: str) -> dict[str, str]:
    return {**os.environ, "LOCAL_KAFKA_BROKER_BOOTSTRAP_SERVERS": bootstrap}


def make_tree(root: Path) -> None:
    for rel, size in (
        ("top.dat", 1000),
        ("run 1/spectrum µ.csv", 300_000),
        ("run 1/deeper/image.raw", 1_500_000),
        ("run2/notes.txt", 10),
    ):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))


def quit_openmsistream(proc: subprocess.Popen[bytes]) -> None:
    try:
        proc.communicate(b"q\n", timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def test_openmsistream_uploads_labstream_downloads(
    tmp_path: Path, omsi_bin: Path, omsi_env: dict[str, str], bootstrap: str, topic: str, config_file: Path
) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    make_tree(src)
    expected = digests(src)
    labstream("download", out, "--config", config_file, "--topic", topic, "--exit-when-idle", "1")
    config = openmsistream_config(tmp_path, bootstrap)
    uploader = subprocess.Popen(
        [
            str(omsi_bin / "DataFileUploadDirectory"),
            str(src),
            "--config",
            str(config),
            "--topic_name",
            topic,
            "--upload_existing",
            "--chunk_size",
            "65536",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=omsi_env,
    )
    downloader = subprocess.Popen(
        [sys.executable, "-m", "labstream", "download", str(out), "--config", str(config), "--topic", topic],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=omsi_env,
    )
    try:
        wait_for(lambda: digests(out) == expected, timeout=180, every=0.5)
    finally:
        quit_openmsistream(uploader)
        downloader.send_signal(signal.SIGTERM)
        _, err = downloader.communicate(timeout=60)
    assert downloader.returncode == 0, err.decode()
    assert b"rejected" not in err


def test_labstream_uploads_openmsistream_downloads(
    tmp_path: Path, omsi_bin: Path, omsi_env: dict[str, str], bootstrap: str, topic: str, config_file: Path
) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    make_tree(src)
    expected = digests(src)
    labstream(
        "upload",
        src,
        "--config",
        config_file,
        "--topic",
        topic,
        "--wire",
        "openmsistream",
        "--chunk-size",
        "65536",
    )
    config = openmsistream_config(tmp_path, bootstrap)
    out.mkdir()
    downloader = subprocess.Popen(
        [
            str(omsi_bin / "DataFileDownloadDirectory"),
            str(out),
            "--config",
            str(config),
            "--topic_name",
            topic,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=omsi_env,
    )
    try:
        wait_for(lambda: digests(out) == expected, timeout=180, every=0.5)
    finally:
        quit_openmsistream(downloader)


def test_openmsistream_config_file_works_unchanged(
    tmp_path: Path, bootstrap: str, omsi_env: dict[str, str]
) -> None:
    config = openmsistream_config(tmp_path, bootstrap)
    shown = subprocess.run(
        [sys.executable, "-m", "labstream", "config", "show", str(config)],
        capture_output=True,
        text=True,
        env=omsi_env,
        check=True,
    ).stdout
    assert f"bootstrap.servers = {bootstrap}" in shown
