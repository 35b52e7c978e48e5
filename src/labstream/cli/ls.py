"""`labstream ls TOPIC`: the files a topic holds, like `kcat -L` for files."""

from __future__ import annotations

import json

import click

from labstream.browse import list_topic, parse_time
from labstream.browse.index import FileEntry, FileIndex
from labstream.browse.times import format_ms
from labstream.cli.common import config_option, human_bytes
from labstream.cli.globals import load
from labstream.kafka import consumer_settings
from labstream.logsafe import shown

__all__ = ["ls"]


@click.command("ls")
@click.argument("topic")
@config_option
@click.option(
    "--since", default=None, metavar="TIME", help="Only chunks sent from TIME: 2024-05-01T13:00, 6h, 2d."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file version, one per line.")
def ls(topic: str, config_name: str, since: str | None, as_json: bool) -> None:
    """List the files in TOPIC: path, size, SHA-256, chunks present/expected, first/last
    time, complete or not. Reads the topic once, up to its end at the start, without joining
    a consumer group; memory stays flat (a temporary file holds the index). Encrypted files
    are listed too: chunk headers need no key."""
    since_ms = parse_time(since) if since else None
    settings = consumer_settings(load(config_name), None)
    with list_topic(settings, topic, since_ms=since_ms) as index:
        if as_json:
            for entry in index.files():
                click.echo(json.dumps(entry.as_dict()))
        else:
            _print_table(index)
        _print_summary(index)


def _print_table(index: FileIndex) -> None:
    click.echo(f"{'SIZE':>10}  {'SHA-256':16}  {'CHUNKS':>11}  {'FIRST':19}  {'LAST':19}  STATE     PATH")
    for entry in index.files():
        click.echo(_row(entry))


def _row(entry: FileEntry) -> str:
    size = human_bytes(entry.size) if entry.size >= 0 else "?"
    chunks = f"{entry.chunks_present}/{entry.chunks_expected}"
    state = "complete" if entry.complete else "partial"
    if entry.encrypted:
        state += "*"
    digest = entry.digest[:16] if entry.hash_name == "sha256" else f"{entry.hash_name}:{entry.digest[:9]}"
    return (
        f"{size:>10}  {digest:16}  {chunks:>11}  {format_ms(entry.first_ms):19}  "
        f"{format_ms(entry.last_ms):19}  {state:8}  {shown(entry.path)}"
    )


def _print_summary(index: FileIndex) -> None:
    total = complete = encrypted = 0
    for entry in index.files():
        total += 1
        complete += entry.complete
        encrypted += entry.encrypted
    line = f"{total} file version(s), {complete} complete, from {index.messages} message(s)"
    if index.unreadable:
        line += f"; {index.unreadable} unreadable (not a chunk labstream can read)"
    if encrypted:
        line += "; * encrypted"
    click.echo(line, err=True)
