"""The docs site's reference pages, generated from the code (a MkDocs hook).

`settings_page()` renders the `[labstream]` table of `labstream.settings.table.KEYS`;
`commands_page()` walks the click group `labstream.cli.cli` and renders every command's
`--help` exactly as the command prints it. MkDocs adds both pages to the build in memory
(`on_files`), so nothing is written into the source tree and the pages cannot go stale.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click

SETTINGS_PAGE = "reference/settings.md"
COMMANDS_PAGE = "reference/commands.md"
HELP_WIDTH = 100  # columns of the rendered --help, fixed so the page does not follow the terminal

_SETTINGS_INTRO = """\
# `[labstream]` settings

*Generated from `src/labstream/settings/table.py` when the site is built.*

Every key can also be given on the command line (`chunk_size` as `--chunk-size`); the
command line beats the file, which beats the default. One table in the code
(`labstream/settings/table.py`) holds them all, with the defaults the help texts show. Any
command accepts every key below, so one file can serve a watcher and a downloader, and every
command refuses an unknown key with the same error. "Read by" says which commands take it
from the file. How config files are laid out: [Config files](config.md).
"""

_COMMANDS_INTRO = """\
# Commands

*Generated from the click commands in `src/labstream/cli` when the site is built: each block
is exactly what `labstream COMMAND --help` prints.*

`-v`, `-q`, `--log-format`, `--progress/--no-progress` (and `-b/--bootstrap` on the commands
that talk to Kafka) go before or after the command's name. The `[labstream]` keys the options
stand for are listed in [settings](settings.md).
"""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _default(key: Any) -> str:
    """The default as the help texts show it (`Key.shown`, else the value), `-` for none."""
    if key.shown is not None:
        return key.shown or "-"
    value = key.default
    if value is None or value == ():
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _row(key: Any, with_roles: bool, options: dict[str, str] | None = None) -> str:
    cells = [f"`{key.name}`"]
    if with_roles:
        cells.append(", ".join(sorted(key.roles)) or "-")
    if options is not None:
        cells.append(options.get(key.name, "-"))
    cells += [_cell(_default(key)), _cell(key.help)]
    return "| " + " | ".join(cells) + " |"


def settings_page() -> str:
    """Markdown: every key of the settings table, file keys first, then command-line-only ones."""
    from labstream.settings.table import KEYS

    lines = [_SETTINGS_INTRO, "| key | read by | default | meaning |", "|---|---|---|---|"]
    lines += [_row(key, True) for key in KEYS.values() if key.in_file]
    lines += [
        "",
        "## Command-line only",
        "",
        "These are options of the commands, not keys of the file: a `[labstream]` section that "
        "names one is refused like any unknown key.",
        "",
        "| key | option | default | meaning |",
        "|---|---|---|---|",
    ]
    options = _options_by_name()
    lines += [_row(key, False, options) for key in KEYS.values() if not key.in_file]
    return "\n".join(lines) + "\n"


def _options_by_name() -> dict[str, str]:
    """Each option's destination name -> its spellings, over every command (`from_time` -> `--from`)."""
    from labstream.cli import cli

    found: dict[str, str] = {}
    for _path, ctx in walk_commands(cli):
        for param in ctx.command.params:
            if isinstance(param, click.Option) and param.name and param.name not in found:
                found[param.name] = ", ".join(f"`{opt}`" for opt in param.opts + param.secondary_opts)
    return found


def walk_commands(
    command: click.Command, parent: click.Context | None = None, name: str = "labstream"
) -> Iterator[tuple[str, click.Context]]:
    """Every visible command below (and including) `command`, depth first, with its context."""
    ctx = click.Context(command, info_name=name, parent=parent, terminal_width=HELP_WIDTH)
    ctx.max_content_width = HELP_WIDTH
    yield ctx.command_path, ctx
    if isinstance(command, click.Group):
        for sub_name in command.list_commands(ctx):
            sub = command.get_command(ctx, sub_name)
            if sub is not None and not sub.hidden:
                yield from walk_commands(sub, ctx, sub_name)


def commands_page() -> str:
    """Markdown: one section per command with its `--help` text."""
    from labstream.cli import cli

    commands = list(walk_commands(cli))
    lines = [_COMMANDS_INTRO]
    lines += [f"- [`{path}`](#{_anchor(path)})" for path, _ in commands]
    for path, ctx in commands:
        lines += ["", f"## `{path}` {{#{_anchor(path)}}}", "", "```text", ctx.get_help(), "```"]
    return "\n".join(lines) + "\n"


def _anchor(path: str) -> str:
    return path.replace(" ", "-")


def on_files(files: Any, config: Any) -> Any:
    """MkDocs hook: add the generated pages to the build (never to the source tree)."""
    from mkdocs.structure.files import File

    for src_uri, render in ((SETTINGS_PAGE, settings_page), (COMMANDS_PAGE, commands_page)):
        existing = files.get_file_from_path(src_uri)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, src_uri, content=render()))
    return files
