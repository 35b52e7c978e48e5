"""Someone with write access to the receipts topic: forged, untrusted and malformed receipts.

None of them deletes a file, decides `upload --wait-verified`, or stops the reader; a genuine
signed receipt after them still works.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labstream.config import load_config
from labstream.kafka import ensure_topic, producer_settings
from labstream.settings import download_group

from .conftest import labstream
from .receiptkeys import make_keys, signing, trusting
from .test_bad_input import produce_raw
from .test_receipts import category, status
from .watchproc import Watcher, start_download, wait_for

MALFORMED = [
    b"[" * 200_000,
    b"[" * 60_000,
    b'{"v": 2, "size": 1e400}',
    b'{"v": 2, "path": "x", "sha256": NaN}',
    b'{"v": true, "path": "a", "size": true}',
    b"\xff\xfe not UTF-8",
    b"x" * 500_000,
    b"",
]


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    return make_keys(tmp_path / "keys", "archive")


def forged(path: str, digest: str, outcome: str, group: str, **extra: object) -> bytes:
    body = {"v": 2, "path": path, "sha256": digest, "size": 1, "outcome": outcome, "group": group}
    return json.dumps({**body, "host": "attacker", "reason": "forged", "at": 1.0, **extra}).encode()


def attacks(path: str, digest: str) -> list[tuple[bytes, bytes]]:
    """Malformed messages, unsigned receipts under 20 group names, and a bad signature."""
    values = list(MALFORMED)
    values += [forged(path, digest, "verified", f"group-{n}") for n in range(20)]
    values.append(forged(path, digest, "failed", "archive"))
    values.append(forged(path, digest, "verified", "archive", key_id="ab" * 8, sig="A" * 86 + "=="))
    wrong_type = json.loads(forged(path, digest, "verified", "x"))
    wrong_type["size"] = [1]
    values.append(json.dumps(wrong_type).encode())
    return [(path.encode(), value) for value in values]


def test_forged_and_malformed_receipts_never_delete_and_clean_up_goes_on(
    tmp_path: Path, config_file: Path, topic: str, keys: Path
) -> None:
    root, state = tmp_path / "instrument", tmp_path / "state"
    root.mkdir()
    watcher = Watcher(root, config_file, topic, state, "--delete-after-verified", "1", *trusting(keys))
    target = root / "only-copy.dat"
    target.write_bytes(os.urandom(50_000))
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    wait_for(lambda: watcher.statuses().get("only-copy.dat") == "sent")
    produce_raw(config_file, f"{topic}.receipts", attacks("only-copy.dat", digest))
    # Every message is read and answered with one line; the forged ones are recorded.
    wait_for(lambda: watcher.text().count("receipt ignored") >= len(MALFORMED) + 1, timeout=60)
    wait_for(lambda: watcher.text().count("unauthenticated receipt recorded") >= 22, timeout=60)
    assert target.exists(), "a forged receipt deleted the only copy"
    assert "Traceback" not in watcher.text()
    assert category(status(state, "--no-refresh"), "only-copy.dat") == "unauthenticated"
    # The collector is still alive: a genuine signed receipt cleans up.
    download(tmp_path, config_file, topic, *signing(keys))
    wait_for(lambda: not target.exists(), timeout=60)
    assert watcher.statuses()["only-copy.dat"] == "deleted"
    assert watcher.stop() == 0
    report = status(state, "--no-refresh")
    entry = next(f for f in report["files"] if f["path"] == "only-copy.dat")  # type: ignore[attr-defined]
    group = download_group(load_config(str(config_file)), None, tmp_path / "out")
    assert entry["verified_by"] == [group] and entry["failed_downstream"] == {}


def test_wait_verified_ignores_forged_and_malformed_receipts(
    tmp_path: Path, config_file: Path, topic: str, keys: Path
) -> None:
    src = tmp_path / "confirm.bin"
    src.write_bytes(os.urandom(40_000))
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    # One partition, as the commands make it: the forged receipts are read before the genuine one.
    ensure_topic(producer_settings(load_config(config_file)), f"{topic}.receipts", partitions=1)
    upload = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "labstream",
            "upload",
            str(src),
            "--config",
            str(config_file),
            "--topic",
            topic,
            "--wait-verified",
            "--wait-timeout",
            "120",
            *trusting(keys),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    downloader = None
    try:
        # Forged receipts (a forged *failure* among them) and garbage, before any genuine one.
        produce_raw(config_file, f"{topic}.receipts", attacks("confirm.bin", digest))
        downloader = start_download(
            tmp_path / "out", config_file, topic, tmp_path / "down.log", *signing(keys)
        )
        out, err = upload.communicate(timeout=150)
    finally:
        if upload.poll() is None:
            upload.kill()
            upload.communicate()
        if downloader is not None:
            downloader.terminate()
            downloader.wait(30)
    assert upload.returncode == 0, err
    assert "verified downstream: all 1 file(s)" in out
    assert "Traceback" not in err and "receipt ignored" in err and "unauthenticated receipt ignored" in err


def download(tmp_path: Path, config: Path, topic: str, *extra: str) -> None:
    labstream(
        "download", tmp_path / "out", "--config", config, "--topic", topic, "--exit-when-idle", "4", *extra
    )
