"""`labstream keygen FILE`: a new encryption key, readable only by you."""

from __future__ import annotations

import os
from pathlib import Path

import click

from labstream.wire.crypto import new_key


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def keygen(path: Path) -> None:
    """Write a new random AES-256 key to PATH (mode 0600); refuses to overwrite one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(new_key() + "\n")
    click.echo(f"wrote a new key to {path}; give the same file to senders and receivers")
