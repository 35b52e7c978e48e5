"""`labstream watch DIR`: stream every new or changed file below DIR, until stopped."""

from __future__ import annotations

import logging
import sys
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

from labstream.cli.common import (
    config_option,
    human_bytes,
    key_option,
    stop_on_signals,
    trusted_keys_option,
)
from labstream.cli.console import Console
from labstream.cli.telemetry import TelemetryOptions, monitoring, telemetry_options
from labstream.config import Config, load_config, parse_bool
from labstream.errors import ConfigError
from labstream.heartbeat.sources import watch_source
from labstream.kafka import Producer, consumer_settings, ensure_topic, producer_settings
from labstream.locks import InstanceLock
from labstream.receipts import ReceiptCollector, TrustedKeys
from labstream.receipts import receipts_topic as default_receipts
from labstream.receipts.keys import require_trusted
from labstream.upload import DEFAULT_CHUNK_SIZE, check_chunk_size
from labstream.upload.cleanup import Cleaner, CleanupPolicy
from labstream.upload.ledger import UploadLedger, default_state_dir, state_digest
from labstream.upload.rate import parse_rate
from labstream.upload.streamer import DirectoryStreamer, StreamOptions
from labstream.watch import DEFAULT_EXCLUDES, Filters
from labstream.wire import WIRE_FORMATS, wire_format
from labstream.wire.crypto import load_cipher

logger = logging.getLogger("labstream.watch")

# [labstream] keys (the seed's [openmsi_directory_stream_service] names) -> default.
PROGRAM_KEYS: dict[str, Any] = {
    "file_directory": None,
    "topic_name": None,
    "n_threads": 2,
    "chunk_size": DEFAULT_CHUNK_SIZE,
    "queue_max_size": 3000,
    "new_files_only": True,
    "update_seconds": 30.0,
    "include": "",
    "exclude": "",
    "state": None,
    "log_file": None,
    "settle_seconds": 2.0,
    "rescan_seconds": 60.0,
    "receipts_topic": None,
    "delete_after_verified": 0,
    "move_after_verified": None,
    "wire": "labstream",
    "max_rate": None,
    "encryption_key_file": None,
    "receipts_trusted_keys": None,
    "receipts_signing_key": None,  # a downloader's; allowed so one file can serve both sides
}


@click.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@config_option
@click.option("-t", "--topic", default=None, help="Kafka topic (or topic_name in [labstream]).")
@click.option(
    "-n",
    "--n-threads",
    "--threads",
    "n_threads",
    type=int,
    default=None,
    help="Files read and produced in parallel [2].",
)
@click.option("--chunk-size", type=int, default=None, help=f"Bytes per chunk [{DEFAULT_CHUNK_SIZE}].")
@click.option("--queue-max-size", type=int, default=None, help="Ready files waiting to be sent [3000].")
@click.option(
    "--new-files-only/--upload-existing",
    "new_files_only",
    default=None,
    help="Ignore (default) or send the files already there on the first start.",
)
@click.option(
    "--update-seconds", type=float, default=None, help="Seconds between still-alive lines; -1 disables [30]."
)
@click.option("--include", multiple=True, help="Only files matching this glob (repeatable).")
@click.option("--exclude", multiple=True, help="Skip files matching this glob (repeatable).")
@click.option(
    "--state",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the ledger and log [per-user, derived from DIR and topic].",
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Log of every file sent with its SHA-256 [STATE/watch.log].",
)
@click.option(
    "--settle-seconds",
    type=float,
    default=None,
    help="A file must keep its size and mtime this long to count as finished [2].",
)
@click.option(
    "--rescan-seconds",
    type=float,
    default=None,
    help="Full rescan interval, the safety net for missed events [60].",
)
@click.option("--receipts-topic", default=None, help="Receipts topic to follow [TOPIC.receipts].")
@click.option(
    "--delete-after-verified",
    type=int,
    default=None,
    metavar="N",
    help="Delete a sent file once N consumer groups verified its exact SHA-256.",
)
@click.option(
    "--move-after-verified",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="With --delete-after-verified N (default 1): move the file here instead.",
)
@click.option(
    "--wire",
    type=click.Choice(sorted(WIRE_FORMATS)),
    default=None,
    help="Chunk format: labstream's (v2, default), labstream-v1 for older downloaders, or openmsistream's.",
)
@click.option("--max-rate", default=None, help="Bandwidth limit for all senders, e.g. 20MiB/s [none].")
@trusted_keys_option
@key_option
@telemetry_options
def watch(
    directory: Path | None, config_name: str, topic: str | None, telemetry: TelemetryOptions, **cli: Any
) -> None:
    """Stream every new file below DIRECTORY (subfolders included) to TOPIC.

    A file is sent once the instrument has finished writing it. Restarts resume from the
    ledger: nothing is sent twice, nothing is lost. Stop with Ctrl+C, SIGTERM or `q`;
    type `c` for what is queued, in progress and done.
    """
    config = load_config(config_name)
    options = _resolve(config, {"file_directory": directory, "topic_name": topic, **cli})
    root = Path(options["file_directory"] or "")
    if not options["file_directory"] or not root.is_dir():
        raise ConfigError(f"watched folder {root} does not exist (give DIRECTORY or file_directory)")
    if not options["topic_name"]:
        raise ConfigError("no topic: give --topic or topic_name in [labstream]")
    policy = _cleanup_policy(options, root)
    trusted = TrustedKeys.load(options["receipts_trusted_keys"])
    if policy.after_verified_by > 0:
        require_trusted(trusted, "--delete-after-verified/--move-after-verified")
    state = _state_dir(options["state"], root, options["topic_name"])
    _log_to_file(Path(options["log_file"] or state / "watch.log"))
    settings = producer_settings(config)
    ensure_topic(settings, options["topic_name"])  # also the reachability check
    key_file = options["encryption_key_file"]
    cipher = load_cipher(key_file)
    stream_options = StreamOptions(
        chunk_size=check_chunk_size(int(options["chunk_size"])),
        threads=int(options["n_threads"]),
        queue_max_size=int(options["queue_max_size"]),
        upload_existing=not options["new_files_only"],
        filters=Filters(tuple(options["include"]), (*DEFAULT_EXCLUDES, *options["exclude"])),
        settle_seconds=float(options["settle_seconds"]),
        rescan_seconds=float(options["rescan_seconds"]),
        wire=wire_format(str(options["wire"]), cipher),
        max_rate=parse_rate(str(options["max_rate"])) if options["max_rate"] else None,
    )
    receipts = options["receipts_topic"] or default_receipts(options["topic_name"])
    ensure_topic(settings, receipts, partitions=1)
    stop = threading.Event()
    with ExitStack() as stack:
        stack.enter_context(InstanceLock(state / "lock", "watcher"))
        ledger = stack.enter_context(UploadLedger(state / "ledger.sqlite"))
        for key, value in (
            ("root", str(root.resolve())),
            ("topic", options["topic_name"]),
            ("receipts_topic", receipts),
            ("config", config.path),
            # What `labstream resend` must send with (docs: resend).
            ("wire", str(options["wire"])),
            ("chunk_size", str(stream_options.chunk_size)),
            ("encrypted", "1" if cipher is not None else "0"),
            ("encryption_key_file", str(Path(key_file).expanduser().resolve()) if key_file else ""),
            ("receipts_trusted_keys", _absolute(options["receipts_trusted_keys"])),
        ):
            ledger.set_meta(key, value)
        producer = stack.enter_context(Producer(settings))
        cleaner = Cleaner(root.resolve(), ledger, policy)
        group = f"labstream-receipts-{state_digest(state)}"
        stack.enter_context(
            ReceiptCollector(consumer_settings(config, group), receipts, cleaner.on_receipt, trusted)
        )
        streamer = DirectoryStreamer(root, producer, options["topic_name"], ledger, stream_options, stop)
        logger.info("starting folder=%s topic=%s state=%s", streamer.root, options["topic_name"], state)
        stack.enter_context(
            monitoring(
                config,
                telemetry,
                role="watch",
                subject=str(streamer.root),
                source=lambda last_error: watch_source(streamer, ledger, options["topic_name"], last_error),
            )
        )
        with stop_on_signals(stop) as signalled, Console(streamer, stop, options["update_seconds"]):
            streamer.run()
        session = dict(streamer.session)
    click.echo(
        f"stopped: sent {session['sent']} file(s) ({human_bytes(session['bytes'])}) this "
        f"session, {session['failed']} failed; ledger {state / 'ledger.sqlite'}"
    )
    sys.exit(signalled["code"])


