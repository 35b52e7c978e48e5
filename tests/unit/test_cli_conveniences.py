"""Everyday conveniences: -h, -v/-q/--log-format anywhere, -b, environment in help, clean stop."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from labstream.cli import cli
from labstream.cli.common import stop_on_signals
from labstream.cli.globals import JsonFormatter, _StderrHandler


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def ours() -> _StderrHandler:
    (handler,) = [h for h in logging.getLogger().handlers if isinstance(h, _StderrHandler)]
    return handler


@pytest.mark.parametrize("args", [["-h"], ["watch", "-h"], ["service", "install", "-h"], ["broker", "-h"]])
def test_h_is_help_everywhere(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0 and "Usage: " in result.output and "-h, --help" in result.output


@pytest.mark.parametrize(
    ("args", "level"),
    [
        (["config", "show", "local", "-q"], logging.WARNING),
        (["-q", "config", "show", "local"], logging.WARNING),
        (["config", "show", "local", "-v", "-v"], logging.DEBUG),
        (["-v", "config", "show", "local", "-v"], logging.DEBUG),
        (["config", "show", "local"], logging.INFO),
    ],
)
def test_verbose_and_quiet_work_before_and_after_the_command(args: list[str], level: int) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert logging.getLogger().level == level


def test_log_format_json_writes_one_json_object_per_line() -> None:
    result = CliRunner().invoke(cli, ["config", "show", "local", "--log-format", "json"])
    assert result.exit_code == 0, result.output
    assert isinstance(ours().formatter, JsonFormatter)
    record = logging.LogRecord("labstream.x", logging.WARNING, __file__, 1, "file=%s\nnext", ("a b",), None)
    line = ours().formatter.format(record)  # type: ignore[union-attr]
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "WARNING" and entry["logger"] == "labstream.x"
    assert entry["message"] == "file=a b\nnext" and entry["time"].endswith("Z")


def test_bootstrap_replaces_every_bootstrap_key_of_the_config(tmp_path: Path) -> None:
    config = tmp_path / "c.config"
    config.write_text(
        "[cluster]\nbootstrap.servers = wrong:1\n[producer]\nmetadata.broker.list = wrong:2\n"
        "[consumer]\nbootstrap.servers = wrong:3\nsasl.password = hidden\n"
    )
    result = CliRunner().invoke(cli, ["config", "show", str(config), "--bootstrap", "right:9"])
    assert result.exit_code == 0, result.output
    assert "bootstrap.servers = right:9    # from --bootstrap" in result.output
    assert "wrong" not in result.output and "hidden" not in result.output
    before = CliRunner().invoke(cli, ["-b", "right:9", "config", "show", str(config)])
    assert before.output == result.output
    assert "no such option" in CliRunner().invoke(cli, ["keygen", "-b", "x:1"]).output.lower()


def test_bootstrap_must_name_a_server(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["config", "show", "local", "-b", " "])
    assert result.exit_code == 1 and "--bootstrap: give HOST:PORT" in result.output


@pytest.mark.parametrize(
    ("command", "names"),
    [
        ("watch", ["LABSTREAM_ENCRYPTION_KEY", "LABSTREAM_HEARTBEAT_TOPIC", "LABSTREAM_BOOTSTRAP"]),
        ("download", ["LABSTREAM_ENCRYPTION_KEY_FILE", "LABSTREAM_HEARTBEAT_TOPIC"]),
        ("dashboard", ["LABSTREAM_DASHBOARD_TOKEN"]),
        ("upload", ["LABSTREAM_ENCRYPTION_KEY", "${VAR:-default}"]),
    ],
)
def test_help_lists_the_environment_each_command_reads(command: str, names: list[str]) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    environment = result.output.split("Environment:")[1]
    assert all(name in environment for name in names)


def test_a_clean_stop_is_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    stop = threading.Event()
    caplog.set_level(logging.INFO, logger="labstream")
    with stop_on_signals(stop) as state:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(10)
    (record,) = [r for r in caplog.records if "stopping cleanly" in r.getMessage()]
    assert record.levelno == logging.INFO and state["code"] == 0
