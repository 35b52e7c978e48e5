"""One frozen settings object per role, built from the table: file, environment, command line.

Each `*_settings(config, given)` resolves the keys of its role (`table.resolve`), checks them
and loads what they name (keys, key rings): everything that can be refused without a broker
is refused here, once. Components then take the small section objects (`StreamOptions`,
`DownloadOptions`, `ProcessOptions`, `CleanupPolicy`, `Limits`, `Telemetry`), never the whole
settings; those of them named after settings are filled by `section`.
"""

from __future__ import annotations

import hashlib
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labstream.config import Config
from labstream.download.limits import LIMIT_KEYS, Limits
from labstream.download.options import DownloadOptions
from labstream.errors import ConfigError, UnsafePathError
from labstream.process.options import ProcessOptions
from labstream.receipts import SigningKey, TrustedKeys
from labstream.receipts import receipts_topic as default_receipts
from labstream.receipts.keys import require_trusted
from labstream.settings.sections import Telemetry, section
from labstream.settings.table import DOWNLOAD, PROCESS, UPLOAD, WATCH, default_of, resolve
from labstream.state import WatchState
from labstream.times import format_ms, parse_time
from labstream.upload import DEFAULT_CHUNK_SIZE, check_chunk_size
from labstream.upload.cleanup import CleanupPolicy
from labstream.upload.ledger import default_state_dir
from labstream.upload.rate import parse_rate
from labstream.upload.streamer import StreamOptions
from labstream.watch import DEFAULT_EXCLUDES, Filters
from labstream.wire import WireFormat, wire_format
from labstream.wire.crypto import PayloadCipher, load_cipher
from labstream.wire.paths import check_source

__all__ = [
    "DownloadSettings",
    "ProcessSettings",
    "StartPosition",
    "UploadSettings",
    "WatchSettings",
    "download_group",
    "download_settings",
    "process_group",
    "process_settings",
    "upload_settings",
    "watch_settings",
]


@dataclass(frozen=True)
class WatchSettings:
    config: Config
    root: Path
    topic: str
    state: Path
    log_file: Path
    receipts_topic: str
    stream: StreamOptions
    cleanup: CleanupPolicy
    trusted: TrustedKeys
    update_seconds: float
    telemetry: Telemetry
    wire_name: str
    encryption_key_file: str | None = None
    trusted_keys_spec: str | None = None  # as given: recorded for `status` and `resend`
    encrypted: bool = False
    auto_chunk_size: bool = False  # stream.chunk_size is a stand-in: choose from the topic's limit
    partitions: int = default_of("partitions")  # of the topic, when this run creates it

    @property
    def source(self) -> str:
        return self.stream.source


@dataclass(frozen=True)
class StartPosition:
    """Where a consumer group without committed offsets begins; one with them resumes."""

    offset_reset: str | None = None  # "earliest" or "latest"; None: the config's (earliest)
    at_ms: int | None = None  # the first message at or after this time

    @property
    def described(self) -> str:
        if self.at_ms is not None:
            return f"from {format_ms(self.at_ms)}"
        return {"earliest": "from the beginning", "latest": "from the end"}.get(self.offset_reset or "", "")


@dataclass(frozen=True)
class DownloadSettings:
    config: Config
    out_dir: Path
    topic: str
    group: str | None
    receipts: bool
    receipts_topic: str
    timeout: float
    signing_key: SigningKey | None
    cipher: PayloadCipher | None
    telemetry: Telemetry
    options: DownloadOptions = field(default_factory=DownloadOptions)
    pick: Filters = field(default_factory=lambda: Filters((), ()))  # which files to rebuild
    start: StartPosition = field(default_factory=lambda: StartPosition())
    update_seconds: float = default_of("update_seconds")  # still-alive lines
    partitions: int = default_of("partitions")  # of the topic, when this run creates it


@dataclass(frozen=True)
class ProcessSettings:
    config: Config
    processor: str
    processor_options: Mapping[str, str]
    topic: str
    group: str
    reprocess_failed: bool
    workdir: Path | None  # None: a per-user folder named after topic and group
    receipts: bool
    receipts_topic: str
    signing_key: SigningKey | None
    cipher: PayloadCipher | None
    telemetry: Telemetry
    options: ProcessOptions = field(default_factory=ProcessOptions)
    update_seconds: float = default_of("update_seconds")  # still-alive lines
    partitions: int = default_of("partitions")  # of the topic, when this run creates it