def _resolve(config: Config, cli: dict[str, Any]) -> dict[str, Any]:
    """Command line beats the config file's [labstream] section, which beats the defaults."""
    section = config.program(set(PROGRAM_KEYS))
    resolved: dict[str, Any] = {}
    for key, default in PROGRAM_KEYS.items():
        given = cli.get(key)
        if given not in (None, ()):
            resolved[key] = given
        elif key in section:
            resolved[key] = _convert(key, section[key], default, config)
        else:
            resolved[key] = () if key in ("include", "exclude") else default
    return resolved


def _convert(key: str, value: str, default: Any, config: Config) -> Any:
    where = config.where(key, ("labstream",))
    if key in ("include", "exclude"):
        return tuple(p.strip() for p in value.split(",") if p.strip())
    try:
        if isinstance(default, bool):
            return parse_bool(value, where)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError as exc:
        raise ConfigError(f"{where} = {value}: not a number") from exc
    return value


def _cleanup_policy(options: dict[str, Any], root: Path) -> CleanupPolicy:
    move_to = options["move_after_verified"]
    n = int(options["delete_after_verified"] or 0)
    if move_to is not None:
        move_to = Path(move_to)
        if _inside(move_to, root):
            raise ConfigError(f"--move-after-verified {move_to} is inside the watched folder")
        n = n or 1
    if n < 0:
        raise ConfigError("--delete-after-verified must be 0 (off) or more")
    return CleanupPolicy(after_verified_by=n, move_to=move_to)


def _absolute(spec: str | None) -> str:
    """A comma-separated list of paths, made absolute so `status` finds them from anywhere."""
    parts = (part.strip() for part in (spec or "").split(","))
    return ",".join(str(Path(part).expanduser().resolve()) for part in parts if part)


def _state_dir(given: Path | str | None, root: Path, topic: str) -> Path:
    state = Path(given) if given else default_state_dir(root, topic)
    if _inside(state, root):
        raise ConfigError(f"state folder {state} is inside the watched folder {root}; choose another")
    state.mkdir(parents=True, exist_ok=True)
    return state


def _inside(path: Path, root: Path) -> bool:
    resolved, watched = path.resolve(), root.resolve()
    return resolved == watched or watched in resolved.parents


def _log_to_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    logging.getLogger("labstream").addHandler(handler)
