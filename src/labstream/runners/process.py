"""`run_process`: every verified file of a topic -> a processor, with receipts and heartbeats."""

from __future__ import annotations

import threading
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from labstream.download.placement import check_writable
from labstream.kafka import consumer_settings, producer_settings, static_membership
from labstream.kafka.clients import REAL_CLIENTS, KafkaClients
from labstream.locks import InstanceLock
from labstream.process import ProcessRunner, load_processor
from labstream.process.runner import ProcessReport
from labstream.runners.console import QUIET, Console, ConsoleMode
from labstream.runners.progress import Snapshot, in_progress
from labstream.runners.receipts import open_publisher
from labstream.runners.telemetry import group_monitoring, lag_query
from labstream.settings import ProcessSettings
from labstream.state import OutputState
from labstream.upload.ledger import default_state_dir

__all__ = ["ProcessOutcome", "process_snapshot", "run_process"]


@dataclass(frozen=True)
class ProcessOutcome:
    report: ProcessReport
    failed_dir: Path


def run_process(
    settings: ProcessSettings,
    stop: threading.Event,
    *,
    clients: KafkaClients = REAL_CLIENTS,
    console: ConsoleMode = QUIET,
) -> ProcessOutcome:
    """Process until `stop` is set or idle; the work folder's lock is taken before any broker
    contact. `console`: read `q`/`c` from stdin, show a live display."""
    config, topic = settings.config, settings.topic
    consumer_conf = consumer_settings(config, settings.group)
    group = str(consumer_conf["group.id"])
    workdir = settings.workdir or default_state_dir(Path("process"), f"{topic}-{group}")
    consumer_conf = static_membership(consumer_conf, config, workdir)
    check_writable(workdir)
    with ExitStack() as stack:
        stack.enter_context(InstanceLock(OutputState(workdir).lock, "processor"))
        # Also the reachability check.
        clients.ensure_topic(producer_settings(config), topic, partitions=settings.partitions)
        built = load_processor(
            settings.processor,
            dict(settings.processor_options),
            {"config": config, "data_topic": topic, "clients": clients},
        )
        stack.callback(built.close)
        publisher = None
        if settings.receipts:
            publisher = stack.enter_context(
                open_publisher(config, settings.receipts_topic, group, settings.signing_key, clients)
            )
        runner = ProcessRunner(
            built,
            consumer_conf,
            topic,
            workdir,
            settings.options,
            stop=stop,
            publisher=publisher,
            cipher=settings.cipher,
            clients=clients,
        )
        stack.enter_context(
            group_monitoring(
                config,
                settings.telemetry,
                role="process",
                topic=topic,
                group=group,
                place=workdir,
                report=lambda: runner.report,
                key=settings.signing_key,
                clients=clients,
            )
        )
        with Console(
            f"processing topic {topic} with {settings.processor} (group {group})",
            lambda: process_snapshot(runner),
            stop,
            settings.update_seconds,
            mode=console,
            lag=lag_query(config, group, topic, runner.positions),
        ):
            report = runner.run(reprocess_failed=settings.reprocess_failed)
    return ProcessOutcome(report, runner.failed_dir)


def process_snapshot(runner: ProcessRunner) -> Snapshot:
    """Files processed so far, bytes received, and the files being received."""
    report = runner.report
    return Snapshot(
        "process",
        report.processed,
        report.failed,
        runner.received_bytes,
        current=in_progress(runner.in_progress()),
        records=runner.records_read,
    )
