"""Progress and liveness as an operator sees them, on the real broker: the live display (a
pipe with --progress, a real terminal by default), still-alive lines, the `c`/`q` console of
download, process and watch, and per-file progress of a large file being sent."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .conftest import labstream
from .test_process import COPYING_PROCESSOR
from .watchproc import Watcher, wait_for

LIVE_REDRAW = "\x1b[2K"  # rich erases the lines it redraws


class Running:
    """The real CLI in a subprocess whose stderr is collected as it comes (a pipe or a pty)."""

    def __init__(self, *args: str | os.PathLike[str], terminal: bool = False) -> None:
        self._chunks: list[bytes] = []
        reader_fd: int
        if terminal:
            reader_fd, writer_fd = pty.openpty()
            stderr: int = writer_fd
        else:
            reader_fd, writer_fd = os.pipe()
            stderr = writer_fd
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "labstream", *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        os.close(writer_fd)
        self._reader = threading.Thread(target=self._read, args=(reader_fd,), daemon=True)
        self._reader.start()

    def _read(self, fd: int) -> None:
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:  # a pty reports EIO once the child closed it
                data = b""
            if not data:
                os.close(fd)
                return
            self._chunks.append(data)

    def text(self) -> str:
        return b"".join(self._chunks).decode(errors="replace")

    def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def wait(self, timeout: float = 120.0) -> int:
        code = self.proc.wait(timeout)
        if self.proc.stdin is not None and self.proc.stdin.closed:
            return code  # waited for before
        self._reader.join(10)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.stdout = self.proc.stdout.read().decode()
        self.proc.stdout.close()
        return code


@contextmanager
def running(*args: str | os.PathLike[str], terminal: bool = False) -> Iterator[Running]:
    proc = Running(*args, terminal=terminal)
    try:
        yield proc
    finally:
        if proc.proc.poll() is None:
            proc.proc.kill()
        proc.wait(30)


def slow_upload(config_file: Path, topic: str, path: Path, rate: str = "4MiB/s") -> subprocess.Popen[bytes]:
    """An upload paced by --max-rate, so a downloader sees the file arrive over seconds."""
    args = ["upload", path, "-c", config_file, "-t", topic, "--max-rate", rate]
    return subprocess.Popen(
        [sys.executable, "-m", "labstream", *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def download_args(config_file: Path, topic: str, out: Path, *extra: str) -> list[str | os.PathLike[str]]:
    return ["download", out, "-c", config_file, "-t", topic, "--exit-when-idle", "3", *extra]


def big_file(tmp_path: Path, mib: int = 16) -> Path:
    path = tmp_path / "src" / "big.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(mib << 20))
    return path


def one_file(tmp_path: Path, config_file: Path, topic: str) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a")
    labstream("upload", tmp_path / "src", "-c", config_file, "-t", topic)


def ask_then_quit(proc: Running, ask: str, shows: str, quit_with: str) -> None:
    """Type `ask` until its answer `shows` is printed, then `quit_with`: a clean exit 0."""
    proc.type(ask)
    wait_for(lambda: shows in proc.text())
    proc.type(quit_with)
    assert proc.wait(60) == 0


def test_still_alive_lines_show_a_file_arriving_with_its_share(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    source = big_file(tmp_path)
    args = download_args(config_file, topic, tmp_path / "out", "--update-seconds", "0.5", "--no-progress")
    with running(*args) as downloader:
        wait_for(lambda: "partitions assigned" in downloader.text())
        uploader = slow_upload(config_file, topic, source)
        assert downloader.wait() == 0
        assert uploader.wait(60) == 0
    text = downloader.text()
    assert "still downloading: 0 verified, 0 failed" in text
    arriving = [line for line in text.splitlines() if "now: big.bin" in line]
    assert arriving and "/ 16.0 MiB (" in arriving[-1]  # bytes of the total, and the share
    assert "still downloading: 1 verified, 0 failed, 16.0 MiB" in text
    assert LIVE_REDRAW not in text  # --no-progress: lines, no live display


def test_the_lag_shown_moves_with_what_is_read_while_a_large_file_arrives(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    # The group's committed offsets stay at the file's first chunk until it is complete, so a
    # lag from them would grow with every chunk uploaded; the lag shown counts from what the
    # downloader has read and stays near 0 while it keeps up.
    source = big_file(tmp_path, mib=24)
    args = download_args(config_file, topic, tmp_path / "out", "--update-seconds", "0.5", "--no-progress")
    with running(*args) as downloader:
        wait_for(lambda: "partitions assigned" in downloader.text())
        uploader = slow_upload(config_file, topic, source, rate="2MiB/s")  # about 12 s
        assert downloader.wait() == 0
        assert uploader.wait(60) == 0
    lines = [line for line in downloader.text().splitlines() if "still downloading: 0 verified" in line]
    lags = [
        int(line.split("lag ")[1].split(" ")[0])
        for line in lines
        if "lag " in line and "now: big.bin" in line
    ]
    assert len(lags) >= 10  # the file arrived over several lag queries (one per 5 s)
    assert max(lags) <= 4, lags


def test_progress_draws_the_live_display_even_into_a_pipe(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    source = big_file(tmp_path)
    with running(*download_args(config_file, topic, tmp_path / "out", "--progress")) as downloader:
        wait_for(lambda: "partitions assigned" in downloader.text())
        uploader = slow_upload(config_file, topic, source)
        assert downloader.wait() == 0
        assert uploader.wait(60) == 0
    text = downloader.text()
    assert f"downloading topic {topic} ->" in text
    assert LIVE_REDRAW in text
    assert "big.bin" in text and "/ 16.0 MiB" in text and "%" in text
    assert "MiB/s" in text and " MB" not in text  # binary units, as in the summaries
    assert "still downloading" not in text  # the display replaces the still-alive lines


def test_on_a_terminal_the_live_display_is_the_default_and_no_progress_turns_it_off(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    one_file(tmp_path, config_file, topic)
    with running(*download_args(config_file, topic, tmp_path / "one"), terminal=True) as shown:
        assert shown.wait() == 0
    assert LIVE_REDRAW in shown.text() and "1 verified, 0 failed" in shown.text()
    off = download_args(config_file, topic, tmp_path / "two", "--no-progress", "--update-seconds", "1")
    with running(*off, terminal=True) as plain:
        assert plain.wait() == 0
    assert LIVE_REDRAW not in plain.text()
    assert "still downloading: 1 verified, 0 failed" in plain.text()


def test_download_console_c_reports_and_q_stops_cleanly(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    one_file(tmp_path, config_file, topic)
    args = ["download", tmp_path / "out", "-c", config_file, "-t", topic, "--no-progress"]
    with running(*args) as downloader:
        wait_for(lambda: "file verified file=a.txt" in downloader.text())
        ask_then_quit(downloader, "c", "1 verified, 0 failed, ", "q")
    assert f"downloading topic {topic} -> {tmp_path / 'out'}" in downloader.text()
    assert "INFO labstream.console: stopping cleanly (asked on the console)" in downloader.text()
    assert "downloaded 1 verified file(s)" in downloader.stdout
    assert (tmp_path / "out" / "a.txt").read_text() == "a"


def test_process_console_c_reports_and_q_stops_cleanly(tmp_path: Path, config_file: Path, topic: str) -> None:
    (tmp_path / "copy_processor.py").write_text(COPYING_PROCESSOR)
    one_file(tmp_path, config_file, topic)
    args = [
        "process",
        f"{tmp_path / 'copy_processor.py'}:Copy",
        "-c",
        config_file,
        "-t",
        topic,
        "--workdir",
        tmp_path / "work",
        "-o",
        f"out={tmp_path / 'out'}",
        "--no-progress",
    ]
    with running(*args) as processor:
        wait_for(lambda: (tmp_path / "out" / "a.txt").exists())
        ask_then_quit(processor, "check", "1 processed, 0 failed", "quit")
    assert f"processing topic {topic} with" in processor.text()
    assert "stopping cleanly (asked on the console)" in processor.text()
    assert "processed 1 file(s), 0 failed" in processor.stdout


def test_watch_c_shows_the_share_of_a_large_file_being_sent(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    root = tmp_path / "instrument"
    root.mkdir()
    watcher = Watcher(root, config_file, topic, tmp_path / "state", "--max-rate", "8MiB/s")
    (root / "large.bin").write_bytes(os.urandom(48 << 20))
    wait_for(lambda: watcher.statuses().get("large.bin") == "sending")

    def shows_share() -> bool:
        _type(watcher, "c")
        return "large.bin" in watcher.text() and "/ 48.0 MiB (" in watcher.text()

    wait_for(shows_share, timeout=60, every=1.0)
    _type(watcher, "q")
    assert watcher.wait(60) == 0


def _type(watcher: Watcher, line: str) -> None:
    assert watcher.proc.stdin is not None
    watcher.proc.stdin.write(line.encode() + b"\n")
    watcher.proc.stdin.flush()


def test_watch_display_counts_a_file_sent_in_the_frame_under_its_log_line(
    tmp_path: Path, config_file: Path, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # rich wraps the log lines it prints at the width
    root = tmp_path / "instrument"
    root.mkdir()
    watcher = Watcher(root, config_file, topic, tmp_path / "state", "--max-rate", "8MiB/s", "--progress")
    (root / "large.bin").write_bytes(os.urandom(24 << 20))
    wait_for(lambda: "file sent file=large.bin" in watcher.text(), timeout=60)
    _type(watcher, "q")
    assert watcher.wait(60) == 0
    before, after = watcher.text().split("file sent file=large.bin", 1)
    assert re.search(r"large\.bin .* \d+% ", before)  # the display showed the file in progress
    assert re.findall(r"(\d+) sent, \d+ failed", before)[-1] == "0"
    frame = after.split("\n", 1)[1].split("\x1b[2K", 1)[0]  # the frame drawn under the line
    assert re.findall(r"(\d+) sent, \d+ failed, ([\d.]+ MiB)", frame) == [("1", "24.0 MiB")]
    assert "large.bin" not in frame  # no longer drawn as in progress (nor its bytes counted twice)
