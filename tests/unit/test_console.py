"""The console of long-running stages: still-alive lines, `c`/`q`, the live display, rates."""

from __future__ import annotations

import dataclasses
import io
import logging
import sys
import threading
import time
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from rich.console import Console as RichConsole

from labstream.cli import cli
from labstream.cli.globals import add_global_options, progress_wanted
from labstream.download.downloader import DownloadReport
from labstream.errors import KafkaError
from labstream.runners.console import Console, ConsoleMode, may_read_keys
from labstream.runners.display import LiveDisplay
from labstream.runners.download import download_snapshot
from labstream.runners.progress import FileProgress, FileRates, RateMeter, Snapshot, time_left

HOSTILE = "evil\x1b[2J\x1b]0;owned\x07\nname.bin"


def snapshot(*current: FileProgress, lag: int | None = None) -> Snapshot:
    return Snapshot("download", 3, 1, 5 * 1024 * 1024, current=current, lag=lag)


def test_rate_meter_is_bytes_per_second_over_its_window() -> None:
    now = [0.0]
    meter = RateMeter(window=10.0, clock=lambda: now[0])
    assert meter.update(0) == 0.0
    now[0] = 2.0
    assert meter.update(2048) == 1024.0
    now[0] = 30.0  # sampled seldom: the average since the previous sample
    assert meter.update(2048 + 28 * 100) == pytest.approx(100.0)


def test_rate_drops_to_zero_within_its_window_after_the_transfer_ends() -> None:
    now = [0.0]
    meter = RateMeter(window=3.0, clock=lambda: now[0])
    total = 0
    for _ in range(20):  # 10 s at 1 MiB/s, sampled twice a second like the live display
        meter.update(total)
        now[0] += 0.5
        total += 512 << 10
    assert meter.update(total) == pytest.approx(1 << 20)
    rates = []
    for _ in range(8):  # the transfer has ended
        now[0] += 0.5
        rates.append(meter.update(total))
    assert rates[0] > 0
    assert rates[5:] == [0.0, 0.0, 0.0]  # 0 three seconds after the last byte, and stays 0


def test_still_alive_line_has_counts_sizes_rate_lag_and_each_file_share() -> None:
    line = snapshot(FileProgress("big.bin", 512 << 20, 1 << 30), FileProgress("new.bin", 10, 0), lag=7).line(
        1024 * 1024
    )
    assert line.startswith("still downloading: 3 verified, 1 failed, 5.0 MiB, 1.0 MiB/s, lag 7 message(s)")
    assert "big.bin 512.0 MiB / 1.0 GiB (50%)" in line
    assert "new.bin 10 B" in line  # size not known yet: no share


def test_hostile_paths_are_escaped_in_lines_and_in_the_live_display() -> None:
    current = FileProgress(HOSTILE, 1, 2)
    assert "\x1b" not in current.line() and "\n" not in current.line()
    display = LiveDisplay("head", lambda: snapshot(current), RateMeter())
    out = io.StringIO()
    RichConsole(file=out, width=120, force_terminal=False).print(display._render())
    assert "\x1b" not in out.getvalue()
    assert "\\x1b[2J" in out.getvalue()


def test_live_display_draws_each_file_in_progress_with_its_share() -> None:
    files = [FileProgress(f"f{i}.bin", i, 10) for i in range(1, 8)]
    display = LiveDisplay("downloading topic t", lambda: snapshot(*files, lag=0), RateMeter())
    out = io.StringIO()
    RichConsole(file=out, width=120).print(display._render())
    text = out.getvalue()
    assert "downloading topic t" in text
    assert "3 verified, 1 failed, 5.0 MiB" in text and "lag 0 message(s)" in text
    assert "f1.bin" in text and "10%" in text and "50%" in text
    assert "f7.bin" not in text and "and 2 more file(s) in progress" in text


def test_still_alive_lines_every_update_seconds(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="labstream.console")
    stop = threading.Event()
    with Console("head", lambda: snapshot(FileProgress("a.bin", 1, 4)), stop, 0.05):
        while sum("still downloading" in r.getMessage() for r in caplog.records) < 2:
            stop.wait(0.01)
    assert "a.bin 1 B / 4 B (25%)" in caplog.records[-1].getMessage()


def test_no_still_alive_line_with_negative_update_seconds(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="labstream.console")
    stop = threading.Event()
    with Console("head", snapshot, stop, -1):
        stop.wait(0.2)
    assert not [r for r in caplog.records if "still" in r.getMessage()]


def test_c_prints_the_status_and_q_stops(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="labstream.console")
    monkeypatch.setattr("sys.stdin", io.StringIO("c\nhelp\nq\n"))
    stop = threading.Event()
    console = Console(
        "downloading t",
        lambda: snapshot(FileProgress("a.bin", 1, 2)),
        stop,
        -1,
        mode=ConsoleMode(read_stdin=True),
        details=lambda: ["more detail"],
    )
    with console:
        assert stop.wait(10)  # `q` stopped the stage
    err = capsys.readouterr().err
    assert "downloading t\n3 verified, 1 failed, 5.0 MiB" in err
    assert "  a.bin 1 B / 2 B (50%)" in err and "more detail" in err
    assert "commands: c/check = status, q/quit = stop" in err
    stops = [r for r in caplog.records if "stopping cleanly" in r.getMessage()]
    assert [r.levelno for r in stops] == [logging.INFO]  # a clean stop is not a warning


