"""What a watcher loads: its own command and runner, not the other stages nor rich (issue 29:
a fleet of watchers on one machine, each under 60 MiB). Each check runs in a fresh
interpreter, since this test process has imported everything already."""

from __future__ import annotations

import json
import subprocess
import sys

import click

import labstream.runners
from labstream.cli import COMMANDS, cli

# Modules a watcher has no use for (the dashboard's web stack, the S3 and metrics extras,
# encryption unless a key is given, the live display unless it is drawn, other stages'
# commands and runners; the settings still read the download and process option modules).
NOT_FOR_A_WATCHER = (
    "rich",
    "starlette",
    "uvicorn",
    "cryptography",
    "prometheus_client",
    "boto3",
    "labstream.cli.download",
    "labstream.cli.dashboard",
    "labstream.cli.doctor",
    "labstream.runners.download",
    "labstream.runners.process",
    "labstream.dashboard",
    "labstream.doctor",
)

_WATCHER_IMPORTS = """
import json, sys
import click
from labstream.cli import cli
cli.get_command(click.Context(cli), "watch")  # what `labstream watch ...` loads to run
from labstream.runners import run_watch
import labstream.runners.watch
print(json.dumps(sorted(sys.modules)))
"""


def _modules_after(code: str) -> set[str]:
    command = [sys.executable, "-c", code]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_the_watch_command_and_its_runner_import_no_other_stage_nor_rich() -> None:
    loaded = _modules_after(_WATCHER_IMPORTS)
    assert "labstream.runners.watch" in loaded and "labstream.cli.watch" in loaded
    unwanted = {m for m in loaded for name in NOT_FOR_A_WATCHER if m == name or m.startswith(name + ".")}
    assert unwanted == set()


def test_every_command_is_listed_and_loads_when_asked_for() -> None:
    ctx = click.Context(cli)
    assert cli.list_commands(ctx) == sorted(COMMANDS)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name
        assert any("--log-format" in p.opts for p in command.params if isinstance(p, click.Option)), name


def test_every_runner_is_found_through_the_package() -> None:
    for name in labstream.runners.__all__:
        assert callable(getattr(labstream.runners, name)), name
    assert set(labstream.runners.__all__) <= set(dir(labstream.runners))
