"""`labstream get TOPIC PATH... -o DIR`: fetch given files once, verified."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import click

from labstream.browse import FetchState, fetch_files, parse_time
from labstream.cli.common import config_option, key_option, stop_on_signals
from labstream.cli.globals import load
from labstream.download.limits import LIMIT_KEYS, Limits
from labstream.kafka import consumer_settings
from labstream.logsafe import shown
from labstream.settings.table import DOWNLOAD, resolve
from labstream.wire.crypto import load_cipher

__all__ = ["get"]


@click.command("get")
@click.argument("topic")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the files into (as `download` would).",
)
@config_option
@click.option("--since", default=None, metavar="TIME", help="Read only from TIME: 2024-05-01T13:00, 6h, 2d.")
@key_option
def get(
    topic: str,
    paths: tuple[str, ...],
    out_dir: Path,
    config_name: str,
    since: str | None,
    encryption_key_file: str | None,
) -> None:
    """Fetch the files PATH... (relative paths as sent, see `labstream ls`) from TOPIC into
    the folder given by -o/--output, once, without joining a consumer group. Each file is
    verified (size, SHA-256, key) and placed atomically, as `download` does. When a path was
    sent several times, the newest complete send is the one left there (partial and aborted
    sends are skipped).
    Exit 1 if any file is missing, incomplete or failed."""
    config = load(config_name)
    values = resolve(config, DOWNLOAD, {"encryption_key_file": encryption_key_file})
    limits = Limits.from_values({key: values[key] for key in LIMIT_KEYS})
    cipher = load_cipher(values["encryption_key_file"])
    stop = threading.Event()
    with stop_on_signals(stop) as signals:
        results = fetch_files(
            consumer_settings(config, None),
            topic,
            list(paths),
            out_dir,
            since_ms=parse_time(since) if since else None,
            cipher=cipher,
            limits=limits,
            stop=stop,
        )
    for path, result in results.items():
        reason = f": {shown(result.reason)}" if result.reason else ""
        origin = f" (from {shown(result.source)})" if result.source else ""
        where = f" -> {shown(result.stored_as)}" if result.stored_as else ""
        click.echo(f"{result.state.value:15}  {shown(path)}{origin}{where}{reason}")
    good = sum(r.state.ok for r in results.values())
    click.echo(f"{good} of {len(results)} file(s) verified in {out_dir}", err=True)
    if signals["code"]:
        sys.exit(signals["code"])
    if good < len(results):
        missing = [p for p, r in results.items() if r.state is FetchState.MISSING]
        if missing:
            click.echo(
                "missing files: check the paths with `labstream ls TOPIC`, or an earlier --since", err=True
            )
        sys.exit(1)
