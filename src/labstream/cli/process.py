"""`labstream process PROCESSOR`: hand every verified file of a topic to code."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import click

from labstream.cli.common import (
    config_option,
    file_topic_option,
    interactive,
    key_option,
    receipts_key_option,
    stop_on_signals,
)
from labstream.cli.globals import load
from labstream.cli.options import LIMIT_OPTIONS, TELEMETRY_OPTIONS, setting, threads_option
from labstream.runners import run_process
from labstream.runners.process import ProcessOutcome
from labstream.settings import process_settings


@click.command()
@click.argument("processor", required=False)
@config_option
@file_topic_option
@click.option("--group", "-g", default=None, help="Consumer group [default: labstream-process-<processor>].")
@threads_option("consumer_threads")
@setting("partitions", "--partitions", type=int, metavar="N")
@click.option(
    "--option",
    "-o",
    "processor_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Passed to the processor class (repeatable), e.g. -o bucket=raw-data.",
)
@setting("retries", "--retries", type=int)
@click.option("--reprocess-failed", is_flag=True, help="First retry the files that failed before.")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where files are rebuilt before processing [default: per-user state folder].",
)
@setting("exit_when_idle", "--exit-when-idle", type=float, metavar="SECONDS")
@setting("update_seconds", "--update-seconds", type=float)
@setting("receipts", "--receipts/--no-receipts")
@setting("receipts_topic", "--receipts-topic")
@receipts_key_option
@key_option
@setting("refuse_old_envelope", "--refuse-old-envelope", is_flag=True)
@TELEMETRY_OPTIONS
@LIMIT_OPTIONS
def process(processor: str | None, config_name: str, **given: Any) -> None:
    """Run PROCESSOR (s3, metadata, module:Name or file.py:Name) on every file of TOPIC.

    PROCESSOR and TOPIC may come from processor and topic_name in [labstream].
    With --threads above 1 the processor must be thread-safe.
    """
    settings = process_settings(load(config_name), {"processor": processor, **given})
    stop, signalled = threading.Event(), {"code": 0}
    # Handlers from the start: a SIGTERM during start-up (a service stopped at once) is a clean
    # stop too, not a kill.
    with stop_on_signals(stop, signalled):
        outcome = run_process(settings, stop, console=interactive())
    click.echo(outcome_line(outcome))
    report = outcome.report
    sys.exit(signalled["code"] or (2 if report.failed else 0))


def outcome_line(outcome: ProcessOutcome) -> str:
    """The last line of a run; where failed files are kept only when some failed."""
    report = outcome.report
    line = f"processed {report.processed} file(s), {report.failed} failed ({report.reprocessed} reprocessed)"
    return f"{line}; failed files kept in {outcome.failed_dir}" if report.failed else line
