"""A full disk on the download side: wait, commit nothing, finish once space is back."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from .conftest import labstream
from .test_roundtrip import tree
from .watchproc import start_download, wait_for


def test_full_disk_waits_then_completes_and_never_presents_partial_files(
    small_disk: Path, tmp_path: Path, config_file: Path, topic: str
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        (src / f"frame{i}.raw").write_bytes(os.urandom(1024 * 1024))
    labstream("upload", src, "--config", config_file, "--topic", topic, "--chunk-size", "65536")
    out = small_disk / "out"
    log = tmp_path / "download.log"
    proc = start_download(out, config_file, topic, log, "--group", f"{topic}-g")
    try:
        wait_for(lambda: "cannot write the output folder; waiting" in log.read_text())
        expected = tree(src)
        for name, digest in tree(out).items():
            assert expected[name] == digest, f"{name} presented but not complete"
        assert len(tree(out)) < 6
        subprocess.run(["mount", "-o", "remount,size=32m", str(small_disk)], check=True)
        wait_for(lambda: tree(out) == expected, timeout=120)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert proc.returncode == 0, log.read_text()[-2000:]
    assert "No space left on device" in log.read_text()
