"""librdkafka settings: labstream's defaults, the guarantees it enforces, validation."""

from __future__ import annotations

import hashlib
import logging
import re
import socket
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias

import confluent_kafka

from labstream.config import CLIENT_SECTIONS, Config, did_you_mean
from labstream.errors import ConfigError
from labstream.kafka.properties import PROPERTIES
from labstream.kafka.quiet import outage_filter

__all__ = [
    "LibrdkafkaConfig",
    "consumer_settings",
    "member_for_thread",
    "producer_settings",
    "static_membership",
    "unknown_keys",
    "validate",
]

# What confluent_kafka's Producer, Consumer and AdminClient take: librdkafka's own dotted keys
# ("bootstrap.servers", "sasl.username", ...), plus our "logger" once `validate` added it. The
# name keeps it apart from labstream's typed role settings (labstream.settings), which are
# what a parameter called `settings` holds.
LibrdkafkaConfig: TypeAlias = dict[str, Any]

logger = logging.getLogger(__name__)
librdkafka_logger = logging.getLogger("labstream.librdkafka")
librdkafka_logger.addFilter(outage_filter)  # a dead broker is reported many times a second

# Java-client keys that openmsistream config files carry; librdkafka has no use for them.
IGNORED_KEYS = {"key.serializer", "value.serializer", "key.deserializer", "value.deserializer"}
# How fast a client notices a dead broker and finds the live ones (producer and consumer).
FAILOVER_DEFAULTS = {
    # librdkafka doubles the wait between reconnects up to 10 s: a broker back after an
    # outage was then found up to 10 s late (measured 10.1-10.7 s). 1 s caps that delay; the
    # attempts stay jittered and cheap (one TCP connect per broker per second).
    "reconnect.backoff.max.ms": "1000",
    # A connection that is not set up in 10 s (a host that vanished without a RST: no
    # answer at all) is given up for the next broker, instead of after librdkafka's 30 s.
    # 10 s still leaves room for a slow TLS + SASL handshake over a WAN.
    "socket.connection.setup.timeout.ms": "10000",
    # Leader and coordinator moves are learnt from the errors they cause (librdkafka then
    # refreshes at once); the periodic refresh only catches changes no request ran into.
    # 60 s instead of 5 min bounds that, at a negligible cost (one small request a minute).
    "topic.metadata.refresh.interval.ms": "60000",
}
PRODUCER_DEFAULTS = {
    **FAILOVER_DEFAULTS,
    "linger.ms": "10",
    # Bounds memory, flat in file size: what is produced and not yet acknowledged. 8 MiB
    # instead of 32 (issue 29, a fleet of watchers, each under 60 MiB): a watcher's peak with
    # 10 MiB files 88 -> 59 MiB (bench/memory_watch.py); upload MB/s did not drop (small files
    # 50.6 -> 114, 200 MB file 91.5 -> 142, bench/throughput.py on a busy machine). The
    # runners raise it to hold at least 4 chunks (runners.chunking.fit_queue).
    "queue.buffering.max.kbytes": "8192",
    "message.timeout.ms": "300000",
}
PRODUCER_REQUIRED = {"acks": ("all", "-1"), "enable.idempotence": ("true",)}
# The group protocol stays librdkafka's default, classic, with static membership: measured with
# bench/recovery.py (Kafka 4.1.1, librdkafka 2.16.0), restart of a SIGKILLed downloader to its
# first file 0.8-2.5 s (classic, static; eager or cooperative-sticky) against 45.6-47.3 s with
# group.protocol=consumer (KIP-848, static or not: the broker holds the dead member's
# partitions for its group.consumer.session.timeout.ms, 45 s and at least 45 s by default);
# group coordinator killed in a 3-node cluster: 9.4/10.6 s (classic) vs 10.4-11.8 s (KIP-848)
# vs 12.5/16.1 s (cooperative-sticky), watcher/downloader pause. `group.protocol = consumer`
# in [consumer] still works: the keys it refuses are left out (CLASSIC_ONLY).
CONSUMER_DEFAULTS = {
    **FAILOVER_DEFAULTS,
    "auto.offset.reset": "earliest",
    "auto.commit.interval.ms": "1000",
    # A crashed downloader's partitions move on after 10 s instead of librdkafka's 45 s;
    # heartbeats come from librdkafka's own thread, so a busy Python thread does not matter.
    # A restarted one does not wait for that: it is a static member (`static_membership`).
    "session.timeout.ms": "10000",
    # 1 s instead of 3 s: a member learns of a rebalance or a new coordinator within a
    # second; a third of the session timeout is Kafka's rule of thumb, a tenth is still
    # only one tiny request per second per consumer.
    "heartbeat.interval.ms": "1000",
    "queued.max.messages.kbytes": "16384",
    # When that prefetch queue is full, librdkafka (>= 2.4) pauses fetching for 1 s by
    # default; a downloader busy writing hits that all the time (measured: 57 vs 300 MB/s).
    "fetch.queue.backoff.ms": "10",
    # 8 MiB per partition per fetch instead of 1 MiB: a large file's chunks all sit in one
    # partition, and at 1 MiB each round trip brought two of them. 2 GiB file: 5.3 -> 3.6 s
    # for labstream's download and 2.9 -> 2.2 s for a raw consumer (bench/throughput.py);
    # peak RSS 105 -> 121 MiB. queued.max.messages.kbytes above still bounds the prefetch.
    "max.partition.fetch.bytes": str(8 << 20),
    # A consumer's first fetch can go out before its partitions' start offsets are known,
    # and then waits this long for nothing: 0.9 -> 0.45 s to the first message (500 ms
    # default). Once caught up, a fetch still returns as soon as a message arrives.
    "fetch.wait.max.ms": "100",
}
# Offsets are stored only for data already durable, so committing them automatically is
# safe; an openmsistream config's enable.auto.commit = False would make every restart re-read.
CONSUMER_FORCED = {"enable.auto.offset.store": "false", "enable.auto.commit": "true"}
INSTANCE_KEY = "group.instance.id"
# Group settings of the classic protocol; with group.protocol=consumer they are the broker's
# (group.consumer.session.timeout.ms, group.consumer.heartbeat.interval.ms, ...).
CLASSIC_ONLY = {"session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy"}
_OFF = {"", "none", "off", "false", "no"}
_validated: set[tuple[str, tuple[tuple[str, str], ...]]] = set()  # settings librdkafka accepted
_validated_lock = threading.Lock()
_UNKNOWN = "No such configuration property"
_PROPERTY_RE = re.compile(r'property "([^"]+)"|property: "?([^"\s]+)"?')


