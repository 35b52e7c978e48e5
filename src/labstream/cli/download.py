"""`labstream download DIR`: rebuild files from a topic, verified, until stopped or idle."""

from __future__ import annotations

import sys
import threading
from contextlib import ExitStack
from pathlib import Path

import click

from labstream.cli.common import (
    config_option,
    human_bytes,
    key_option,
    receipts_key_option,
    stop_on_signals,
    topic_option,
)
from labstream.cli.limits import limits_from, limits_options
from labstream.cli.telemetry import TelemetryOptions, monitoring, telemetry_options
from labstream.config import Config, load_config
from labstream.download import Downloader
from labstream.heartbeat.sources import counts_source
from labstream.kafka import consumer_settings, ensure_topic, producer_settings, static_membership
from labstream.receipts import ReceiptPublisher, SigningKey
from labstream.receipts import receipts_topic as default_receipts
from labstream.receipts.keys import signing_key
from labstream.receipts.signing import heartbeat_signer
from labstream.wire.crypto import load_cipher


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@config_option
@topic_option
@click.option(
    "--group",
    "-g",
    default=None,
    help="Consumer group (default: [consumer] group.id, else labstream-download).",
)
@click.option("--threads", "-n", default=1, show_default=True, help="Consumers in this process.")
@click.option(
    "--exit-when-idle",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Stop after SECONDS without new messages.",
)
@click.option(
    "--receipts/--no-receipts",
    default=True,
    show_default=True,
    help="Publish a receipt for every verified or failed file.",
)
@click.option("--receipts-topic", default=None, help="Receipts topic [TOPIC.receipts].")
@click.option(
    "--timeout",
    default=15.0,
    show_default=True,
    help="Seconds to wait for the cluster to answer before giving up.",
)
@click.option(
    "--stop-grace-seconds",
    default=10.0,
    show_default=True,
    help="On Ctrl+C/SIGTERM, files more than half received may finish this long; 0: stop at once.",
)
@receipts_key_option
@key_option
@telemetry_options
@limits_options
def download(
    directory: Path,
    config_name: str,
    topic: str,
    group: str | None,
    threads: int,
    exit_when_idle: float | None,
    receipts: bool,
    receipts_topic: str | None,
    timeout: float,
    stop_grace_seconds: float,
    receipts_key: str | None,
    encryption_key_file: str | None,
    telemetry: TelemetryOptions,
    limit_values: dict[str, object],
) -> None:
    """Rebuild files from TOPIC into DIRECTORY, subfolders kept, each verified by SHA-256.

    Runs until Ctrl+C or SIGTERM (or --exit-when-idle); scale out by starting more
    downloaders with the same --group.
    """
    cipher = load_cipher(encryption_key_file)
    config = load_config(config_name)
    limits = limits_from(config, limit_values)
    key = signing_key(config, receipts_key) if receipts else None
    settings = static_membership(consumer_settings(config, group), config, directory)
    # Also the reachability check. A downloader may start before anything was uploaded: the
    # topic it waits for must exist, or the consumer would not notice it appear for minutes.
    ensure_topic(producer_settings(config), topic, timeout=timeout)
    stop = threading.Event()
    with ExitStack() as stack:
        publisher = None
        if receipts:
            publisher = stack.enter_context(
                _publisher(config, receipts_topic or default_receipts(topic), str(settings["group.id"]), key)
            )
        downloader = Downloader(
            settings,
            topic,
            directory,
            threads=threads,
            exit_when_idle=exit_when_idle,
            stop=stop,
            on_verdict=publisher.publish if publisher else None,
            cipher=cipher,
            limits=limits,
            stop_grace=stop_grace_seconds,
        )
        group_id = str(settings["group.id"])
        stack.enter_context(
            monitoring(
                config,
                telemetry,
                role="download",
                subject=f"{topic}/{group_id}",
                source=lambda last_error: counts_source(
                    lambda: downloader.report, topic, group_id, last_error
                ),
                lag_of=(group_id, topic),
                sign=heartbeat_signer(key) if key is not None else None,
            )
        )
        with stop_on_signals(stop) as signalled:
            report = downloader.run()
    click.echo(
        f"downloaded {report.files} verified file(s) into {directory}; "
        f"{report.failed} failed, {report.rejected} message(s) rejected, "
        f"{report.duplicates} duplicate chunk(s) ignored; {human_bytes(report.bytes)} read "
        f"in {report.seconds:.1f} s"
    )
    if report.failed or report.rejected:
        click.echo(
            f"see the log above; failed files are kept in {directory / '.labstream' / 'failed'}", err=True
        )
    sys.exit(signalled["code"] or (2 if report.failed or report.rejected else 0))


def _publisher(config: Config, topic: str, group: str, key: SigningKey | None) -> ReceiptPublisher:
    settings = producer_settings(config)
    ensure_topic(settings, topic, partitions=1)
    return ReceiptPublisher(settings, topic, group, key)
