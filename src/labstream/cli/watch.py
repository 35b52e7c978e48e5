"""`labstream watch DIR`: stream every new or changed file below DIR, until stopped."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import click

from labstream.cli.common import (
    config_option,
    human_bytes,
    interactive,
    key_option,
    stop_on_signals,
    trusted_keys_option,
)
from labstream.cli.globals import load
from labstream.cli.options import TELEMETRY_OPTIONS, setting, threads_option
from labstream.runners import run_watch
from labstream.settings import watch_settings
from labstream.wire import WIRE_FORMATS

_PATH = click.Path(file_okay=False, path_type=Path)


@click.command()
@click.argument("directory", required=False, type=_PATH)
@config_option
@setting("topic_name", "-t", "--topic")
@threads_option("n_threads")
@setting("partitions", "--partitions", type=int, metavar="N")
@setting("chunk_size", "--chunk-size", type=int)
@setting("queue_max_size", "--queue-max-size", type=int)
@setting("new_files_only", "--new-files-only/--upload-existing")
@setting("ignore_existing", "--ignore-existing", is_flag=True)
@setting("update_seconds", "--update-seconds", type=float)
@setting("include", "--include", multiple=True)
@setting("exclude", "--exclude", multiple=True)
@setting("state", "--state", type=_PATH)
@setting("log_file", "--log-file", type=click.Path(dir_okay=False, path_type=Path))
@setting("settle_seconds", "--settle-seconds", type=float)
@setting("rescan_seconds", "--rescan-seconds", type=float)
@setting("receipts_topic", "--receipts-topic")
@setting("delete_after_verified", "--delete-after-verified", type=int, metavar="N")
@setting("move_after_verified", "--move-after-verified", type=_PATH)
@setting("wire", "--wire", type=click.Choice(sorted(WIRE_FORMATS)))
@setting("max_rate", "--max-rate")
@setting("polling", "--polling/--events")
@setting("source", "--source", metavar="NAME")
@setting("follow_links", "--follow-links/--no-follow-links")
@setting("live", "--live", multiple=True, metavar="GLOB")
@setting("live_interval", "--live-interval", type=float, metavar="SECONDS")
@setting("live_close_seconds", "--live-close-seconds", type=float, metavar="SECONDS")
@trusted_keys_option
@key_option
@TELEMETRY_OPTIONS
def watch(directory: Path | None, config_name: str, **given: Any) -> None:
    """Stream every new file below DIRECTORY (subfolders included) to TOPIC.

    A file is sent once the instrument has finished writing it. Restarts resume from the
    ledger: nothing is sent twice, nothing is lost. Stop with Ctrl+C, SIGTERM or `q`;
    type `c` for what is queued, in progress and done.
    """
    settings = watch_settings(load(config_name), {"file_directory": directory, **given})
    stop, signalled = threading.Event(), {"code": 0}
    # Handlers from the start: a SIGTERM during start-up (a service stopped at once) is a clean
    # stop too, not a kill.
    with stop_on_signals(stop, signalled):
        summary = run_watch(settings, stop, console=interactive())
    click.echo(
        f"stopped: sent {summary.sent} file(s) ({human_bytes(summary.bytes)}) this "
        f"session, {summary.failed} failed; ledger {summary.ledger}"
    )
    sys.exit(signalled["code"])
