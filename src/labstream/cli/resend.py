"""`labstream resend PATH...`: send files of a watched folder again, on demand."""

from __future__ import annotations

import os
from pathlib import Path

import click

from labstream.cli.common import key_option
from labstream.cli.globals import kafka_clients, load
from labstream.errors import ConfigError
from labstream.kafka import producer_settings
from labstream.settings import resolve
from labstream.state import WatchState
from labstream.upload import SourceFile, Uploader, check_chunk_size, raise_if_failed
from labstream.upload.ledger import UploadLedger, UploadState
from labstream.upload.source import relative_path
from labstream.wire import WireFormat, wire_format
from labstream.wire.crypto import load_cipher


@click.command()
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--state",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The watcher's state folder (see `labstream status`).",
)
@click.option("-c", "--config", "config_name", default=None, help="Config [default: the watcher's].")
@key_option
def resend(
    paths: tuple[Path, ...], state: Path, config_name: str | None, encryption_key_file: str | None
) -> None:
    """Send files of the watched folder again (e.g. after a downstream failure).

    They are sent as the watcher sends: same wire format, chunk size and encryption key.
    """
    with UploadLedger(WatchState(state).ledger) as ledger:
        root, topic = ledger.meta("root"), ledger.meta("topic")
        config_path = config_name or ledger.meta("config")
        if not root or not topic or not config_path:
            raise ConfigError(f"{state} is not a watcher state folder")
        sources = [SourceFile(p, _relpath(p, Path(root))) for p in paths]
        config = load(config_path)
        chunk_size, wire = _as_the_watcher(ledger, resolve(config, "watch", {}), encryption_key_file)
        settings = producer_settings(config)
        clients = kafka_clients()
        clients.ping(settings)
        with clients.producer(settings) as producer:
            # As the watcher sends: under its source, so the copy replaces the watcher's own.
            source = ledger.meta("source") or ""
            report = Uploader(producer, topic, chunk_size=chunk_size, wire=wire, source=source).upload(
                sources
            )
        for sent in report.sent:
            st = os.stat(sent.source.path)
            ledger.set(
                sent.source.relpath,
                st.st_size,
                st.st_mtime_ns,
                UploadState.SENT,
                sha256=sent.sha256,
                reason="resent on request",
                file_id=sent.file_id,  # its receipts name this send
            )
    raise_if_failed(report)
    click.echo(f"resent {report.files} file(s) to {topic}")


def _as_the_watcher(
    ledger: UploadLedger, options: dict[str, object], key_file: str | None
) -> tuple[int, WireFormat]:
    """Chunk size and wire format (sealed if the watcher seals): what the watcher recorded in
    its ledger, else its config's [labstream] section, else the defaults."""
    chunk_size = check_chunk_size(int(ledger.meta("chunk_size") or str(options["chunk_size"])))
    key_file = key_file or ledger.meta("encryption_key_file") or _str_or_none(options["encryption_key_file"])
    cipher = load_cipher(key_file)
    if cipher is None and ledger.meta("encrypted") == "1":
        raise ConfigError(
            "the watcher encrypts what it sends but no key is found: give --encryption-key-file "
            "or set LABSTREAM_ENCRYPTION_KEY(_FILE)"
        )
    return chunk_size, wire_format(ledger.meta("wire") or str(options["wire"]), cipher)


def _str_or_none(value: object) -> str | None:
    return str(value) if value else None


def _relpath(path: Path, root: Path) -> str:
    try:
        return relative_path(path.resolve(), root)
    except ValueError as exc:
        raise ConfigError(f"{path} is not inside the watched folder {root}") from exc
