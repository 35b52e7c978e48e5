"""`labstream config show`: the merged config, secrets masked."""

from __future__ import annotations

import click

from labstream.cli.globals import load
from labstream.errors import ConfigError
from labstream.kafka.settings import unknown_keys
from labstream.settings import program_values


@click.group()
def config() -> None:
    """Inspect config files."""


@config.command()
@click.argument("name_or_path", default="local")
def show(name_or_path: str) -> None:
    """Print the merged config NAME_OR_PATH (a file or a built-in name), secrets masked.

    Exits 1 after a warning per key that no command would accept (a typo: `linger.mss`)."""
    merged = load(name_or_path)
    click.echo(merged.render(), nl=False)
    problems = unknown_keys(merged)
    try:
        program_values(merged)
    except ConfigError as exc:
        problems.insert(0, str(exc))
    for problem in problems:
        click.echo(f"warning: {problem}", err=True)
    if problems:
        raise SystemExit(1)
