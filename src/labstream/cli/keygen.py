"""`labstream keygen FILE`: a new encryption key, readable only by you."""

from __future__ import annotations

import os
from pathlib import Path

import click

from labstream.errors import ConfigError
from labstream.wire.crypto import new_key


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--rotate",
    is_flag=True,
    help="Append a new key to an existing key file: new data is sealed with it, old data stays readable.",
)
def keygen(path: Path, rotate: bool) -> None:
    """Write a new random AES-256 key to PATH (mode 0600); refuses to overwrite one."""
    if rotate:
        _rotate(path)
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(new_key() + "\n")
    click.echo(f"wrote a new key to {path}; give the same file to senders and receivers")


def _rotate(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND)
    except OSError as exc:
        raise ConfigError(f"cannot rotate {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "r+") as handle:
        ends_with_newline = handle.read().endswith("\n")
        handle.write(("" if ends_with_newline else "\n") + new_key() + "\n")
    click.echo(f"appended a new key to {path}; give the file to the receivers first, then to the senders")
