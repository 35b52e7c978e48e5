"""Partitions against the groups that read them: a member beyond the partition count idles."""

from __future__ import annotations

from typing import Any

from labstream.doctor.check import Check
from labstream.errors import KafkaError
from labstream.kafka import TopicInfo
from labstream.kafka.groups import GroupMembers, topic_groups

__all__ = ["check_partitions", "check_topic_partitions"]


def check_topic_partitions(settings: dict[str, Any], info: TopicInfo, timeout: float) -> Check:
    """`check_partitions` with the groups the cluster reports reading `info`'s topic."""
    try:
        groups = topic_groups(settings, info.name, timeout)
    except KafkaError as exc:
        return Check.info("partitions", f"{info.name}: {info.partitions} partition(s); {exc}")
    return check_partitions(info.name, info.partitions, groups)


def check_partitions(topic: str, partitions: int, groups: list[GroupMembers]) -> Check:
    """Advice for `topic` of `partitions` read by `groups` (its active groups): WARN when a
    group has more members than partitions (the extra ones receive nothing), or when a group
    reads a topic of one partition (INFO: it can never use a second consumer)."""
    grow = (
        f"kafka-topics.sh --alter --topic {topic} --partitions N (N >= the consumers you will "
        "run; see README 'Sizing partitions': sends in flight may then be re-read)"
    )
    crowded = [g for g in groups if g.members > partitions]
    if crowded:
        listed = ", ".join(f"{g.group} ({g.members} members)" for g in crowded)
        idle = sum(g.members - partitions for g in crowded)
        return Check.warn(
            "partitions",
            f"{topic} has {partitions} partition(s) and more consumers share it: {listed}; "
            f"{idle} member(s) receive nothing",
            f"stop the extra consumers or grow the topic: {grow}",
        )
    if partitions == 1 and groups:
        return Check.info(
            "partitions",
            f"{topic} has 1 partition: group {groups[0].group} can use one consumer only",
            f"to share the work between consumers, grow it: {grow}",
        )
    readers = f"; read by {len(groups)} active group(s)" if groups else ""
    return Check.ok("partitions", f"{topic}: {partitions} partition(s){readers}, no member idle")
