"""`labstream ls TOPIC`: the files a topic holds, like `kcat -L` for files."""

from __future__ import annotations

import json
from dataclasses import dataclass

import click

from labstream.browse import list_topic, parse_time
from labstream.browse.index import FileEntry, FileIndex
from labstream.cli.common import config_option, human_bytes
from labstream.cli.globals import load
from labstream.kafka import consumer_settings
from labstream.logsafe import shown
from labstream.times import format_ms

__all__ = ["ls"]


@click.command("ls")
@click.argument("topic")
@config_option
@click.option(
    "--since", default=None, metavar="TIME", help="Only chunks sent from TIME: 2024-05-01T13:00, 6h, 2d."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per send, one per line.")
def ls(topic: str, config_name: str, since: str | None, as_json: bool) -> None:
    """List the files in TOPIC, one row per send: size, SHA-256, chunks present/expected,
    first/last time, state, source, file id and path. A send is complete when every chunk,
    the last one included, is in the topic; aborted when its sender gave it up (the file
    changed while it was read); live while a live file is still growing (its size: the bytes
    a prefix hash in the topic covers so far). Wire v1 and openmsistream chunks name a file by its digest,
    so their sends of the same bytes share a row. Reads the topic once, up to its end at the
    start, without joining a consumer group; memory stays flat (a temporary file holds the
    index). Encrypted files are listed too: chunk headers need no key. The summary goes to
    stderr, on its own line."""
    since_ms = parse_time(since) if since else None
    settings = consumer_settings(load(config_name), None)
    with list_topic(settings, topic, since_ms=since_ms) as index:
        counts = _Counts.of(index)
        if as_json:
            for entry in index.files():
                click.echo(json.dumps(entry.as_dict()))
        else:
            _print_table(index, counts.source_width)
        click.echo(counts.summary(index), err=True)


@dataclass
class _Counts:
    """One pass over the index: the summary's numbers and the source column's width."""

    total: int = 0
    complete: int = 0
    live: int = 0
    aborted: int = 0
    encrypted: int = 0
    source_width: int = len("SOURCE")

    @classmethod
    def of(cls, index: FileIndex) -> _Counts:
        counts = cls()
        for entry in index.files():
            counts.total += 1
            counts.complete += entry.complete
            counts.aborted += entry.aborted
            counts.live += entry.state == "live"
            counts.encrypted += entry.encrypted
            counts.source_width = max(counts.source_width, len(_source(entry)))
        return counts

    def summary(self, index: FileIndex) -> str:
        partial = self.total - self.complete - self.live - self.aborted
        live = f"{self.live} live, " if self.live else ""
        line = (
            f"{self.total} send(s): {self.complete} complete, {live}{partial} partial, "
            f"{self.aborted} aborted; from {index.messages} message(s)"
        )
        if index.unreadable:
            line += f"; {index.unreadable} unreadable (not a chunk labstream can read)"
        if self.encrypted:
            line += "; * encrypted"
        return line


def _print_table(index: FileIndex, source_width: int) -> None:
    click.echo(
        f"{'SIZE':>10}  {'SHA-256':16}  {'CHUNKS':>11}  {'FIRST':19}  {'LAST':19}  {'STATE':9}  "
        f"{'SOURCE':{source_width}}  {'FILE ID':8}  PATH"
    )
    for entry in index.files():
        click.echo(_row(entry, source_width))


def _source(entry: FileEntry) -> str:
    return shown(entry.source, limit=64) if entry.source else "-"


def _row(entry: FileEntry, source_width: int) -> str:
    size = human_bytes(entry.size) if entry.size >= 0 else "?"
    chunks = f"{entry.chunks_present}/{'?' if entry.live else entry.chunks_expected}"
    state = entry.state + ("*" if entry.encrypted else "")
    digest = entry.digest[:16] if entry.hash_name == "sha256" else f"{entry.hash_name}:{entry.digest[:9]}"
    return (
        f"{size:>10}  {digest or '-':16}  {chunks:>11}  {format_ms(entry.first_ms):19}  "
        f"{format_ms(entry.last_ms):19}  {state:9}  {_source(entry):{source_width}}  "
        f"{entry.file_id[:8] or '-':8}  {shown(entry.path)}"
    )
