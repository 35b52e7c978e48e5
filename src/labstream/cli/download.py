"""`labstream download DIR`: rebuild files from a topic, verified, until stopped or idle."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import click

from labstream.cli.common import (
    config_option,
    file_topic_option,
    human_bytes,
    interactive,
    key_option,
    receipts_key_option,
    stop_on_signals,
)
from labstream.cli.globals import load
from labstream.cli.options import LIMIT_OPTIONS, TELEMETRY_OPTIONS, setting, threads_option
from labstream.runners import run_download
from labstream.settings import download_settings
from labstream.state import OutputState


@click.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@config_option
@file_topic_option
@click.option(
    "--group",
    "-g",
    default=None,
    help="Consumer group; NEW: a fresh group. A new folder receives everything, the same folder "
    "resumes. [default: [consumer] group.id, else labstream-download-HOST-HASH of host + "
    "absolute path of this output folder]",
)
@threads_option("consumer_threads")
@setting("partitions", "--partitions", type=int, metavar="N")
@setting("exit_when_idle", "--exit-when-idle", type=float, metavar="SECONDS")
@setting("update_seconds", "--update-seconds", type=float)
@setting("receipts", "--receipts/--no-receipts")
@setting("receipts_topic", "--receipts-topic")
@setting("timeout", "--timeout", type=float)
@setting("stop_grace_seconds", "--stop-grace-seconds", type=float)
@setting("placement", "--placement", type=click.Choice(["beside", "by-source"]))
@setting("download_include", "--include", multiple=True, metavar="GLOB")
@setting("download_exclude", "--exclude", multiple=True, metavar="GLOB")
@setting("from_beginning", "--from-beginning", is_flag=True)
@setting("from_time", "--from", metavar="TIME")
@setting("from_end", "--from-end", is_flag=True)
@receipts_key_option
@key_option
@setting("refuse_old_envelope", "--refuse-old-envelope", is_flag=True)
@TELEMETRY_OPTIONS
@LIMIT_OPTIONS
def download(directory: Path | None, config_name: str, **given: Any) -> None:
    """Rebuild files from TOPIC into DIRECTORY, subfolders kept, each verified by SHA-256.

    DIRECTORY and TOPIC may come from download_directory and topic_name in [labstream].

    Runs until Ctrl+C or SIGTERM (or --exit-when-idle); scale out by starting more
    downloaders with the same --group.
    """
    settings = download_settings(load(config_name), {"out_dir": directory, **given})
    stop, signalled = threading.Event(), {"code": 0}
    # Handlers from the start: a SIGTERM during start-up (a service stopped at once) is a clean
    # stop too, not a kill.
    with stop_on_signals(stop, signalled):
        report = run_download(settings, stop, console=interactive())
    click.echo(
        f"downloaded {report.files} verified file(s) into {settings.out_dir}; "
        f"{report.failed} failed, {report.rejected} message(s) rejected, "
        f"{report.duplicates} duplicate chunk(s) ignored; {human_bytes(report.bytes)} read "
        f"in {report.seconds:.1f} s"
    )
    if report.failed or report.rejected:
        failed_dir = OutputState(settings.out_dir).failed
        kept = failed_dir.is_dir() and any(failed_dir.iterdir())  # only files that were complete
        click.echo(
            "see the log above" + (f"; failed files are kept in {failed_dir}" if kept else ""), err=True
        )
    sys.exit(signalled["code"] or (2 if report.failed or report.rejected else 0))
