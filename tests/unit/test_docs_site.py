"""The docs site builds with `mkdocs build --strict`, and its reference pages come from the code."""

from __future__ import annotations

import os
import re
import runpy
import shlex
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
        ctx = click.Context(command)
        for name in command.list_commands(ctx):  # the CLI loads its commands when asked for
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _command_paths(sub, f"{path} {name}")


def _shown_commands(text: str) -> Iterator[tuple[str, list[str]]]:
    """(line, arguments after `labstream`) for every labstream command in a shell code block."""
    fence, pending = "", ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("```"):
            fence = "" if fence else (line[3:] or "text")
            continue
        if fence not in ("bash", "powershell", "console"):
            continue
        line, pending = (pending + " " + line).strip(), ""
        if line.endswith("\\"):
            pending = line[:-1]
            continue
        tokens = shlex.split(re.sub(r"\s+#.*$", "", line).replace("\\", "/"))
        for start, token in enumerate(tokens):
            if token == "labstream" and all(t == "sudo" or "=" in t for t in tokens[:start]):
                args = tokens[start + 1 :]
                ends = [i for i, t in enumerate(args) if t in ("&&", "||", ";", "|")]
                yield line, args[: ends[0]] if ends else args
                break


def _takes_value(command: click.Command, token: str) -> bool:
    options = [p for p in command.params if isinstance(p, click.Option)]
    return any(token in p.opts and not p.is_flag and not p.count for p in options)


def _parse(args: list[str], command: click.Command, name: str, parent: click.Context | None) -> None:
    """Parse as click would, without running anything; a group resolves its subcommand first.
    A subcommand written `stop|start` stands for each of them."""
    if not isinstance(command, click.Group):
        command.make_context(name, list(args), parent=parent)
        return
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if _takes_value(command, args[i]) else 1
    ctx = command.make_context(name, args[:i], parent=parent, resilient_parsing=True)
    if i == len(args):
        assert {"--version", "--help", "-h"} & set(args), f"{name}: no command"
        return
    for sub_name in args[i].split("|"):
        sub = command.get_command(ctx, sub_name)
        assert sub is not None, f"{name}: no command {sub_name!r}"
        _parse(args[i + 1 :], sub, sub_name, ctx)


def test_every_labstream_command_shown_in_the_docs_and_readme_parses() -> None:
    """Each example's command exists and takes those options and values (paths need not exist)."""
    refused, shown = [], 0
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for line, args in _shown_commands(path.read_text(encoding="utf-8")):
            shown += 1
            try:
                _parse(args, cli, "labstream", None)
            except click.exceptions.Exit:
                pass
            except click.BadParameter as exc:
                if not isinstance(exc.param.type if exc.param else None, (click.Path, click.File)):
                    refused.append(f"{path.name}: {line}: {exc.format_message()}")
            except (click.ClickException, AssertionError) as exc:
                refused.append(f"{path.name}: {line}: {exc}")
    assert shown > 50
    assert refused == []


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


def test_readme_links_point_at_existing_files() -> None:
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", (ROOT / "README.md").read_text(encoding="utf-8"))
    local = [target for target in targets if "://" not in target]
    assert any(target.startswith("docs/") for target in local)
    assert [target for target in local if not (ROOT / target).exists()] == []
