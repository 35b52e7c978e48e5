"""`open_for_writing`: a file another process holds open for writing is not finished yet."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from labstream.watch import openfiles
from labstream.watch.openfiles import open_for_writing

WRITER = "import sys, time\nf = open(sys.argv[1], 'ab')\nprint('open', flush=True)\ntime.sleep(60)\n"
READER = "import sys, time\nf = open(sys.argv[1], 'rb')\nprint('open', flush=True)\ntime.sleep(60)\n"


def _holding(script: str, path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "open"
    return proc


def test_a_file_open_for_writing_elsewhere_is_busy_one_open_for_reading_is_not(tmp_path: Path) -> None:
    """Linux: read from /proc (CI and the test machines run Linux)."""
    written, read, idle = tmp_path / "written.dat", tmp_path / "read.dat", tmp_path / "idle.dat"
    for path in (written, read, idle):
        path.write_bytes(b"x")
    writer, reader = _holding(WRITER, written), _holding(READER, read)
    try:
        assert open_for_writing([written, read, idle]) == {written}
    finally:
        for proc in (writer, reader):
            proc.kill()
            proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()
    deadline = time.monotonic() + 5
    while open_for_writing([written]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_for_writing([written]) == set() and open_for_writing([]) == set()


def test_on_windows_a_file_that_cannot_be_opened_for_writing_is_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    free, locked, readonly = tmp_path / "free.dat", tmp_path / "locked.dat", tmp_path / "ro.dat"
    for path in (free, locked, readonly):
        path.write_bytes(b"x")
    readonly.chmod(0o444)
    real_open = openfiles.os.open

    def sharing_violation(path: object, flags: int, *args: object) -> int:
        if Path(str(path)) == locked:
            raise PermissionError(13, "The process cannot access the file")  # what Windows says
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(openfiles.sys, "platform", "win32")
    monkeypatch.setattr(openfiles.os, "open", sharing_violation)
    monkeypatch.setattr(openfiles.os, "access", lambda p, _mode: Path(str(p)) != readonly)
    assert open_for_writing([free, locked, readonly, tmp_path / "gone.dat"]) == {locked}


def test_elsewhere_nothing_is_known_to_be_busy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openfiles.sys, "platform", "darwin")
    assert open_for_writing([tmp_path / "any.dat"]) == set()
