"""`labstream resend PATH...`: send files of a watched folder again, on demand."""

from __future__ import annotations

import os
from pathlib import Path

import click

from labstream.config import load_config
from labstream.errors import ConfigError
from labstream.kafka import Producer, ping, producer_settings
from labstream.upload import SourceFile, Uploader, raise_if_failed
from labstream.upload.ledger import UploadLedger
from labstream.upload.source import relative_path


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
@click.option("-c", "--config", "config_name", default=None, help="Config [the watcher's].")
def resend(paths: tuple[Path, ...], state: Path, config_name: str | None) -> None:
    """Send files of the watched folder again (e.g. after a downstream failure)."""
    with UploadLedger(state / "ledger.sqlite") as ledger:
        root, topic = ledger.meta("root"), ledger.meta("topic")
        config_path = config_name or ledger.meta("config")
        if not root or not topic or not config_path:
            raise ConfigError(f"{state} is not a watcher state folder")
        sources = [SourceFile(p, _relpath(p, Path(root))) for p in paths]
        settings = producer_settings(load_config(config_path))
        ping(settings)
        with Producer(settings) as producer:
            report = Uploader(producer, topic).upload(sources)
        for sent in report.sent:
            st = os.stat(sent.source.path)
            ledger.set(
                sent.source.relpath,
                st.st_size,
                st.st_mtime_ns,
                "sent",
                sha256=sent.sha256,
                reason="resent on request",
            )
    raise_if_failed(report)
    click.echo(f"resent {report.files} file(s) to {topic}")


def _relpath(path: Path, root: Path) -> str:
    try:
        return relative_path(path.resolve(), root)
    except ValueError as exc:
        raise ConfigError(f"{path} is not inside the watched folder {root}") from exc