@dataclass(frozen=True)
class UploadSettings:
    config: Config
    topic: str
    chunk_size: int
    threads: int
    timeout: float
    wire: WireFormat
    receipts_topic: str
    max_rate: float | None = None  # payload bytes per second, all threads together
    wait_verified: bool = False
    verified_by: int = default_of("verified_by")
    wait_timeout: float = default_of("wait_timeout")
    trusted: TrustedKeys = field(default_factory=TrustedKeys)
    auto_chunk_size: bool = False  # chunk_size is a stand-in: choose from the topic's limit
    source: str = ""  # this instrument's name in every send
    follow_links: bool = False  # below a folder: links to files inside it are sent
    partitions: int = default_of("partitions")  # of the topic, when this run creates it


def watch_settings(config: Config, given: Mapping[str, Any]) -> WatchSettings:
    """`given`: command-line values by table key (None = not given); DIRECTORY is file_directory."""
    v = resolve(config, WATCH, given)
    root = Path(v["file_directory"] or "")
    if not v["file_directory"] or not root.is_dir():
        raise ConfigError(f"watched folder {root} does not exist (give DIRECTORY or file_directory)")
    topic = v["topic_name"]
    if not topic:
        raise ConfigError("no topic: give --topic or topic_name in [labstream]")
    cleanup = _cleanup_policy(v, root)
    trusted = TrustedKeys.load(v["receipts_trusted_keys"])
    if cleanup.after_verified_by > 0:
        require_trusted(trusted, "--delete-after-verified/--move-after-verified")
    cipher = load_cipher(v["encryption_key_file"])
    state = check_state_dir(Path(v["state"]) if v["state"] else default_state_dir(root, topic), root)
    stream = StreamOptions(
        chunk_size=_chunk_size(v),
        threads=int(v["n_threads"]),
        queue_max_size=int(v["queue_max_size"]),
        upload_existing=not v["new_files_only"],
        ignore_existing=bool(v["ignore_existing"]),
        filters=Filters(tuple(v["include"]), (*DEFAULT_EXCLUDES, *v["exclude"])),
        settle_seconds=float(v["settle_seconds"]),
        rescan_seconds=float(v["rescan_seconds"]),
        wire=wire_format(str(v["wire"]), cipher),
        max_rate=parse_rate(v["max_rate"]) if v["max_rate"] else None,
        polling=bool(v["polling"]),
        source=source_name(v["source"], root),
        follow_links=bool(v["follow_links"]),
        live=tuple(v["live"]),
        live_interval=max(0.1, float(v["live_interval"])),
        live_close_seconds=float(v["live_close_seconds"]),
    )
    if stream.live and stream.wire.chunk_version != 2:
        raise ConfigError(
            "--live needs labstream's wire format (v2); it cannot go with --wire " + str(v["wire"])
        )
    return WatchSettings(
        config=config,
        root=root,
        topic=topic,
        state=state,
        log_file=Path(v["log_file"]) if v["log_file"] else WatchState(state).log,
        receipts_topic=v["receipts_topic"] or default_receipts(topic),
        stream=stream,
        cleanup=cleanup,
        trusted=trusted,
        update_seconds=float(v["update_seconds"]),
        telemetry=_telemetry(v),
        wire_name=str(v["wire"]),
        encryption_key_file=v["encryption_key_file"],
        trusted_keys_spec=v["receipts_trusted_keys"],
        encrypted=cipher is not None,
        auto_chunk_size=v["chunk_size"] is None,
        partitions=_partitions(v),
    )


def download_settings(config: Config, given: Mapping[str, Any]) -> DownloadSettings:
    """`given` keys: out_dir, topic, group (download_directory, topic_name from the file when not
    given), and table keys (consumer_threads, timeout, ...)."""
    v = resolve(config, DOWNLOAD, _without(given, "out_dir", "topic", "group"))
    topic = _topic(given, v)
    if not (given.get("out_dir") or v["download_directory"]):
        raise ConfigError("no output folder: give DIRECTORY or download_directory in [labstream]")
    out_dir = Path(given.get("out_dir") or v["download_directory"])
    start = start_position(v)
    return DownloadSettings(
        config=config,
        out_dir=out_dir,
        topic=topic,
        group=download_group(config, given.get("group"), out_dir),
        receipts=bool(v["receipts"]),
        receipts_topic=v["receipts_topic"] or default_receipts(topic),
        timeout=float(v["timeout"]),
        signing_key=_signing_key(v),
        cipher=_reader_cipher(v),
        telemetry=_telemetry(v),
        options=_download_options(v, start),
        pick=Filters(tuple(v["download_include"]), tuple(v["download_exclude"])),
        start=start,
        update_seconds=float(v["update_seconds"]),
        partitions=_partitions(v),
    )


