"""`labstream process PROCESSOR`: hand every verified file of a topic to code."""

from __future__ import annotations

import sys
import threading
from contextlib import ExitStack
from pathlib import Path

import click

from labstream.cli.common import (
    config_option,
    key_option,
    receipts_key_option,
    stop_on_signals,
    topic_option,
)
from labstream.cli.limits import limits_from, limits_options
from labstream.cli.telemetry import TelemetryOptions, monitoring, telemetry_options
from labstream.config import load_config
from labstream.errors import ConfigError
from labstream.heartbeat.sources import counts_source
from labstream.kafka import consumer_settings, ensure_topic, producer_settings, static_membership
from labstream.process import ProcessRunner, load_processor
from labstream.receipts import ReceiptPublisher
from labstream.receipts import receipts_topic as default_receipts
from labstream.receipts.keys import signing_key
from labstream.receipts.signing import heartbeat_signer
from labstream.upload.ledger import default_state_dir
from labstream.wire.crypto import load_cipher


@click.command()
@click.argument("processor")
@config_option
@topic_option
@click.option("--group", "-g", default=None, help="Consumer group [labstream-process-<processor>].")
@click.option(
    "--threads",
    "-n",
    default=1,
    show_default=True,
    help="Consumers in this process (the processor must then be thread-safe).",
)
@click.option(
    "--option",
    "-o",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Passed to the processor class (repeatable), e.g. -o bucket=raw-data.",
)
@click.option("--retries", default=2, show_default=True, help="Attempts after the first failure.")
@click.option("--reprocess-failed", is_flag=True, help="First retry the files that failed before.")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where files are rebuilt before processing [per-user state folder].",
)
@click.option("--exit-when-idle", type=float, default=None, metavar="SECONDS")
@click.option("--receipts/--no-receipts", default=True, show_default=True)
@receipts_key_option
@key_option
@telemetry_options
@limits_options
def process(
    processor: str,
    config_name: str,
    topic: str,
    group: str | None,
    threads: int,
    options: tuple[str, ...],
    retries: int,
    reprocess_failed: bool,
    workdir: Path | None,
    exit_when_idle: float | None,
    receipts: bool,
    receipts_key: str | None,
    encryption_key_file: str | None,
    telemetry: TelemetryOptions,
    limit_values: dict[str, object],
) -> None:
    """Run PROCESSOR (s3, metadata, module:Name or file.py:Name) on every file of TOPIC."""
    config = load_config(config_name)
    limits = limits_from(config, limit_values)
    key = signing_key(config, receipts_key) if receipts else None
    group = group or f"labstream-process-{processor.replace(':', '-').replace('/', '-')}"
    settings = consumer_settings(config, group)
    ensure_topic(producer_settings(config), topic)  # also the reachability check
    kwargs = dict(_split(o) for o in options)
    workdir = workdir or default_state_dir(Path("process"), f"{topic}-{settings['group.id']}")
    settings = static_membership(settings, config, workdir)
    stop = threading.Event()
    with ExitStack() as stack:
        built = load_processor(processor, kwargs, {"config": config, "data_topic": topic})
        stack.callback(built.close)
        publisher = None
        if receipts:
            receipts_topic = default_receipts(topic)
            ensure_topic(producer_settings(config), receipts_topic, partitions=1)
            publisher = stack.enter_context(
                ReceiptPublisher(producer_settings(config), receipts_topic, str(settings["group.id"]), key)
            )
        runner = ProcessRunner(
            built,
            settings,
            topic,
            workdir,
            threads=threads,
            retries=retries,
            exit_when_idle=exit_when_idle,
            stop=stop,
            publisher=publisher,
            cipher=load_cipher(encryption_key_file),
            limits=limits,
        )
        group_id = str(settings["group.id"])
        stack.enter_context(
            monitoring(
                config,
                telemetry,
                role="process",
                subject=f"{topic}/{group_id}",
                source=lambda errors: counts_source(lambda: runner.report, topic, group_id, errors),
                lag_of=(group_id, topic),
                sign=heartbeat_signer(key) if key is not None else None,
            )
        )
        with stop_on_signals(stop) as signalled:
            report = runner.run(reprocess_failed=reprocess_failed)
    click.echo(
        f"processed {report.processed} file(s), {report.failed} failed "
        f"({report.reprocessed} reprocessed); failed files kept in {runner.failed_dir}"
    )
    sys.exit(signalled["code"] or (2 if report.failed else 0))


def _split(option: str) -> tuple[str, str]:
    key, sep, value = option.partition("=")
    if not sep or not key:
        raise ConfigError(f"--option {option!r}: expected KEY=VALUE")
    return key.replace("-", "_"), value
