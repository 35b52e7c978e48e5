"""`labstream watch` refuses at start a topic it cannot create or produce to (one line, exit 1),
instead of starting and failing every file. The ACL case is in test_doctor_acl.py."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from .conftest import labstream


def test_watch_refuses_a_topic_that_cannot_be_created(tmp_path: Path, config_file: Path) -> None:
    (tmp_path / "watched").mkdir()
    (tmp_path / "watched" / "data.bin").write_bytes(b"data")
    done = labstream(
        "watch", tmp_path / "watched", "-t", "no spaces allowed", "-c", config_file,
        "--state", tmp_path / "state", "--upload-existing", check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.count("Error:") == 1 and "Traceback" not in done.stderr
    assert "topic 'no spaces allowed' does not exist and cannot be created" in done.stderr
    assert "Topic name is invalid" in done.stderr
    assert "starting folder" not in done.stderr


def test_ctrl_c_stops_watch_with_exit_130(tmp_path: Path, config_file: Path, topic: str) -> None:
    (tmp_path / "watched").mkdir()
    for signum, expected in ((signal.SIGINT, 130),):
        proc = subprocess.Popen(
            [sys.executable, "-m", "labstream", "watch", tmp_path / "watched", "-t", topic, "-c",
             config_file, "--state", tmp_path / "state"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert proc.stderr is not None
            for line in proc.stderr:
                if "starting folder" in line:
                    break
            proc.send_signal(signum)
            proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == expected, signum
