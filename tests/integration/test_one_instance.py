"""One watcher per state folder, one downloader per output folder: a second refuses."""

from __future__ import annotations

import signal
from pathlib import Path

from .conftest import labstream
from .watchproc import Watcher, start_download, wait_for


def test_second_watcher_on_the_same_state_refuses(tmp_path: Path, config_file: Path, topic: str) -> None:
    root, state = tmp_path / "instrument", tmp_path / "state"
    root.mkdir()
    first = Watcher(root, config_file, topic, state)
    second = labstream(
        "watch", root, "--config", config_file, "--topic", topic, "--state", state, check=False, timeout=60
    )
    assert second.returncode == 1
    assert second.stderr.strip().splitlines() == [
        f"Error: another watcher (pid {first.proc.pid}) already uses {state}; "
        "stop it first, or use another folder"
    ]
    assert first.proc.poll() is None
    assert first.stop() == 0
    again = Watcher(root, config_file, topic, state)  # released when the holder ends
    assert again.stop(signal.SIGKILL) != 0
    Watcher(root, config_file, topic, state).stop()  # and after kill -9 too


def test_second_downloader_on_the_same_output_refuses(tmp_path: Path, config_file: Path, topic: str) -> None:
    out = tmp_path / "out"
    first = start_download(out, config_file, topic, tmp_path / "first.log")
    try:
        wait_for(lambda: (out / ".labstream" / "lock").exists() and first.poll() is None)
        wait_for(lambda: (out / ".labstream" / "lock").read_text() == f"{first.pid}\n")
        second = labstream(
            "download", out, "--config", config_file, "--topic", topic, "--exit-when-idle", "1", check=False
        )
        assert second.returncode == 1
        errors = [line for line in second.stderr.splitlines() if "Error" in line]
        assert errors == [
            f"Error: another downloader (pid {first.pid}) already uses {out / '.labstream'}; "
            "stop it first, or use another folder"
        ]
        assert "Traceback" not in second.stderr
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(60)