def test_an_unreachable_broker_makes_the_lag_unknown_not_zero() -> None:
    def lag() -> int:
        raise KafkaError("no broker")

    console = Console("head", snapshot, threading.Event(), -1, lag=lag)
    console._refresh_lag()
    assert console.snapshot().lag is None


def test_progress_option_anywhere_and_auto_off_without_a_terminal() -> None:
    seen: list[bool] = []

    @cli.command("probe-progress")
    def probe() -> None:
        seen.append(progress_wanted())

    add_global_options(probe, with_bootstrap=False)

    try:
        runner = CliRunner()
        for args in (["probe-progress"], ["--progress", "probe-progress"], ["probe-progress", "--progress"]):
            assert runner.invoke(cli, args).exit_code == 0
        assert runner.invoke(cli, ["--progress", "probe-progress", "--no-progress"]).exit_code == 0
    finally:
        cli.commands.pop("probe-progress")
    assert seen == [False, True, True, False]


def test_keys_are_read_from_a_pipe_and_from_a_terminal_only_in_its_foreground() -> None:
    assert may_read_keys(False, None, 42)  # a pipe or file: no job control
    assert may_read_keys(True, 42, 42)  # the terminal's foreground group is ours
    assert not may_read_keys(True, 7, 42)  # `labstream watch ... &`: a read would stop us
    assert not may_read_keys(True, None, 42)  # the terminal's group is unknown


def test_time_left_in_seconds_or_minutes_and_nothing_when_unknown_negative_or_absurd() -> None:
    assert time_left(100, 10) == "~10 s left"
    assert time_left(0.1, 10) == "~1 s left"
    assert time_left(6000, 10) == "~10 min left"
    assert time_left(36000, 1) == "~10 h left"
    assert time_left(100, 0) == ""  # no rate yet
    assert time_left(0, 10) == ""  # nothing left
    assert time_left(-5, 10) == ""  # more done than announced: never a negative time
    assert time_left(10**12, 1) == ""  # a stalled rate: no estimate of years


def test_a_file_of_known_size_shows_its_time_left_from_its_own_rate() -> None:
    now = [0.0]
    rates = FileRates(window=3.0, clock=lambda: now[0])
    rates.rated([FileProgress("big.bin", 0, 100 << 20), FileProgress("new.bin", 0, 0)])
    now[0] = 1.0
    big, new = rates.rated([FileProgress("big.bin", 10 << 20, 100 << 20), FileProgress("new.bin", 5, 0)])
    assert big.rate == pytest.approx(10 << 20)
    assert big.line() == "big.bin 10.0 MiB / 100.0 MiB (10%, ~9 s left)"
    assert new.left() == "" and new.line() == "new.bin 5 B"  # size unknown: no time left


def test_counts_show_the_time_left_from_the_lag_and_the_message_rate() -> None:
    base = Snapshot("download", 3, 0, 1024, lag=3600, message_rate=20.0)
    assert base.counts(0.0).endswith("lag 3600 message(s), ~3 min left")
    assert dataclasses.replace(base, lag=60).counts(0.0).endswith("lag 60 message(s), ~3 s left")
    assert dataclasses.replace(base, message_rate=0.0).counts(0.0).endswith("lag 3600 message(s)")
    assert dataclasses.replace(base, lag=None).counts(0.0).endswith("1.0 KiB, 0 B/s")


def test_console_snapshot_measures_the_message_rate_of_a_download() -> None:
    downloader = SimpleNamespace(report=DownloadReport(files=1, bytes=10, records=0), in_progress=list)
    console = Console("head", lambda: download_snapshot(downloader), threading.Event(), -1)  # type: ignore[arg-type]
    assert console.snapshot().message_rate == 0.0
    time.sleep(0.2)
    downloader.report.records = 100
    assert console.snapshot().message_rate > 100


def test_the_live_display_under_a_log_line_shows_the_counts_of_that_moment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal = io.StringIO()
    monkeypatch.setattr(sys, "stderr", terminal)
    sent = [0]

    def snapshot() -> Snapshot:
        current = () if sent[0] else (FileProgress("a.bin", 96, 100),)
        return Snapshot("watch", sent[0], 0, 0, current=current)

    # No periodic redraw during the test: only those under the lines printed.
    with LiveDisplay("watching", snapshot, RateMeter(), refresh_per_second=0.01):
        print("sending file=a.bin", file=sys.stderr)
        assert "0 sent" in terminal.getvalue() and "96%" in terminal.getvalue()
        sent[0] = 1  # the streamer counts the file, then logs it
        print("file sent file=a.bin", file=sys.stderr)
        under_the_line = terminal.getvalue().rsplit("file sent file=a.bin", 1)[1]
    assert "1 sent" in under_the_line and "0 sent" not in under_the_line
    assert "96%" not in under_the_line  # no longer drawn as in progress
