"""`labstream upload PATH...`: send files (folders recursively), wait for every acknowledgement."""

from __future__ import annotations

from pathlib import Path

import click

from labstream.cli.common import byte_progress, config_option, human_bytes, topic_option
from labstream.config import load_config
from labstream.kafka import Producer, ensure_topic, ping, producer_settings
from labstream.upload import DEFAULT_CHUNK_SIZE, Uploader, check_chunk_size, collect
from labstream.upload.uploader import raise_if_failed


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@config_option
@topic_option
@click.option("--chunk-size", default=DEFAULT_CHUNK_SIZE, show_default=True,
              help="Bytes per chunk message, a nonzero power of two.")
@click.option("--threads", "-n", default=2, show_default=True, help="Files sent in parallel.")
@click.option("--timeout", default=15.0, show_default=True,
              help="Seconds to wait for the cluster to answer before giving up.")
def upload(paths: tuple[str, ...], config_name: str, topic: str, chunk_size: int, threads: int,
           timeout: float) -> None:
    """Upload files (folders: every file below, subfolders kept) to TOPIC.

    Returns when the cluster has acknowledged every chunk; exits 1 if any was not.
    """
    check_chunk_size(chunk_size)
    settings = producer_settings(load_config(config_name))
    files = list(collect(paths))
    ping(settings, timeout)
    ensure_topic(settings, topic, timeout=timeout)
    total = sum(_size(f.path) for f in files)
    with byte_progress(total, "uploading") as progress, Producer(settings) as producer:
        task = progress.task_ids[0]
        uploader = Uploader(producer, topic, chunk_size=chunk_size, threads=threads,
                            on_progress=lambda n: progress.advance(task, n))
        report = uploader.upload(files)
    raise_if_failed(report)
    rate = report.bytes / max(report.seconds, 1e-9)
    click.echo(f"uploaded {report.files} file(s), {human_bytes(report.bytes)} in {report.chunks} "
               f"chunk(s) to {topic} in {report.seconds:.2f} s ({human_bytes(rate)}/s); "
               "every chunk acknowledged")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # reported as a failed file by the uploader
