"""`labstream keygen FILE`: a new encryption key, or (`--receipts`) a receipt signing key pair."""

from __future__ import annotations

import os
from pathlib import Path

import click

from labstream.errors import ConfigError
from labstream.receipts.signing import exclusive_write, write_keypair
from labstream.wire.crypto import new_key


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--rotate",
    is_flag=True,
    help="Append a new key to an existing key file: new data is sealed with it, old data stays readable.",
)
@click.option(
    "--receipts",
    is_flag=True,
    help="Write an Ed25519 receipt signing key to PATH and its public key to PATH.pub.",
)
def keygen(path: Path, rotate: bool, receipts: bool) -> None:
    """Write a new random AES-256 key to PATH (mode 0600); refuses to overwrite one.

    With --rotate: append a new key to PATH (the newest seals, all of them open).
    With --receipts: a signing key for a downloader or processor group (PATH, mode 0600,
    `receipts_signing_key`) and its public key (PATH.pub) for the instrument side's
    `receipts_trusted_keys`.
    """
    if rotate and receipts:
        raise ConfigError("--rotate is for encryption keys; make a new receipt key pair instead")
    if rotate:
        _rotate(path)
        return
    if receipts:
        public, key_id = write_keypair(path)
        click.echo(
            f"wrote receipt signing key {path} (key id {key_id}): give it to one downloader group "
            f"as receipts_signing_key; list {public} in the watcher's receipts_trusted_keys"
        )
        return
    exclusive_write(path, (new_key() + "\n").encode(), 0o600)
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