def producer_settings(config: Config, overrides: LibrdkafkaConfig | None = None) -> LibrdkafkaConfig:
    """Settings for an idempotent acks=all producer; refuses weaker guarantees."""
    librdkafka = {**PRODUCER_DEFAULTS, **_client_keys(config.producer_settings())}
    for key, allowed in PRODUCER_REQUIRED.items():
        value = str(librdkafka.get(key, allowed[0])).lower()
        if value not in allowed:
            raise ConfigError(
                f"{config.where(key)} = {value}: labstream requires {allowed[0]} "
                "so that no chunk is lost or written twice"
            )
        librdkafka[key] = allowed[0]
    librdkafka.update(overrides or {})
    return validate(librdkafka, config, confluent_kafka.Producer)


def consumer_settings(
    config: Config, group: str | None, overrides: LibrdkafkaConfig | None = None
) -> LibrdkafkaConfig:
    """Settings for a consumer that stores offsets only when told to."""
    section = _client_keys(config.consumer_settings())
    # A static identity belongs to the long-running data consumers only (`static_membership`):
    # status readers and receipt collectors sharing it would fence each other.
    section.pop(INSTANCE_KEY, None)
    defaults = CONSUMER_DEFAULTS
    if str(section.get("group.protocol", "classic")).strip().lower() == "consumer":
        # KIP-848: the broker runs the group; librdkafka refuses these client-side keys.
        defaults = {k: v for k, v in defaults.items() if k not in CLASSIC_ONLY}
    librdkafka = {**defaults, **section, **CONSUMER_FORCED}
    if group:
        librdkafka["group.id"] = group
    if str(librdkafka.get("group.id", "")).lower() in ("new", "create_new"):
        librdkafka["group.id"] = f"labstream-{uuid.uuid4().hex[:12]}"
    librdkafka.setdefault("group.id", "labstream-download")
    librdkafka.update(overrides or {})
    return validate(librdkafka, config, confluent_kafka.Consumer)


