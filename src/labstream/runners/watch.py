"""`run_watch`: a watched folder -> topic, with its ledger, receipts, clean-up and heartbeats."""

from __future__ import annotations

import dataclasses
import logging
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from labstream.conditions import Conditions
from labstream.kafka import consumer_settings, producer_settings
from labstream.kafka.clients import REAL_CLIENTS, KafkaClients
from labstream.locks import InstanceLock
from labstream.receipts import ReceiptCollector
from labstream.runners.chunking import choose_chunk_size, fit_batches, fit_queue
from labstream.runners.console import INTERACTIVE, Console, ConsoleMode
from labstream.runners.progress import Snapshot, in_progress
from labstream.runners.sources import watch_source
from labstream.runners.telemetry import monitoring
from labstream.settings import WatchSettings
from labstream.state import WatchState
from labstream.upload.cleanup import Cleaner
from labstream.upload.ledger import UploadLedger, state_digest
from labstream.upload.streamer import DirectoryStreamer

__all__ = ["WatchSummary", "run_watch", "watch_snapshot"]

logger = logging.getLogger("labstream.watch")


@dataclass(frozen=True)
class WatchSummary:
    sent: int
    failed: int
    bytes: int
    ledger: Path


def run_watch(
    settings: WatchSettings,
    stop: threading.Event,
    *,
    clients: KafkaClients = REAL_CLIENTS,
    console: ConsoleMode = INTERACTIVE,
) -> WatchSummary:
    """Stream until `stop` is set. The instance lock is taken before any broker contact, so a
    second watcher of the same state folder is refused at once. `console`: read `q`/`c` from
    stdin, show a live display. The CLI installs its signal handlers around the whole call."""
    state = WatchState(settings.state)
    with ExitStack() as stack:
        stack.enter_context(InstanceLock(state.lock, "watcher"))
        stack.enter_context(_log_to_file(settings.log_file))
        producer_conf = producer_settings(settings.config)
        # Also the reachability check; a topic this principal may not write is refused now,
        # not file after file.
        clients.ensure_writable(producer_conf, settings.topic, partitions=settings.partitions)
        clients.ensure_topic(producer_conf, settings.receipts_topic, partitions=1)
        stream = settings.stream
        if settings.auto_chunk_size:
            chosen, limit = choose_chunk_size(
                clients, producer_conf, settings.topic, encrypted=settings.encrypted
            )
            stream = dataclasses.replace(stream, chunk_size=chosen)
            producer_conf = fit_batches(producer_conf, limit)
        ledger = stack.enter_context(UploadLedger(state.ledger))
        _record(ledger, settings, stream.chunk_size)
        producer = stack.enter_context(clients.producer(fit_queue(producer_conf, stream.chunk_size)))
        conditions = Conditions(logging.getLogger("labstream.upload.streamer"))
        cleaner = Cleaner(
            settings.root.resolve(),
            ledger,
            settings.cleanup,
            conditions,
            settings.source,
            expects_signed=len(settings.trusted) > 0,
        )
        group = f"labstream-receipts-{state_digest(settings.state)}"
        stack.enter_context(
            ReceiptCollector(
                consumer_settings(settings.config, group),
                settings.receipts_topic,
                cleaner.on_receipt,
                settings.trusted,
                on_live=cleaner.on_live,
                clients=clients,
            )
        )
        streamer = DirectoryStreamer(
            settings.root,
            producer,
            settings.topic,
            ledger,
            stream,
            stop,
            conditions=conditions,
            on_sent=cleaner.settle,
        )
        logger.info(
            "starting folder=%s topic=%s source=%s state=%s",
            streamer.root,
            settings.topic,
            settings.source,
            settings.state,
        )
        stack.enter_context(
            monitoring(
                settings.config,
                settings.telemetry,
                role="watch",
                subject=str(streamer.root),
                source=lambda last_error: watch_source(
                    streamer, ledger, settings.topic, last_error, settings.source
                ),
                clients=clients,
            )
        )
        with Console(
            f"watching {streamer.root} -> topic {settings.topic}",
            lambda: watch_snapshot(streamer),
            stop,
            settings.update_seconds,
            mode=console,
            details=lambda: streamer.status().lines(),
        ):
            streamer.run()
        session = streamer.status().session
    return WatchSummary(session.sent, session.failed, session.bytes, state.ledger)


def watch_snapshot(streamer: DirectoryStreamer) -> Snapshot:
    """The watcher's counts this session and its large files being sent."""
    status = streamer.status()
    return Snapshot(
        "watch",
        status.session.sent,
        status.session.failed,
        # files sent, plus what is acknowledged of large files being sent: a steady rate
        status.session.bytes + sum(done for _, done, _ in status.progress),
        current=in_progress(status.progress),
        detail=f"settling {status.settling}, queued {status.queued}, sending {len(status.sending)}",
    )


def _record(ledger: UploadLedger, settings: WatchSettings, chunk_size: int) -> None:
    """What `status` and `resend` read back: where, what, and how the watcher sends."""
    key_file = settings.encryption_key_file
    for key, value in (
        ("root", str(settings.root.resolve())),
        ("topic", settings.topic),
        ("source", settings.source),
        ("receipts_topic", settings.receipts_topic),
        ("config", settings.config.path),
        ("wire", settings.wire_name),
        ("chunk_size", str(chunk_size)),
        ("encrypted", "1" if settings.encrypted else "0"),
        ("encryption_key_file", str(Path(key_file).expanduser().resolve()) if key_file else ""),
        ("receipts_trusted_keys", _absolute(settings.trusted_keys_spec)),
    ):
        ledger.set_meta(key, value)


def _absolute(spec: str | None) -> str:
    """A comma-separated list of paths, made absolute so `status` finds them from anywhere."""
    parts = (part.strip() for part in (spec or "").split(","))
    return ",".join(str(Path(part).expanduser().resolve()) for part in parts if part)


class _QuietFileHandler(logging.FileHandler):
    """A line the state folder cannot take (a full disk) is dropped, not printed to stderr with
    a traceback: the streamer says once per 10 s that the state folder cannot be written."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


class _log_to_file:
    """The watcher's own log of every file sent, for the life of the run."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handler = _QuietFileHandler(path, encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self._handler.setLevel(logging.INFO)

    def __enter__(self) -> None:
        logging.getLogger("labstream").addHandler(self._handler)

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("labstream").removeHandler(self._handler)
        self._handler.close()
