"""`labstream upload PATH...`: send files (folders recursively), wait for every acknowledgement."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import click

from labstream.cli.common import (
    byte_progress,
    config_option,
    human_bytes,
    key_option,
    topic_option,
    trusted_keys_option,
)
from labstream.config import Config, load_config
from labstream.errors import DeliveryError
from labstream.kafka import Producer, consumer_settings, ensure_topic, producer_settings
from labstream.receipts import TrustedKeys, wait_verified
from labstream.receipts import receipts_topic as default_receipts
from labstream.receipts.keys import require_trusted, trusted_keys
from labstream.upload import (
    DEFAULT_CHUNK_SIZE,
    SentFile,
    Uploader,
    check_chunk_size,
    collect,
    raise_if_failed,
)
from labstream.upload.rate import parse_rate
from labstream.wire import WIRE_FORMATS, wire_format
from labstream.wire.crypto import load_cipher


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@config_option
@topic_option
@click.option(
    "--chunk-size",
    default=DEFAULT_CHUNK_SIZE,
    show_default=True,
    help="Bytes per chunk message, a nonzero power of two.",
)
@click.option("--threads", "-n", default=2, show_default=True, help="Files sent in parallel.")
@click.option(
    "--timeout",
    default=15.0,
    show_default=True,
    help="Seconds to wait for the cluster to answer before giving up.",
)
@click.option(
    "--wait-verified",
    is_flag=True,
    help="Return only once a signed receipt from a trusted key confirms every file's digest.",
)
@click.option(
    "--verified-by",
    default=1,
    show_default=True,
    help="With --wait-verified: distinct trusted keys (groups) that must confirm.",
)
@click.option(
    "--wait-timeout",
    default=300.0,
    show_default=True,
    help="With --wait-verified: seconds to wait for the receipts.",
)
@click.option("--receipts-topic", default=None, help="Receipts topic [TOPIC.receipts].")
@click.option(
    "--wire",
    "wire_name",
    type=click.Choice(sorted(WIRE_FORMATS)),
    default="labstream",
    show_default=True,
    help="Chunk format: labstream's (v2), labstream-v1 for older downloaders, or openmsistream's.",
)
@click.option("--max-rate", default=None, help="Bandwidth limit for all threads, e.g. 20MiB/s [none].")
@trusted_keys_option
@key_option
def upload(
    paths: tuple[str, ...],
    config_name: str,
    topic: str,
    chunk_size: int,
    threads: int,
    timeout: float,
    wait_verified: bool,
    verified_by: int,
    wait_timeout: float,
    receipts_topic: str | None,
    wire_name: str,
    max_rate: str | None,
    receipts_trusted_keys: str | None,
    encryption_key_file: str | None,
) -> None:
    """Upload files (folders: every file below, subfolders kept) to TOPIC.

    Returns when the cluster has acknowledged every chunk; exits 1 if any was not.
    """
    check_chunk_size(chunk_size)
    rate = parse_rate(max_rate) if max_rate else None
    wire = wire_format(wire_name, load_cipher(encryption_key_file))
    config = load_config(config_name)
    trusted = TrustedKeys()
    if wait_verified:  # refused before sending anything: nothing could ever confirm
        trusted = require_trusted(trusted_keys(config, receipts_trusted_keys), "--wait-verified")
    settings = producer_settings(config)
    started_ms = int(time.time() * 1000) - 5000  # receipts cannot predate the upload
    files = list(collect(paths))
    ensure_topic(settings, topic, timeout=timeout)  # also the reachability check
    total = sum(_size(f.path) for f in files)
    with byte_progress(total, "uploading") as progress, Producer(settings) as producer:
        task = progress.task_ids[0]
        uploader = Uploader(
            producer,
            topic,
            chunk_size=chunk_size,
            threads=threads,
            on_progress=lambda n: progress.advance(task, n),
            wire=wire,
            max_rate=rate,
        )
        report = uploader.upload(files)
    raise_if_failed(report)
    rate = report.bytes / max(report.seconds, 1e-9)
    click.echo(
        f"uploaded {report.files} file(s), {human_bytes(report.bytes)} in {report.chunks} "
        f"chunk(s) to {topic} in {report.seconds:.2f} s ({human_bytes(rate)}/s); "
        "every chunk acknowledged"
    )
    if wait_verified:
        _wait(
            config,
            receipts_topic or default_receipts(topic),
            report.sent,
            trusted,
            started_ms,
            verified_by,
            wait_timeout,
        )


def _wait(
    config: Config,
    topic: str,
    sent: list[SentFile],
    trusted: TrustedKeys,
    since_ms: int,
    verified_by: int,
    timeout: float,
) -> None:
    files = {s.source.relpath: s.sha256.hex() for s in sent}
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