def static_membership(librdkafka: LibrdkafkaConfig, config: Config, place: Path) -> LibrdkafkaConfig:
    """`librdkafka` with a `group.instance.id` stable across restarts of the consumer of `place`.

    Derived from host + resolved `place` (the output or work folder) + group, so a restarted
    downloader or processor takes its partitions back at once, without a rebalance. `[consumer]
    group.instance.id` overrides it; `none` (or `off`, `false`, empty) turns it off. Two
    processes with one id fence each other; one downloader per folder keeps the derived id safe.
    """
    given = config.consumer_settings().get(INSTANCE_KEY)
    if given is not None and given.strip().lower() in _OFF:
        return dict(librdkafka)
    if str(librdkafka.get("group.protocol", "classic")).lower() == "consumer" and given is None:
        # Measured (bench/recovery.py): a static KIP-848 member restarted after kill -9 is
        # refused (UNRELEASED_INSTANCE_ID) until the broker's 45 s session ends, exactly as
        # long as a dynamic one waits for the dead member's partitions; no gain, one more way
        # to fail, so the derived id is for the classic protocol only.
        return dict(librdkafka)
    if given is None:
        origin = f"{socket.gethostname()}\0{Path(place).resolve()}\0{librdkafka.get('group.id', '')}"
        given = "labstream-" + hashlib.sha256(origin.encode()).hexdigest()[:32]
    return {**librdkafka, INSTANCE_KEY: given.strip()}


def member_for_thread(librdkafka: LibrdkafkaConfig, index: int) -> LibrdkafkaConfig:
    """The settings of consumer thread `index`: each thread is a member of its own."""
    if INSTANCE_KEY not in librdkafka:
        return librdkafka
    return {**librdkafka, INSTANCE_KEY: f"{librdkafka[INSTANCE_KEY]}-{index}"}


def validate(
    librdkafka: LibrdkafkaConfig, config: Config, kind: Callable[[LibrdkafkaConfig], Any]
) -> LibrdkafkaConfig:
    """Build (and drop) a client to let librdkafka check every key and value offline.

    Once per distinct settings and client kind: building a client starts librdkafka threads,
    and the commands ask for the same settings several times (data, receipts, heartbeats)."""
    seen = (getattr(kind, "__name__", repr(kind)), tuple(sorted((k, repr(v)) for k, v in librdkafka.items())))
    with _validated_lock:
        if seen in _validated:
            return {**librdkafka, "logger": librdkafka_logger}
    try:
        client = kind({**librdkafka, "logger": librdkafka_logger})
    except (confluent_kafka.KafkaException, ValueError, TypeError) as exc:
        message = str(exc.args[0].str() if isinstance(exc, confluent_kafka.KafkaException) else exc)
        match = _PROPERTY_RE.search(message)
        key = next((g for g in match.groups() if g), "?") if match else "?"
        if _UNKNOWN in message:  # every typo at once, each with its closest name
            raise ConfigError("; ".join(unknown_keys(config)) or message) from exc
        raise ConfigError(f"{config.where(key)}: {message}") from exc
    if hasattr(client, "close"):
        client.close()
    with _validated_lock:
        _validated.add(seen)
    return {**librdkafka, "logger": librdkafka_logger}


def unknown_keys(config: Config) -> list[str]:
    """One line per key of [cluster]/[producer]/[consumer] that librdkafka does not know,
    naming where it is and the closest known name (`config show` warns with them)."""
    lines = []
    for section in CLIENT_SECTIONS:
        for key, value in config.section(section).items():
            if key not in PROPERTIES and key not in IGNORED_KEYS and not _librdkafka_knows(key, value):
                where = config.where(key, (section,))
                lines.append(f"{where}: not a librdkafka setting{did_you_mean(key, PROPERTIES)}")
    return lines


def _librdkafka_knows(key: str, value: str) -> bool:
    """librdkafka's own word on a name missing from PROPERTIES (a newer librdkafka's)."""
    silent = logging.getLogger("labstream.librdkafka.probe")
    silent.propagate, silent.disabled = False, True
    try:
        client = confluent_kafka.Producer({key: value, "logger": silent})
    except confluent_kafka.KafkaException as exc:
        return _UNKNOWN not in exc.args[0].str()
    except (ValueError, TypeError):
        return True  # a bad value of a known key: the commands say so when they use it
    if hasattr(client, "close"):
        client.close()
    return True


def _client_keys(section: dict[str, str]) -> dict[str, str]:
    dropped = sorted(IGNORED_KEYS & section.keys())
    if dropped:
        logger.debug("ignoring Java-client keys not used by librdkafka keys=%s", dropped)
    return {k: v for k, v in section.items() if k not in IGNORED_KEYS}
