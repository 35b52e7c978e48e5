"""One doctor run: the checks in pipeline order; later ones skipped when the cluster is away."""

from __future__ import annotations

from pathlib import Path

from labstream.config import PROGRAM_SECTION, Config
from labstream.doctor.access import (
    ROLE_NEEDS,
    WATCH_GROUP_PROBE,
    check_group,
    check_operations,
    receipts_info,
)
from labstream.doctor.check import Check, DoctorSettings, Status
from labstream.doctor.clock import check_clock
from labstream.doctor.config_checks import check_config
from labstream.doctor.local import (
    check_account,
    check_folder,
    check_java,
    check_service_manager,
    running_as_root,
)
from labstream.doctor.network import check_brokers, check_kafka, check_reachable, parse_servers
from labstream.doctor.partitions import check_topic_partitions
from labstream.doctor.sample import Sample, sample_topic
from labstream.doctor.topic import check_message_size, check_replication, check_retention, check_topic
from labstream.errors import ConfigError, KafkaError
from labstream.heartbeat import DEFAULT_HEARTBEAT_TOPIC
from labstream.kafka import TopicInfo, consumer_settings, describe_cluster, producer_settings
from labstream.kafka.settings import LibrdkafkaConfig
from labstream.receipts import receipts_topic
from labstream.settings import download_group, process_group
from labstream.upload import DEFAULT_CHUNK_SIZE

__all__ = ["run_doctor"]

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def run_doctor(settings: DoctorSettings) -> list[Check]:
    config, checks = check_config(settings.config_name, settings.bootstrap)
    servers: list[tuple[str, int]] = []
    if config is not None:
        try:
            group = settings.group or default_group(config, settings)
            producer, consumer = producer_settings(config), consumer_settings(config, group)
        except ConfigError as exc:
            checks.append(Check.fail("kafka keys", str(exc), "correct or remove the key"))
        else:
            servers = parse_servers(
                str(producer.get("bootstrap.servers") or producer.get("metadata.broker.list"))
            )
            checks += _cluster_checks(config, settings, producer, consumer, servers)
    if settings.folder is not None:
        checks += check_folder(settings.folder, settings.role)
    checks.append(check_account(settings.role, running_as_root()))
    checks += check_java(bool(servers) and all(host in LOCAL_HOSTS for host, _ in servers))
    checks.append(check_service_manager())
    return checks


def _cluster_checks(
    config: Config,
    settings: DoctorSettings,
    producer: LibrdkafkaConfig,
    consumer: LibrdkafkaConfig,
    servers: list[tuple[str, int]],
) -> list[Check]:
    checks: list[Check] = []
    for host, port in servers:
        checks += check_reachable(host, port, "bootstrap", settings.timeout)
    kafka = check_kafka(producer, settings.timeout)
    checks += kafka
    if any(c.status is Status.FAIL for c in kafka):
        if settings.topic is not None:
            checks.append(skipped_topic_checks(str(settings.topic)))
        return checks
    checks += check_brokers(producer, settings.timeout)
    if settings.topic is not None:
        checks += _topic_checks(config, settings, producer, consumer)
    return checks


def skipped_topic_checks(topic: str) -> Check:
    """Said instead of silence when no broker answered: none of the topic's checks ran."""
    return Check.info(
        "topic",
        f"{topic}: not checked, no broker answered (topic, rights, group, message size, retention, "
        "receipts and clock are checked once the cluster is reachable)",
    )


def _topic_checks(
    config: Config, settings: DoctorSettings, producer: LibrdkafkaConfig, consumer: LibrdkafkaConfig
) -> list[Check]:
    topic, timeout = str(settings.topic), settings.timeout
    principal = str(producer.get("sasl.username") or "this client")
    try:
        brokers = [b[0] for b in describe_cluster(producer, timeout).brokers]
    except KafkaError:
        brokers = []
    info, found = check_topic(producer, topic, len(brokers), timeout)
    checks = [found]
    data_needs, receipt_needs = ROLE_NEEDS[settings.role]
    checks.append(check_operations("topic rights", info, data_needs, principal))
    checks.append(_group_check(config, settings, consumer, principal))
    chunk_size = settings.chunk_size or int(
        config.section(PROGRAM_SECTION).get("chunk_size", DEFAULT_CHUNK_SIZE)
    )
    checks.append(check_message_size(producer, info, brokers[0] if brokers else None, chunk_size, timeout))
    samples: list[Sample] = []
    if info is not None:
        checks.append(check_replication(info))
        checks.append(check_topic_partitions(producer, info, timeout))
        data = _sample(consumer, topic, timeout) if settings.role != "watch" or _may_read(info) else None
        samples += [data] if isinstance(data, Sample) else []
        checks.append(
            check_retention(producer, info, data.average_bytes if isinstance(data, Sample) else None, timeout)
        )
    checks += _receipt_checks(settings, producer, consumer, receipt_needs, principal, samples)
    heartbeats = _sample(consumer, DEFAULT_HEARTBEAT_TOPIC, timeout)
    samples += [heartbeats] if isinstance(heartbeats, Sample) else []
    checks.append(check_clock(samples))
    return checks


def default_group(config: Config, settings: DoctorSettings) -> str | None:
    """The group the role would join without -g: a download's is named after its output
    folder (--folder, else download_directory), a processor's after the processor. None: the
    config's group.id (or none)."""
    program = config.section(PROGRAM_SECTION)  # as written: an unknown key is its own check
    if settings.role == "download":
        folder = settings.folder or program.get("download_directory")
        return download_group(config, None, Path(folder)) if folder else None
    if settings.role == "process" and program.get("processor"):
        return process_group(program["processor"])
    return None


def _group_check(
    config: Config, settings: DoctorSettings, consumer: LibrdkafkaConfig, principal: str
) -> Check:
    if settings.role == "watch":
        return check_group(consumer, WATCH_GROUP_PROBE, principal, settings.timeout)
    named = settings.group or config.consumer_settings().get("group.id")
    if settings.role == "process" and not named and not config.section(PROGRAM_SECTION).get("processor"):
        return Check.info("group rights", "pass --group (the processor's group) to check it")
    return check_group(consumer, str(consumer["group.id"]), principal, settings.timeout)


def _receipt_checks(
    settings: DoctorSettings,
    producer: LibrdkafkaConfig,
    consumer: LibrdkafkaConfig,
    needs: set[str],
    principal: str,
    samples: list[Sample],
) -> list[Check]:
    name = receipts_topic(str(settings.topic))
    info = receipts_info(producer, name, settings.timeout)
    if isinstance(info, str):
        return [Check.fail("receipts", info, f"grant DESCRIBE on topic {name}")]
    if info is None:
        return [Check.info("receipts", f"{name} does not exist yet (the first downloader creates it)")]
    checks = [check_operations("receipts rights", info, needs, principal)]
    if settings.role == "watch":
        read = _sample(consumer, name, settings.timeout)
        if isinstance(read, Sample):
            samples.append(read)
            checks.append(Check.ok("receipts", f"{name} readable ({read.messages} recent receipt(s) read)"))
        else:
            checks.append(
                Check.fail("receipts", f"{name} cannot be read: {read}", f"grant READ on topic {name}")
            )
    return checks


def _may_read(info: TopicInfo) -> bool:
    return info.operations is None or bool({"READ", "ALL"} & info.operations)


def _sample(consumer: LibrdkafkaConfig, topic: str, timeout: float) -> Sample | str:
    try:
        return sample_topic(consumer, topic, timeout)
    except KafkaError as exc:
        return str(exc)
