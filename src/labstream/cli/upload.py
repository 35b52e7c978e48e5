"""`labstream upload PATH...`: send files (folders recursively), wait for every acknowledgement."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from labstream.cli.common import (
    config_option,
    file_topic_option,
    human_bytes,
    key_option,
    trusted_keys_option,
)
from labstream.cli.globals import kafka_clients, load, progress_wanted
from labstream.cli.options import setting, threads_option
from labstream.runners.display import byte_progress
from labstream.runners.upload import run_upload
from labstream.settings import upload_settings
from labstream.upload import collect
from labstream.wire import WIRE_FORMATS


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@config_option
@file_topic_option
@setting("chunk_size", "--chunk-size", type=int)
@setting("partitions", "--partitions", type=int, metavar="N")
@threads_option("n_threads")
@setting("timeout", "--timeout", type=float)
@click.option(
    "--wait-verified",
    is_flag=True,
    help="Return only once a signed receipt from a trusted key confirms every file's digest.",
)
@setting("verified_by", "--verified-by", type=int)
@setting("wait_timeout", "--wait-timeout", type=float)
@setting("receipts_topic", "--receipts-topic")
@setting("wire", "--wire", type=click.Choice(sorted(WIRE_FORMATS)))
@setting("max_rate", "--max-rate")
@setting("source", "--source", metavar="NAME")
@setting("follow_links", "--follow-links/--no-follow-links")
@trusted_keys_option
@key_option
def upload(paths: tuple[str, ...], config_name: str, **given: Any) -> None:
    """Upload files (folders: every file below, subfolders kept) to TOPIC.

    Returns when the cluster has acknowledged every chunk; exits 1 if any was not. Below a
    folder, links (unless --follow-links, and then only to files inside it) and special
    files are skipped with one line each.
    """
    settings = upload_settings(load(config_name), given)
    files = list(collect(paths, follow_links=settings.follow_links))
    bar = byte_progress(sum(_size(f.path) for f in files), "uploading", enabled=progress_wanted())
    with bar as progress:
        task = progress.task_ids[0]
        outcome = run_upload(
            settings,
            files,
            clients=kafka_clients(),
            on_progress=lambda n: progress.advance(task, n),
            on_waiting=lambda line: click.echo(line, err=True),
        )
    report = outcome.report
    rate = report.bytes / max(report.seconds, 1e-9)
    click.echo(
        f"uploaded {report.files} file(s), {human_bytes(report.bytes)} in {report.chunks} "
        f"chunk(s) to {settings.topic} in {report.seconds:.2f} s ({human_bytes(rate)}/s) as source "
        f"{settings.source}; every chunk acknowledged"
    )
    if settings.wait_verified:
        click.echo(
            f"verified downstream: all {len(outcome.verdicts)} file(s), SHA-256 confirmed by "
            f"{settings.verified_by} consumer group(s) with trusted keys"
        )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # reported as a failed file by the uploader
