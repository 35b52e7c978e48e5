"""May this principal do what its role needs? From the operations the broker's authorizer
reports for it (KIP-430: DescribeTopics / DescribeGroups with authorized operations); no ACL
listing rights needed, nothing written."""

from __future__ import annotations

from labstream.doctor.check import Check
from labstream.errors import KafkaError
from labstream.kafka import DeniedError, TopicInfo, describe_topic
from labstream.kafka.inspect import group_operations
from labstream.kafka.settings import LibrdkafkaConfig

__all__ = ["ROLE_NEEDS", "check_group", "check_operations"]

# Topic operations per role: (data topic, receipts topic).
ROLE_NEEDS = {
    "watch": ({"WRITE"}, {"READ"}),
    "download": ({"READ"}, {"WRITE"}),
    "process": ({"READ"}, {"WRITE"}),
}
# Groups the instrument side reads receipts with (README: a prefixed ACL on these).
WATCH_GROUP_PROBE = "labstream-receipts-doctor"


def _allowed(have: frozenset[str], need: set[str]) -> set[str]:
    return set() if "ALL" in have else need - have


def check_operations(name: str, info: TopicInfo | None, need: set[str], principal: str) -> Check:
    if info is None:
        return Check.info(name, "topic does not exist yet: rights not checked")
    if info.operations is None:
        return Check.info(name, f"the broker does not report authorized operations on {info.name}")
    missing = _allowed(info.operations, need)
    if missing:
        return Check.fail(
            name,
            f"{principal} may not {'/'.join(sorted(missing))} topic {info.name} "
            f"(allowed: {', '.join(sorted(info.operations)) or 'nothing'})",
            f"kafka-acls.sh --add --allow-principal User:{principal} "
            + " ".join(f"--operation {op.capitalize()}" for op in sorted(missing))
            + f" --topic {info.name}",
        )
    return Check.ok(name, f"{principal} may {'/'.join(sorted(need))} topic {info.name}")


def check_group(librdkafka: LibrdkafkaConfig, group: str, principal: str, timeout: float) -> Check:
    """Consuming with a group and committing its offsets both need READ on the group."""
    name = "group rights"
    try:
        have = group_operations(librdkafka, group, timeout)
    except DeniedError:
        have = frozenset()
    except KafkaError as exc:
        return Check.info(name, f"cannot ask about group {group}: {exc}")
    if _allowed(have, {"READ"}):
        return Check.fail(
            name,
            f"{principal} may not consume or commit as group {group}",
            f"kafka-acls.sh --add --allow-principal User:{principal} --operation Read --group {group}",
        )
    return Check.ok(name, f"{principal} may consume and commit as group {group}")


def receipts_info(librdkafka: LibrdkafkaConfig, topic: str, timeout: float) -> TopicInfo | str | None:
    """The receipts topic's description, None if missing, or why it cannot be described."""
    try:
        return describe_topic(librdkafka, topic, timeout)
    except KafkaError as exc:
        return str(exc)
