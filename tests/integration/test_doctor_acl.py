"""`labstream doctor` against the SASL_SSL broker with the StandardAuthorizer: a missing ACL
is a ✗ naming the kafka-acls command that fixes it; a wrong password is a ✗ with the exact
failure. Rights are read from the broker's authorized operations: nothing is written."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AclOperation, AdminClient, NewTopic, ResourceType

from .conftest import labstream
from .sasl_broker import (
    ADMIN,
    ADMIN_PASSWORD,
    DOWNLOADER,
    DOWNLOADER_PASSWORD,
    INSTRUMENT,
    INSTRUMENT_PASSWORD,
    sasl_ssl_broker,
)
from .test_sasl import client_settings, grant, write_config

PORT = int(os.environ.get("LABSTREAM_TEST_DOCTOR_SASL_PORT", "29892"))


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    with sasl_ssl_broker(tmp_path_factory.mktemp("sasl-doctor"), PORT) as broker:
        yield broker


def doctor(config: Path, topic: str, *args: str) -> tuple[int, dict[str, dict[str, str]]]:
    done = labstream("doctor", "-c", config, "-t", topic, "--json", *args, check=False, timeout=180)
    return done.returncode, {c["name"]: c for c in json.loads(done.stdout)["checks"]}


def test_missing_acls_are_failures_naming_the_fix(
    secure_broker: tuple[str, Path], tmp_path: Path, topic: str
) -> None:
    bootstrap, ca = secure_broker
    admin = AdminClient(client_settings(secure_broker, ADMIN, ADMIN_PASSWORD))
    for future in admin.create_topics([NewTopic(topic, 2, 1), NewTopic(f"{topic}.receipts", 1, 1)]).values():
        future.result(30)
    # The instrument may only describe the data topic (no WRITE); the downloader may read it
    # and write receipts, but has no right on its consumer group.
    grant(
        secure_broker,
        [
            (INSTRUMENT, ResourceType.TOPIC, topic, AclOperation.DESCRIBE),
            (DOWNLOADER, ResourceType.TOPIC, topic, AclOperation.READ),
            (DOWNLOADER, ResourceType.TOPIC, f"{topic}.receipts", AclOperation.WRITE),
        ],
    )
    instrument = write_config(tmp_path, bootstrap, ca, INSTRUMENT, INSTRUMENT_PASSWORD)
    downloader = write_config(tmp_path, bootstrap, ca, DOWNLOADER, DOWNLOADER_PASSWORD)

    status, checks = doctor(instrument, topic, "--role", "watch")
    assert status == 1
    assert (
        checks["tls/sasl"]["status"] == "ok" and "SCRAM-SHA-512 as instrument" in checks["tls/sasl"]["detail"]
    )
    rights = checks["topic rights"]
    assert rights["status"] == "fail" and "may not WRITE" in rights["detail"]
    assert (
        rights["fix"]
        == f"kafka-acls.sh --add --allow-principal User:{INSTRUMENT} --operation Write --topic {topic}"
    )
    assert checks["receipts"]["status"] == "fail"  # may not even describe TOPIC.receipts

    status, checks = doctor(downloader, topic, "--role", "download", "-g", "archive")
    assert status == 1
    assert checks["topic rights"]["status"] == "ok"
    assert checks["receipts rights"]["status"] == "ok"
    group = checks["group rights"]
    assert group["status"] == "fail" and "archive" in group["detail"]
    assert (
        group["fix"]
        == f"kafka-acls.sh --add --allow-principal User:{DOWNLOADER} --operation Read --group archive"
    )

    grant(secure_broker, [(DOWNLOADER, ResourceType.GROUP, "archive", AclOperation.READ)])
    status, checks = doctor(downloader, topic, "--role", "download", "-g", "archive")
    assert checks["group rights"]["status"] == "ok", checks["group rights"]
    assert [name for name, c in checks.items() if c["status"] == "fail"] == []
    assert status == 0
    # Nothing was written by any of these runs.
    ends = admin.list_topics(timeout=10).topics
    assert topic in ends and f"{topic}.receipts" in ends


def test_wrong_password_is_a_failure_with_the_exact_reason(
    secure_broker: tuple[str, Path], tmp_path: Path, topic: str
) -> None:
    bootstrap, ca = secure_broker
    config = write_config(tmp_path, bootstrap, ca, DOWNLOADER, "wrong-password")
    status, checks = doctor(config, topic, "--role", "download")
    assert status == 1
    failure = checks["tls/sasl"]
    assert failure["status"] == "fail" and "Authentication failed" in failure["detail"]
    assert "sasl.password" in failure["fix"] and "wrong-password" not in json.dumps(checks)
    # No point asking further: the topic's checks are said to be skipped, not run.
    assert checks["topic"]["status"] == "info" and "not checked" in checks["topic"]["detail"]


def test_watch_refuses_at_start_a_topic_it_may_not_produce_to(
    secure_broker: tuple[str, Path], tmp_path: Path, topic: str
) -> None:
    bootstrap, ca = secure_broker
    admin = AdminClient(client_settings(secure_broker, ADMIN, ADMIN_PASSWORD))
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    grant(secure_broker, [(INSTRUMENT, ResourceType.TOPIC, topic, AclOperation.DESCRIBE)])
    instrument = write_config(tmp_path, bootstrap, ca, INSTRUMENT, INSTRUMENT_PASSWORD)
    (tmp_path / "watched").mkdir()
    done = labstream(
        "watch", tmp_path / "watched", "-t", topic, "-c", instrument, "--state", tmp_path / "state",
        check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        f"Error: {INSTRUMENT} may not produce to topic {topic!r} (allowed: DESCRIBE); fix: kafka-acls.sh "
        f"--add --allow-principal User:{INSTRUMENT} --operation Write --topic {topic}"
    ]
    assert "starting folder" not in done.stderr  # refused before watching anything
