"""Receipts, `labstream status`, `upload --wait-verified` and clean-up on the real broker.

Downloaders sign receipts with keys made by `labstream keygen --receipts`; the instrument
side trusts the folder of their public keys.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labstream.wire import Chunk, encode

from .conftest import labstream
from .receiptkeys import make_keys, signing, trusting
from .test_bad_input import produce_raw
from .watchproc import Watcher, wait_for


def status(state: Path, *extra: str) -> dict[str, object]:
    return json.loads(labstream("status", "--state", state, "--json", *extra).stdout)


def category(report: dict[str, object], path: str) -> str:
    return next(f["state"] for f in report["files"] if f["path"] == path)  # type: ignore[union-attr,index]


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    return make_keys(tmp_path / "keys")


def download(out: Path, config: Path, topic: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return labstream(
        "download", out, "--config", config, "--topic", topic, "--exit-when-idle", "4", *extra, check=False
    )


def test_verified_and_failed_downstream_show_in_status(
    tmp_path: Path, config_file: Path, topic: str, keys: Path
) -> None:
    root, state = tmp_path / "instrument", tmp_path / "state"
    root.mkdir()
    watcher = Watcher(root, config_file, topic, state, *trusting(keys))
    (root / "good.txt").write_text("good data")
    (root / "bad.bin").write_bytes(os.urandom(3000))
    wait_for(lambda: watcher.statuses() == {"good.txt": "sent", "bad.bin": "sent"})
    # The real stream is downloaded fine ... (groups named after the topic: none shared
    # with a test running beside this one)
    archive, mirror = f"archive-{topic}", f"mirror-{topic}"
    download(tmp_path / "out", config_file, topic, "--group", archive, *signing(keys))
    # ... and a second downloader receives bad.bin damaged in transit.
    content = (root / "bad.bin").read_bytes()
    sha = hashlib.sha256(content).digest()
    damaged = bytearray(encode(Chunk("bad.bin", 3000, sha, 0, 1, 4096, content)))
    damaged[-1] ^= 0xFF
    produce_raw(config_file, f"{topic}-copy", [(b"bad.bin", bytes(damaged))])
    done = download(
        tmp_path / "out2",
        config_file,
        f"{topic}-copy",
        "--group",
        mirror,
        "--receipts-topic",
        f"{topic}.receipts",
        *signing(keys, "mirror"),
    )
    assert done.returncode == 2
    wait_for(
        lambda: (
            category(status(state, "--no-refresh"), "bad.bin") == "failed downstream"
            and category(status(state, "--no-refresh"), "good.txt") == "verified"
        ),
        timeout=30,
    )
    assert watcher.stop() == 0
    # Later, with the watcher stopped, the ledger still knows.
    report = status(state, "--no-refresh")
    assert report["totals"]["verified"] == 1 and report["totals"]["failed downstream"] == 1  # type: ignore[index]
    bad = next(f for f in report["files"] if f["path"] == "bad.bin")  # type: ignore[union-attr]
    assert "fails its checksum" in bad["failed_downstream"][mirror]
    text = labstream("status", "--state", state, "--no-refresh").stdout
    assert "failed downstream: 1" in text and "bad.bin" in text


def test_status_refresh_reads_receipts_while_no_watcher_runs(
    tmp_path: Path, config_file: Path, topic: str, keys: Path
) -> None:
    root, state = tmp_path / "instrument", tmp_path / "state"
    root.mkdir()
    watcher = Watcher(root, config_file, topic, state, *trusting(keys))
    (root / "later.txt").write_text("verified after the watcher stopped")
    wait_for(lambda: watcher.statuses().get("later.txt") == "sent")
    assert watcher.stop() == 0
    download(tmp_path / "out", config_file, topic, *signing(keys))
    assert category(status(state), "later.txt") == "verified"


def test_delete_after_verified_only_after_the_receipt(
    tmp_path: Path, config_file: Path, topic: str, keys: Path
) -> None:
    root, state = tmp_path / "instrument", tmp_path / "state"
    root.mkdir()
    watcher = Watcher(root, config_file, topic, state, "--delete-after-verified", "1", *trusting(keys))
    (root / "sub").mkdir()
    (root / "sub" / "measurement.dat").write_bytes(os.urandom(100_000))
    wait_for(lambda: watcher.statuses().get("sub/measurement.dat") == "sent")
    time.sleep(3)
    assert (root / "sub" / "measurement.dat").exists(), "deleted before any receipt"
    download(tmp_path / "out", config_file, topic, *signing(keys))
    wait_for(lambda: not (root / "sub" / "measurement.dat").exists(), timeout=30)
    assert watcher.statuses()["sub/measurement.dat"] == "deleted"
    assert watcher.stop() == 0
    assert (tmp_path / "out" / "sub" / "measurement.dat").stat().st_size == 100_000


def test_upload_wait_verified(tmp_path: Path, config_file: Path, topic: str, keys: Path) -> None:
    src = tmp_path / "confirm.bin"
    src.write_bytes(os.urandom(70_000))
    downloader = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "labstream",
            "download",
            str(tmp_path / "out"),
            "--config",
            str(config_file),
            "--topic",
            topic,
            *signing(keys),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        done = labstream(
            "upload",
            src,
            "--config",
            config_file,
            "--topic",
            topic,
            "--wait-verified",
            "--wait-timeout",
            "90",
            *trusting(keys),
        )
        assert "verified downstream: all 1 file(s)" in done.stdout
    finally:
        downloader.terminate()
        downloader.wait(30)


def test_upload_wait_verified_times_out_clearly(
    tmp_path: Path, config_file: Path, topic: str, keys: Path
) -> None:
    src = tmp_path / "nobody.txt"
    src.write_text("no downloader runs")
    done = labstream(
        "upload",
        src,
        "--config",
        config_file,
        "--topic",
        topic,
        "--wait-verified",
        "--wait-timeout",
        "5",
        *trusting(keys),
        check=False,
    )
    assert done.returncode == 1
    assert "1 of 1 file(s) not verified downstream; first: nobody.txt: no receipt" in done.stderr


def test_resend(tmp_path: Path, config_file: Path, topic: str) -> None:
    root, state = tmp_path / "instrument", tmp_path / "state"
    root.mkdir()
    watcher = Watcher(root, config_file, topic, state)
    (root / "again.txt").write_text("send me twice")
    wait_for(lambda: watcher.statuses().get("again.txt") == "sent")
    done = labstream("resend", root / "again.txt", "--state", state)
    assert "resent 1 file(s)" in done.stdout
    assert watcher.stop() == 0
    report = download(tmp_path / "out", config_file, topic).stdout
    assert "downloaded 1 verified file(s)" in report and "1 duplicate chunk(s)" in report
