"""The docs site builds with `mkdocs build --strict`, and its reference pages come from the code."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from labstream.cli import cli
from labstream.settings.table import KEYS

ROOT = Path(__file__).resolve().parents[2]


def _generator() -> dict[str, Any]:
    # run_path compiles from source: no __pycache__ is written into docs/.
    return runpy.run_path(str(ROOT / "docs" / "gen_reference.py"))


def _command_paths(command: click.Command, path: str = "labstream") -> Iterator[str]:
    yield path
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            if not sub.hidden:
                yield from _command_paths(sub, f"{path} {name}")


def test_mkdocs_build_strict_succeeds(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml")]
    result = subprocess.run(
        [*command, "-d", str(site)],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (site / "reference" / "settings" / "index.html").is_file()
    assert (site / "reference" / "commands" / "index.html").is_file()


def test_settings_reference_lists_every_key_of_the_settings_table() -> None:
    page = _generator()["settings_page"]()
    missing = [name for name in KEYS if f"| `{name}` |" not in page]
    assert missing == []


def test_commands_reference_lists_every_click_command() -> None:
    page = _generator()["commands_page"]()
    paths = list(_command_paths(cli))
    assert len(paths) > 20  # the group, its commands and the subcommands of broker, config, service
    missing = [path for path in paths if f"## `{path}`" not in page or f"Usage: {path} " not in page]
    assert missing == []
