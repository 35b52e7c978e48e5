"""`labstream config show`: the merged config, secrets masked."""

from __future__ import annotations

import click

from labstream.cli.globals import load


@click.group()
def config() -> None:
    """Inspect config files."""


@config.command()
@click.argument("name_or_path", default="local")
def show(name_or_path: str) -> None:
    """Print the merged config NAME_OR_PATH (a file or a built-in name), secrets masked."""
    click.echo(load(name_or_path).render(), nl=False)
