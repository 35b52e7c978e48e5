"""Every `[labstream]` key and command-line default, with its help text: the one table.

A key's `roles` say which commands read it from the config file; every command accepts
every key of the table (one config file may serve a watcher and a downloader) and refuses
any other with the same error. `in_file=False` marks command-line-only options.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from labstream.config import PROGRAM_SECTION, Config, parse_bool
from labstream.download.limits import Limits
from labstream.download.options import DownloadOptions
from labstream.errors import ConfigError
from labstream.kafka.admin import DEFAULT_PARTITIONS
from labstream.process.options import ProcessOptions
from labstream.settings.sections import Telemetry
from labstream.upload import DEFAULT_CHUNK_SIZE
from labstream.upload.streamer import StreamOptions

__all__ = ["FILE_KEYS", "KEYS", "Key", "default_of", "help_of", "program_values", "resolve"]

WATCH, DOWNLOAD, PROCESS, UPLOAD = "watch", "download", "process", "upload"
LONG_RUNNING = frozenset({WATCH, DOWNLOAD, PROCESS})
CONSUMERS = frozenset({DOWNLOAD, PROCESS})


@dataclass(frozen=True)
class Key:
    """One setting: its default, the type of its value, and who reads it from the file."""

    name: str
    default: Any
    kind: str  # str, int, float, bool, list (comma-separated), raw (parsed by its owner)
    help: str
    roles: frozenset[str] = frozenset()
    in_file: bool = True
    shown: str | None = None  # the default as the help text shows it, when not str(default)


# Components own their defaults in their section objects; the table shows and applies them.
_LIMITS = Limits()
_STREAM = StreamOptions()
_DOWNLOAD = DownloadOptions()
_PROCESS = ProcessOptions()
_TELEMETRY = Telemetry()
KEYS: dict[str, Key] = {
    key.name: key
    for key in (
        Key("file_directory", None, "str", "Folder to watch (or DIRECTORY).", frozenset({WATCH})),
        Key("topic_name", None, "str", "Kafka topic.", LONG_RUNNING | {UPLOAD}),
        Key(
            "partitions",
            DEFAULT_PARTITIONS,
            "int",
            "Partitions of a data topic labstream creates: at least the consumers one group "
            "will ever run (an existing topic keeps its own count).",
            LONG_RUNNING | {UPLOAD},
        ),
        Key(
            "download_directory",
            None,
            "str",
            "Folder files are rebuilt into (or DIRECTORY).",
            frozenset({DOWNLOAD}),
        ),
        Key(
            "processor",
            None,
            "str",
            "Processor (or PROCESSOR): s3, metadata, module:Name or file.py:Name.",
            frozenset({PROCESS}),
        ),
        Key(
            "processor_options",
            (),
            "list",
            "KEY=VALUE options for the processor, comma-separated (or -o, repeatable).",
            frozenset({PROCESS}),
        ),
        Key("n_threads", _STREAM.threads, "int", "Files read and produced in parallel.", frozenset({WATCH})),
        Key(
            "consumer_threads",
            _DOWNLOAD.consumer_threads,
            "int",
            "Consumers in this process.",
            CONSUMERS,
            in_file=False,
        ),
        Key(
            "chunk_size",
            None,
            "int",
            "Bytes per chunk, a power of two.",
            frozenset({WATCH}),
            shown=f"auto: the largest power of two the topic's message limit takes, up to 4 MiB; "
            f"{DEFAULT_CHUNK_SIZE} when the limit cannot be read",
        ),
        Key(
            "queue_max_size",
            _STREAM.queue_max_size,
            "int",
            "Ready files waiting to be sent.",
            frozenset({WATCH}),
        ),
        Key(
            "new_files_only",
            True,
            "bool",
            "False: send the files already there when the ledger is new; true: a new ledger in a "
            "folder holding files stops and asks (--upload-existing or --ignore-existing).",
            frozenset({WATCH}),
        ),
        Key(
            "ignore_existing",
            False,
            "bool",
            "A new ledger in a folder that already holds files: record them, send only new ones "
            "(a first start). Without it the watcher stops and asks: it cannot tell a first start "
            "from a lost ledger.",
            frozenset({WATCH}),
            in_file=False,  # a choice for one start, never a service's standing order
        ),
        Key(
            "update_seconds",
            30.0,
            "float",
            "Seconds between still-alive lines (when no live progress display is shown); -1 disables.",
            LONG_RUNNING,
        ),
        Key("include", (), "list", "Only files matching this glob (repeatable).", frozenset({WATCH})),
        Key("exclude", (), "list", "Skip files matching this glob (repeatable).", frozenset({WATCH})),
        Key(
            "state",
            None,
            "str",
            "Folder for the ledger and log.",
            frozenset({WATCH}),
            shown="per-user, derived from DIR and topic",
        ),
        Key(
            "log_file",
            None,
            "str",
            "Log of every file sent with its SHA-256.",
            frozenset({WATCH}),
            shown="STATE/watch.log",
        ),
        Key(
            "settle_seconds",
            _STREAM.settle_seconds,
            "float",
            "A file must keep its size and mtime this long to count as finished.",
            frozenset({WATCH}),
        ),
        Key(
            "live",
            _STREAM.live,
            "list",
            "Files matching this glob are sent while they grow: appended bytes every "
            "live_interval, each once, verified downstream as a growing prefix (repeatable).",
            frozenset({WATCH}),
        ),
        Key(
            "live_interval",
            _STREAM.live_interval,
            "float",
            "Seconds between two sends of a live file's new bytes (sooner for every 8 MiB appended).",
            frozenset({WATCH}),
        ),
        Key(
            "live_close_seconds",
            _STREAM.live_close_seconds,
            "float",
            "A live file unchanged this long and not open for writing is closed: an ordinary "
            "verified file from then on (processors run); a later append sends a new version.",
            frozenset({WATCH}),
        ),
        Key(
            "rescan_seconds",
            _STREAM.rescan_seconds,
            "float",
            "Full rescan interval, the safety net for missed events.",
            frozenset({WATCH}),
        ),
        Key(
            "receipts_topic",
            None,
            "str",
            "Receipts topic.",
            frozenset({WATCH, DOWNLOAD, PROCESS, UPLOAD}),
            shown="TOPIC.receipts",
        ),
        Key(
            "delete_after_verified",
            0,
            "int",
            "Delete a sent file once N consumer groups verified its exact SHA-256; 0 = never.",
            frozenset({WATCH}),
        ),
        Key(
            "move_after_verified",
            None,
            "str",
            "With delete_after_verified N: move the file here instead of deleting it.",
            frozenset({WATCH}),
        ),
        Key(
            "wire",
            "labstream",
            "str",
            "Chunk format: labstream's (v2), labstream-v1 for older downloaders, or openmsistream's.",
            frozenset({WATCH}),
        ),
        Key(
            "source",
            None,
            "str",
            "This instrument's name, carried by every send, shown in receipts, status and the "
            "dashboard; instruments sharing a topic need distinct names.",
            frozenset({WATCH, UPLOAD}),
            shown="HOST-FOLDER for watch, HOST for upload",
        ),
        Key(
            "placement",
            _DOWNLOAD.placement,
            "str",
            "Where a file goes when another instrument (source) already has one at its path: "
            "beside (kept next to it as NAME.from-SOURCE.EXT) or by-source (every file under "
            "a folder named after its source).",
            frozenset({DOWNLOAD}),
        ),
        Key(
            "refuse_old_envelope",
            False,
            "bool",
            "With a key: refuse chunks sealed in the old envelope (0x01, no version time), so "
            "a replayed old copy cannot roll a file back; once no sender writes it any more.",
            CONSUMERS,
        ),
        Key(
            "polling",
            False,
            "bool",
            "Find new files by polling the folder every second instead of OS events (SMB/NFS shares).",
            frozenset({WATCH}),
        ),
        Key(
            "follow_links",
            False,
            "bool",
            "Send links to files inside the folder (links leading outside it are refused either way).",
            frozenset({WATCH, UPLOAD}),
        ),
        Key(
            "max_rate",
            None,
            "str",
            "Bandwidth limit for all sender threads together, e.g. 20MiB/s.",
            frozenset({WATCH}),
            shown="none",
        ),
        Key(
            "encryption_key_file",
            None,
            "str",
            "AES-256-GCM key (see `labstream keygen`).",
            frozenset({WATCH, DOWNLOAD, PROCESS, UPLOAD}),
            shown="from LABSTREAM_ENCRYPTION_KEY(_FILE)",
        ),
        Key(
            "receipts_trusted_keys",
            None,
            "str",
            "Trust receipts signed by these public keys: .pub files and/or folders, comma-separated.",
            frozenset({WATCH, UPLOAD}),
        ),
        Key(
            "receipts_signing_key",
            None,
            "str",
            "Sign receipts with this key (`labstream keygen --receipts`).",
            CONSUMERS,
        ),
        Key(
            "max_file_size",
            None,
            "raw",
            "Refuse files larger than SIZE, e.g. 500GiB.",
            CONSUMERS,
            shown=f"{_LIMITS.max_file_size >> 40}TiB",
        ),
        Key(
            "max_incomplete_files",
            None,
            "raw",
            "Files in progress per thread; the least recently fed is given up.",
            CONSUMERS,
            shown=str(_LIMITS.max_incomplete_files),
        ),
        Key(
            "max_incomplete_bytes",
            None,
            "raw",
            "Bytes of files in progress per thread, at least max_file_size.",
            CONSUMERS,
            shown=f"{_LIMITS.max_incomplete_bytes >> 40}TiB",
        ),
        Key(
            "incomplete_timeout",
            None,
            "raw",
            "Give up a file in progress after SECONDS without a new chunk.",
            CONSUMERS,
            shown=f"{_LIMITS.incomplete_timeout:g}",
        ),
        Key(
            "heartbeat_seconds",
            _TELEMETRY.heartbeat_seconds,
            "float",
            "Publish a heartbeat for `labstream dashboard` this often; 0 turns it off.",
            LONG_RUNNING,
        ),
        Key(
            "heartbeat_topic",
            _TELEMETRY.heartbeat_topic,
            "str",
            "Topic the heartbeats go to (or LABSTREAM_HEARTBEAT_TOPIC).",
            LONG_RUNNING,
        ),
        Key(
            "heartbeat_signing_key",
            None,
            "str",
            "Sign heartbeats with this Ed25519 key (`labstream keygen --receipts NAME`); "
            "downloaders and processors sign with receipts_signing_key when not given.",
            LONG_RUNNING,
        ),
        Key(
            "metrics_port",
            None,
            "str",
            "Serve Prometheus metrics at [HOST:]PORT (HOST defaults to 127.0.0.1; 0.0.0.0 for all).",
            LONG_RUNNING,
            shown="off",
        ),
        Key(
            "timeout",
            15.0,
            "float",
            "Seconds to wait for the cluster to answer before giving up.",
            in_file=False,
        ),
        Key(
            "exit_when_idle",
            _DOWNLOAD.exit_when_idle,
            "float",
            "Stop after SECONDS without new messages.",
            in_file=False,
            shown="never",
        ),
        Key("receipts", True, "bool", "Publish a receipt for every verified or failed file.", in_file=False),
        Key(
            "download_include",
            (),
            "list",
            "Rebuild only files whose relative path or name matches this glob (repeatable); "
            "chunks of other files are skipped unwritten, offsets still move.",
            frozenset({DOWNLOAD}),
        ),
        Key(
            "download_exclude",
            (),
            "list",
            "Skip files whose relative path or name matches this glob (repeatable).",
            frozenset({DOWNLOAD}),
        ),
        Key(
            "from_beginning",
            None,
            "bool",
            "A NEW group starts at the oldest message, as by default unless [consumer] "
            "auto.offset.reset says otherwise (a group with committed offsets resumes).",
            in_file=False,
        ),
        Key(
            "from_time",
            None,
            "str",
            "A NEW group starts at the first message at or after TIME: 2024-05-01T13:00, 6h, 2d "
            "(a group with committed offsets resumes).",
            in_file=False,
        ),
        Key(
            "from_end",
            None,
            "bool",
            "A NEW group starts at the end: only files sent from now on (a group with committed "
            "offsets resumes).",
            in_file=False,
        ),
        Key(
            "stop_grace_seconds",
            _DOWNLOAD.stop_grace_seconds,
            "float",
            "On Ctrl+C/SIGTERM, files more than half received may finish this long; 0: stop at once.",
            frozenset({DOWNLOAD}),
        ),
        Key("retries", _PROCESS.retries, "int", "Attempts after the first failure.", in_file=False),
        Key(
            "processor_retry_seconds",
            _PROCESS.processor_retry_seconds,
            "float",
            "Seconds before a failed file's first retry, doubling for each further attempt.",
            frozenset({PROCESS}),
        ),
        Key(
            "wait_timeout",
            300.0,
            "float",
            "With --wait-verified: seconds to wait for the receipts.",
            in_file=False,
        ),
        Key(
            "verified_by",
            1,
            "int",
            "With --wait-verified: distinct trusted keys (groups) that must confirm.",
            in_file=False,
        ),
    )
}
FILE_KEYS = frozenset(name for name, key in KEYS.items() if key.in_file)


def default_of(name: str) -> Any:
    return KEYS[name].default


def help_of(name: str) -> str:
    """The help text with the default from the table in the one notation of every --help,
    e.g. `Files read and produced in parallel. [default: 2; n_threads in [labstream]]`."""
    key = KEYS[name]
    shown = key.shown if key.shown is not None else _show(key.default)
    parts = [f"default: {shown}"] if shown else []
    if key.in_file:
        parts.append(f"{name} in [{PROGRAM_SECTION}]")
    return f"{key.help} [{'; '.join(parts)}]" if parts else key.help


def _show(default: Any) -> str:
    if default is None or default == ():
        return ""
    if isinstance(default, bool):
        return "yes" if default else "no"
    return f"{default:g}" if isinstance(default, float) else str(default)


def program_values(config: Config) -> dict[str, str]:
    """The `[labstream]` section; any key not in the table is refused, by every command."""
    return config.program(set(FILE_KEYS))


def resolve(config: Config, role: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """Per key: the command line (`given`), else the config file when `role` reads the key from
    it, else the default; file values converted to the key's type, naming file and key when
    they do not fit."""
    section = program_values(config)
    resolved: dict[str, Any] = {}
    for name, key in KEYS.items():
        value = given.get(name)
        if value is not None and value != ():
            resolved[name] = value
        elif key.in_file and role in key.roles and name in section:
            resolved[name] = _convert(key, section[name], config)
        else:
            resolved[name] = key.default
    return resolved


def _convert(key: Key, value: str, config: Config) -> Any:
    where = config.where(key.name, (PROGRAM_SECTION,))
    if key.kind == "list":
        return tuple(p.strip() for p in value.split(",") if p.strip())
    if key.kind == "bool":
        return parse_bool(value, where)
    try:
        if key.kind == "int":
            return int(value)
        if key.kind == "float":
            return float(value)
    except ValueError as exc:
        raise ConfigError(f"{where} = {value}: not a number") from exc
    return value