def download_group(config: Config, given: str | None, out_dir: Path) -> str | None:
    """`-g`, else `[consumer] group.id` (None: the consumer settings take it from there), else
    a group of this output folder: host + absolute path, so another folder receives everything
    and the same folder resumes."""
    if given:
        return given
    if config.consumer_settings().get("group.id", "").strip():
        return None
    host = re.sub(r"[^A-Za-z0-9.-]+", "-", socket.gethostname()).strip("-.") or "host"
    place = hashlib.sha256(f"{socket.gethostname()}\0{out_dir.resolve()}".encode()).hexdigest()[:12]
    return f"labstream-download-{host}-{place}"


def process_group(processor: str) -> str:
    """The default consumer group of a processor: one per processor. A processor given as a
    file ("/path/to/slow.py:Name") is named by its file's stem ("labstream-process-slow"),
    not by the folder it happens to sit in; a module or built-in by its name."""
    module, _, _ = processor.rpartition(":")
    if module.endswith(".py"):
        name = Path(module.replace("\\", "/")).stem
    else:
        name = processor.replace(":", "-").replace("/", "-")
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "processor"
    return f"labstream-process-{name}"


def start_position(v: Mapping[str, Any]) -> StartPosition:
    """--from-beginning / --from TIME / --from-end, at most one of them."""
    chosen = [name for name in ("from_beginning", "from_time", "from_end") if v[name]]
    if len(chosen) > 1:
        raise ConfigError("give at most one of --from-beginning, --from TIME and --from-end")
    if v["from_time"]:
        return StartPosition(at_ms=parse_time(str(v["from_time"])))
    if v["from_end"]:
        return StartPosition(offset_reset="latest")
    if v["from_beginning"]:
        return StartPosition(offset_reset="earliest")
    return StartPosition()


def process_settings(config: Config, given: Mapping[str, Any]) -> ProcessSettings:
    """`given` keys: processor, processor_options (KEY=VALUE texts), topic, group, workdir,
    reprocess_failed (processor, processor_options, topic_name from the file when not given),
    and table keys."""
    v = resolve(config, PROCESS, _without(given, *_PROCESS_OWN))
    topic, processor = _topic(given, v), given.get("processor") or v["processor"]
    if not processor:
        raise ConfigError("no processor: give PROCESSOR or processor in [labstream]")
    options = tuple(given.get("processor_options") or v["processor_options"])
    group = given.get("group") or process_group(processor)
    return ProcessSettings(
        config=config,
        processor=processor,
        processor_options=dict(_split(o) for o in options),
        topic=topic,
        group=group,
        reprocess_failed=bool(given.get("reprocess_failed")),
        workdir=Path(given["workdir"]) if given.get("workdir") else None,
        receipts=bool(v["receipts"]),
        receipts_topic=v["receipts_topic"] or default_receipts(topic),
        signing_key=_signing_key(v),
        cipher=_reader_cipher(v),
        telemetry=_telemetry(v),
        options=section(ProcessOptions, v, download=_download_options(v)),
        update_seconds=float(v["update_seconds"]),
        partitions=_partitions(v),
    )


_PROCESS_OWN = ("processor", "processor_options", "topic", "group", "workdir", "reprocess_failed")


def upload_settings(config: Config, given: Mapping[str, Any]) -> UploadSettings:
    """`given` keys: topic, wait_verified, and table keys (chunk_size, n_threads, wire, ...)."""
    v = resolve(config, UPLOAD, _without(given, "topic", "wait_verified"))
    topic = _topic(given, v)
    wait = bool(given.get("wait_verified"))
    trusted = TrustedKeys()
    if wait:  # refused before sending anything: nothing could ever confirm
        trusted = require_trusted(TrustedKeys.load(v["receipts_trusted_keys"]), "--wait-verified")
    return UploadSettings(
        config=config,
        topic=topic,
        chunk_size=_chunk_size(v),
        threads=int(v["n_threads"]),
        timeout=float(v["timeout"]),
        wire=wire_format(str(v["wire"]), load_cipher(v["encryption_key_file"])),
        receipts_topic=v["receipts_topic"] or default_receipts(topic),
        max_rate=parse_rate(v["max_rate"]) if v["max_rate"] else None,
        wait_verified=wait,
        verified_by=int(v["verified_by"]),
        wait_timeout=float(v["wait_timeout"]),
        trusted=trusted,
        auto_chunk_size=v["chunk_size"] is None,
        source=source_name(v["source"]),
        follow_links=bool(v["follow_links"]),
        partitions=_partitions(v),
    )


