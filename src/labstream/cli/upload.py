"""`labstream upload PATH...`: send files (folders recursively), wait for every acknowledgement."""

from __future__ import annotations

import time
import uuid
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
from labstream.cli.globals import load, progress_wanted
from labstream.cli.options import setting, threads_option
from labstream.config import Config
from labstream.errors import DeliveryError
from labstream.kafka import Producer, consumer_settings, ensure_topic, producer_settings
from labstream.kafka.clients import REAL_CLIENTS
from labstream.receipts import TrustedKeys, wait_verified
from labstream.receipts.collector import SentSpec
from labstream.runners.chunking import choose_chunk_size, fit_batches
from labstream.runners.progress import byte_progress
from labstream.settings import upload_settings
from labstream.upload import SentFile, Uploader, collect, raise_if_failed
from labstream.wire import WIRE_FORMATS


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@config_option
@file_topic_option
@setting("chunk_size", "--chunk-size", type=int)
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
    config, topic = settings.config, settings.topic
    producer_conf = producer_settings(config)
    started_ms = int(time.time() * 1000) - 5000  # receipts cannot predate the upload
    files = list(collect(paths, follow_links=settings.follow_links))
    ensure_topic(producer_conf, topic, timeout=settings.timeout)  # also the reachability check
    chunk_size = settings.chunk_size
    if settings.auto_chunk_size:
        # Sized as if encrypted (the worst case, 28 bytes more): the same size either way.
        chunk_size, limit = choose_chunk_size(REAL_CLIENTS, producer_conf, topic, encrypted=True)
        producer_conf = fit_batches(producer_conf, limit)
    total = sum(_size(f.path) for f in files)
    bar = byte_progress(total, "uploading", enabled=progress_wanted())
    with bar as progress, Producer(producer_conf) as producer:
        task = progress.task_ids[0]
        uploader = Uploader(
            producer,
            topic,
            chunk_size=chunk_size,
            threads=settings.threads,
            on_progress=lambda n: progress.advance(task, n),
            wire=settings.wire,
            max_rate=settings.max_rate,
            source=settings.source,
        )
        report = uploader.upload(files)
    raise_if_failed(report)
    rate = report.bytes / max(report.seconds, 1e-9)
    click.echo(
        f"uploaded {report.files} file(s), {human_bytes(report.bytes)} in {report.chunks} "
        f"chunk(s) to {topic} in {report.seconds:.2f} s ({human_bytes(rate)}/s) as source "
        f"{settings.source}; every chunk acknowledged"
    )
    if settings.wait_verified:
        _wait(
            config,
            settings.receipts_topic,
            report.sent,
            settings.trusted,
            started_ms,
            settings.verified_by,
            settings.wait_timeout,
            settings.source,
        )


def _wait(
    config: Config,
    topic: str,
    sent: list[SentFile],
    trusted: TrustedKeys,
    since_ms: int,
    verified_by: int,
    timeout: float,
    source: str,
) -> None:
    files: dict[str, str | SentSpec] = {
        s.source.relpath: SentSpec(s.sha256.hex(), s.file_id.hex(), source) for s in sent
    }
    # Created here if missing: a consumer would not notice it appear for minutes.
    ensure_topic(producer_settings(config), topic, partitions=1)
    click.echo(f"waiting up to {timeout:g} s for receipts on {topic} ...", err=True)
    group = f"labstream-wait-{uuid.uuid4().hex[:12]}"
    verdicts = wait_verified(
        consumer_settings(config, group),
        topic,
        files,
        trusted,
        since_ms=since_ms,
        verified_by=verified_by,
        timeout=timeout,
    )
    bad = {path: v for path, v in verdicts.items() if v != "verified"}
    if bad:
        path, verdict = next(iter(bad.items()))
        raise DeliveryError(
            f"{len(bad)} of {len(files)} file(s) not verified downstream; first: {path}: {verdict}"
        )
    click.echo(
        f"verified downstream: all {len(files)} file(s), SHA-256 confirmed by {verified_by} consumer group(s)"
        " with trusted keys"
    )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # reported as a failed file by the uploader
