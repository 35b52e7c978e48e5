"""`run_download`: a topic -> verified files in a folder, with receipts and heartbeats."""

from __future__ import annotations

import logging
import threading
from contextlib import ExitStack
from typing import Any

from labstream.download import Downloader
from labstream.download.downloader import DownloadReport
from labstream.download.placement import check_writable
from labstream.errors import KafkaError
from labstream.kafka import consumer_settings, group_lag, producer_settings, static_membership
from labstream.kafka.clients import REAL_CLIENTS, KafkaClients
from labstream.locks import InstanceLock
from labstream.runners.console import QUIET, Console, ConsoleMode
from labstream.runners.progress import Snapshot, in_progress
from labstream.runners.receipts import open_publisher
from labstream.runners.telemetry import group_monitoring, lag_query
from labstream.settings import DownloadSettings
from labstream.state import OutputState

__all__ = ["download_snapshot", "explain_aborted", "explain_nothing_new", "run_download"]

logger = logging.getLogger("labstream.download")


def run_download(
    settings: DownloadSettings,
    stop: threading.Event,
    *,
    clients: KafkaClients = REAL_CLIENTS,
    console: ConsoleMode = QUIET,
) -> DownloadReport:
    """Download until `stop` is set or idle; the folder's lock is taken before any broker
    contact. `console`: read `q`/`c` from stdin, show a live display."""
    config, topic = settings.config, settings.topic
    reset = {"auto.offset.reset": settings.start.offset_reset} if settings.start.offset_reset else None
    consumer_conf = static_membership(
        consumer_settings(config, settings.group, reset), config, settings.out_dir
    )
    group = str(consumer_conf["group.id"])
    check_writable(settings.out_dir)
    with ExitStack() as stack:
        stack.enter_context(InstanceLock(OutputState(settings.out_dir).lock, "downloader"))
        # Also the reachability check. A downloader may start before anything was uploaded: the
        # topic it waits for must exist, or the consumer would not notice it appear for minutes.
        clients.ensure_topic(producer_settings(config), topic, settings.partitions, timeout=settings.timeout)
        publisher = None
        if settings.receipts:
            publisher = stack.enter_context(
                open_publisher(config, settings.receipts_topic, group, settings.signing_key, clients)
            )
        downloader = Downloader(
            consumer_conf,
            topic,
            settings.out_dir,
            settings.options,
            stop=stop,
            on_verdict=publisher.publish if publisher else None,
            on_live=publisher.publish if publisher else None,
            cipher=settings.cipher,
            clients=clients,
            accepts=settings.pick.accepts if settings.pick.include or settings.pick.exclude else None,
        )
        stack.enter_context(
            group_monitoring(
                config,
                settings.telemetry,
                role="download",
                topic=topic,
                group=group,
                place=settings.out_dir,
                report=lambda: downloader.report,
                key=settings.signing_key,
                clients=clients,
            )
        )
        logger.info(
            "downloading topic=%s group=%s folder=%s%s",
            topic,
            group,
            settings.out_dir,
            f" new_group_starts={settings.start.described!r}" if settings.start.described else "",
        )
        with Console(
            f"downloading topic {topic} -> {settings.out_dir} (group {group})",
            lambda: download_snapshot(downloader),
            stop,
            settings.update_seconds,
            mode=console,
            lag=lag_query(config, group, topic, downloader.positions),
        ):
            report = downloader.run()
    if not (report.files or report.failed or report.rejected) and settings.options.exit_when_idle is not None:
        if report.aborted:  # the group's offsets are at the end now, but not from an earlier run
            explain_aborted(report, topic)
        else:
            explain_nothing_new(
                consumer_conf, group, topic, min(settings.timeout, 5.0), picked=report.skipped > 0
            )
    return report


def download_snapshot(downloader: Downloader) -> Snapshot:
    """The downloader's counts so far and the files it is receiving."""
    report = downloader.report
    return Snapshot(
        "download",
        report.files,
        report.failed,
        report.bytes,
        current=in_progress(downloader.in_progress()),
        detail=f"{report.rejected} message(s) rejected" if report.rejected else "",
        records=report.records,
    )


def explain_nothing_new(
    consumer_conf: dict[str, Any], group: str, topic: str, timeout: float, *, picked: bool
) -> None:
    """A run that got no file although the topic holds messages: say why, and how to start fresh."""
    try:
        lag = group_lag(consumer_conf, group, topic, timeout)
    except KafkaError:
        return
    if not lag.committed or lag.messages:
        return
    skipped = " or every file in it was left out by --include/--exclude" if picked else ""
    logger.warning(
        "no new file: group %s has already read topic %s to its end (its committed offsets are "
        "there)%s; to receive everything again, use another output folder, or -g NEW "
        "--from-beginning (a new group starting at the oldest message)",
        group,
        topic,
        skipped,
    )


def explain_aborted(report: DownloadReport, topic: str) -> None:
    """A run that read sends but wrote no file because their senders aborted them: what it
    read, and why nothing came of it."""
    reasons = [
        f"{report.aborted} send(s) in them were aborted by their sender (the file changed while "
        "it was sent; a watcher sends it again once it has settled)"
    ]
    if report.skipped:
        reasons.append(f"{report.skipped} chunk(s) were left out by --include/--exclude")
    logger.warning(
        "no new file: read %d message(s) of topic %s and wrote nothing: %s",
        report.records,
        topic,
        "; ".join(reasons),
    )