def source_name(given: str | None, root: Path | None = None) -> str:
    """The instrument's name: as given (checked), else this host's name, and for a watcher
    the watched folder's name after it (`labpc7-xrd`): stable across restarts, distinct for
    two folders watched on one PC."""
    if given:
        try:
            return check_source(given)
        except UnsafePathError as exc:
            raise ConfigError(f"--source / source: {exc}") from exc
    parts = [socket.gethostname()] + ([root.resolve().name] if root is not None else [])
    name = "-".join(re.sub(r"[^\w.-]+", "-", part).strip("-.") for part in parts if part)
    return check_source(name.strip("-.")[:100].strip("-.") or "instrument")


def _partitions(v: Mapping[str, Any]) -> int:
    """--partitions / partitions: a count of at least 1."""
    value = int(v["partitions"])
    if value < 1:
        raise ConfigError(f"--partitions / partitions {value}: a topic needs at least 1 partition")
    return value


def _reader_cipher(v: Mapping[str, Any]) -> PayloadCipher | None:
    """A downloader's or processor's key ring, refusing the old envelope if told to."""
    cipher = load_cipher(v["encryption_key_file"])
    if v["refuse_old_envelope"]:
        if cipher is None:
            raise ConfigError("--refuse-old-envelope needs an encryption key (--encryption-key-file)")
        cipher.accepts_old_envelope = False
    return cipher


def _download_options(v: Mapping[str, Any], start: StartPosition | None = None) -> DownloadOptions:
    limits = Limits.from_values({key: v[key] for key in LIMIT_KEYS})
    at_ms = start.at_ms if start is not None else None
    return section(DownloadOptions, v, limits=limits, start_new_at_ms=at_ms)


def _chunk_size(v: Mapping[str, Any]) -> int:
    """The chunk size given, checked; DEFAULT_CHUNK_SIZE stands in for `auto`."""
    return check_chunk_size(int(v["chunk_size"])) if v["chunk_size"] is not None else DEFAULT_CHUNK_SIZE


def check_state_dir(state: Path, root: Path) -> Path:
    """`state`, refused when it lies inside the watched folder `root`."""
    if _inside(state, root):
        raise ConfigError(f"state folder {state} is inside the watched folder {root}; choose another")
    return state


def _cleanup_policy(v: Mapping[str, Any], root: Path) -> CleanupPolicy:
    move_to = Path(v["move_after_verified"]) if v["move_after_verified"] else None
    n = int(v["delete_after_verified"] or 0)
    if move_to is not None:
        if _inside(move_to, root):
            raise ConfigError(f"--move-after-verified {move_to} is inside the watched folder")
        n = n or 1
    if n < 0:
        raise ConfigError("--delete-after-verified must be 0 (off) or more")
    return CleanupPolicy(after_verified_by=n, move_to=move_to)


def _inside(path: Path, root: Path) -> bool:
    resolved, watched = path.resolve(), root.resolve()
    return resolved == watched or watched in resolved.parents


def _telemetry(v: Mapping[str, Any]) -> Telemetry:
    key = v["heartbeat_signing_key"]
    return section(Telemetry, v, signing_key=SigningKey.load(key) if key else None)


def _signing_key(v: Mapping[str, Any]) -> SigningKey | None:
    path = v["receipts_signing_key"]
    return SigningKey.load(path) if v["receipts"] and path else None


def _topic(given: Mapping[str, Any], v: Mapping[str, Any] | None = None) -> str:
    """--topic, else (for the roles that read it) topic_name from the file."""
    topic = given.get("topic") or (v or {}).get("topic_name")
    if not topic:
        raise ConfigError("no topic: give --topic" + (" or topic_name in [labstream]" if v else ""))
    return str(topic)


def _split(option: str) -> tuple[str, str]:
    key, sep, value = option.partition("=")
    if not sep or not key:
        raise ConfigError(f"--option {option!r}: expected KEY=VALUE")
    return key.replace("-", "_"), value


def _without(given: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in given.items() if k not in names}
