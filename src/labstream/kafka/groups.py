"""Which consumer groups read a topic, and with how many members: the doctor's partition advice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import confluent_kafka

from labstream.errors import KafkaError
from labstream.kafka.admin import _admin
from labstream.kafka.settings import LibrdkafkaConfig

__all__ = ["GroupMembers", "topic_groups"]


@dataclass(frozen=True)
class GroupMembers:
    """One active group reading `topic`: its members and the partitions they hold."""

    group: str
    members: int  # members holding partitions of the topic, or none (idle)
    assigned: int  # partitions of the topic assigned across the group


def topic_groups(librdkafka: LibrdkafkaConfig, topic: str, timeout: float = 10.0) -> list[GroupMembers]:
    """Every consumer group with members and at least one partition of `topic` assigned.
    A member holding nothing counts with the group (a labstream group reads one topic: an
    empty-handed member is an idle one). `KafkaError` if groups cannot be listed."""
    admin = _admin(librdkafka)
    try:
        listed = admin.list_consumer_groups(request_timeout=timeout).result()
        names = [g.group_id for g in listed.valid]
        if not names:
            return []
        futures = admin.describe_consumer_groups(names, request_timeout=timeout)
    except confluent_kafka.KafkaException as exc:
        raise KafkaError(f"cannot list the consumer groups: {exc.args[0]}") from exc
    found = []
    for name, future in sorted(futures.items()):
        try:
            described = future.result()
        except confluent_kafka.KafkaException:
            continue  # a group we may not describe, or one gone meanwhile
        counted = _members_on(described.members, topic)
        if counted is not None:
            found.append(GroupMembers(name, *counted))
    return found


def _members_on(members: list[Any], topic: str) -> tuple[int, int] | None:
    """(members holding partitions of `topic` or nothing, partitions of `topic` held); None
    when no member holds any partition of it."""
    assigned, counted = 0, 0
    for member in members:
        parts = member.assignment.topic_partitions if member.assignment else []
        mine = [p for p in parts if p.topic == topic]
        assigned += len(mine)
        counted += 1 if mine or not parts else 0
    return (counted, assigned) if assigned else None
