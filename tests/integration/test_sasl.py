"""SASL_SSL with SCRAM-SHA-512 against a TLS broker whose certificates the test makes.

The broker enforces ACLs: alice (the general client) is granted every topic and group; the
instrument and downloader principals only what a lab should grant them (see `lab_acls`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from .conftest import labstream
from .receiptkeys import make_keys, signing, trusting
from .sasl_broker import (
    ADMIN,
    ADMIN_PASSWORD,
    DOWNLOADER,
    DOWNLOADER_PASSWORD,
    INSTRUMENT,
    INSTRUMENT_PASSWORD,
    PASSWORD,
    USER,
    sasl_ssl_broker,
)
from .test_roundtrip import tree
from .watchproc import start_download

SASL_PORT = int(os.environ.get("LABSTREAM_TEST_SASL_PORT", "29592"))


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    with sasl_ssl_broker(tmp_path_factory.mktemp("sasl"), SASL_PORT) as broker:
        grant(broker, [(USER, ResourceType.TOPIC, "*", AclOperation.ALL)])
        grant(broker, [(USER, ResourceType.GROUP, "*", AclOperation.ALL)])
        yield broker


def client_settings(broker: tuple[str, Path], user: str, password: str) -> dict[str, str]:
    bootstrap, ca = broker
    return {
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": user,
        "sasl.password": password,
        "ssl.ca.location": str(ca),
    }


Grant = tuple[str, ResourceType, str, AclOperation]


def grant(broker: tuple[str, Path], grants: list[Grant], prefixed: bool = False) -> None:
    """Create ALLOW ACLs as the admin, as `kafka-acls.sh --add --allow-principal` would."""
    admin = AdminClient(client_settings(broker, ADMIN, ADMIN_PASSWORD))
    pattern = ResourcePatternType.PREFIXED if prefixed else ResourcePatternType.LITERAL
    bindings = [
        AclBinding(kind, name, pattern, f"User:{user}", "*", operation, AclPermissionType.ALLOW)
        for user, kind, name, operation in grants
    ]
    for future in admin.create_acls(bindings, request_timeout=30).values():
        future.result()


def write_config(
    folder: Path, bootstrap: str, ca: Path, user: str = USER, password: str = "${LAB_KAFKA_PASSWORD}"
) -> Path:
    config = folder / f"{user}.config"
    config.write_text(f"""[cluster]
bootstrap.servers = {bootstrap}
security.protocol = SASL_SSL
sasl.mechanism = SCRAM-SHA-512
sasl.username = {user}
sasl.password = {password}
ssl.ca.location = {ca}

[consumer]
auto.offset.reset = earliest
""")
    return config


def test_sasl_ssl_round_trip_and_secrets_stay_secret(
    secure_broker: tuple[str, Path], tmp_path: Path, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap, ca = secure_broker
    monkeypatch.setenv("LAB_KAFKA_PASSWORD", PASSWORD)
    config = write_config(tmp_path, bootstrap, ca)
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.dat").write_bytes(os.urandom(200_000))
    up = labstream("-vv", "upload", src, "--config", config, "--topic", topic)  # debug logs too
    down = labstream(
        "-vv", "download", tmp_path / "out", "--config", config, "--topic", topic, "--exit-when-idle", "4"
    )
    assert tree(tmp_path / "out") == tree(src)
    shown = labstream("config", "show", config).stdout
    for text in (
        up.stdout,
        up.stderr,
        down.stdout,
        down.stderr,
        shown,
        (tmp_path / "out" / ".labstream" / "ledger.sqlite").read_bytes().decode("latin-1"),
    ):
        assert PASSWORD not in text


def test_wrong_password_is_one_clear_error(
    secure_broker: tuple[str, Path], tmp_path: Path, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap, ca = secure_broker
    monkeypatch.setenv("LAB_KAFKA_PASSWORD", "not-the-password")
    config = write_config(tmp_path, bootstrap, ca)
    src = tmp_path / "f.txt"
    src.write_text("x")
    started = time.monotonic()
    done = labstream("upload", src, "--config", config, "--topic", topic, check=False, timeout=120)
    assert done.returncode == 1
    assert "Authentication failed" in done.stderr or "authentication" in done.stderr.lower()
    assert done.stderr.count("\n") <= 3, done.stderr  # one line, not a retry storm
    assert "not-the-password" not in done.stderr
    assert time.monotonic() - started < 60


def lab_acls(data: str, downloader_group: str) -> tuple[list[Grant], list[Grant]]:
    """The ACLs a lab sets (README): literal grants, and the instrument's prefixed group grants.

    The instrument writes data and reads receipts; the downloader the reverse, and reads
    with its consumer group. Neither can write the other's topic.
    """
    receipts = f"{data}.receipts"
    topic, group = ResourceType.TOPIC, ResourceType.GROUP
    literal = [
        (INSTRUMENT, topic, data, AclOperation.WRITE),
        (INSTRUMENT, topic, data, AclOperation.DESCRIBE),
        (INSTRUMENT, topic, receipts, AclOperation.READ),
        (INSTRUMENT, topic, receipts, AclOperation.DESCRIBE),
        (DOWNLOADER, topic, data, AclOperation.READ),
        (DOWNLOADER, topic, data, AclOperation.DESCRIBE),
        (DOWNLOADER, topic, receipts, AclOperation.WRITE),
        (DOWNLOADER, topic, receipts, AclOperation.DESCRIBE),
        (DOWNLOADER, group, downloader_group, AclOperation.READ),
    ]
    # The watcher, `status` and `upload --wait-verified` read receipts with generated group names.
    prefixed = [
        (INSTRUMENT, group, prefix, AclOperation.READ)
        for prefix in ("labstream-receipts-", "labstream-status-", "labstream-wait-")
    ]
    return literal, prefixed


def write_fails(broker: tuple[str, Path], user: str, password: str, topic: str) -> str:
    """Produce one message as `user`; the delivery error's name ("" if it was written)."""
    errors: list[str] = []
    producer = Producer({**client_settings(broker, user, password), "message.timeout.ms": 20000})
    producer.produce(topic, b"forged", on_delivery=lambda err, _msg: errors.append(err.name() if err else ""))
    assert producer.flush(30) == 0
    return errors[0]


def test_acls_instrument_and_downloader_can_each_write_only_their_topic(
    secure_broker: tuple[str, Path], tmp_path: Path, topic: str
) -> None:
    bootstrap, ca = secure_broker
    receipts = f"{topic}.receipts"
    admin = AdminClient(client_settings(secure_broker, ADMIN, ADMIN_PASSWORD))
    for future in admin.create_topics([NewTopic(topic, 2, 1), NewTopic(receipts, 1, 1)]).values():
        future.result(30)
    literal, prefixed = lab_acls(topic, "archive")
    grant(secure_broker, literal)
    grant(secure_broker, prefixed, prefixed=True)
    instrument = write_config(tmp_path, bootstrap, ca, INSTRUMENT, INSTRUMENT_PASSWORD)
    downloader = write_config(tmp_path, bootstrap, ca, DOWNLOADER, DOWNLOADER_PASSWORD)
    keys = make_keys(tmp_path / "keys", "archive")
    # Neither principal can write the other's topic: no forged receipts from the instrument
    # side, no forged data from a downloader.
    assert (
        write_fails(secure_broker, INSTRUMENT, INSTRUMENT_PASSWORD, receipts) == "TOPIC_AUTHORIZATION_FAILED"
    )
    assert write_fails(secure_broker, DOWNLOADER, DOWNLOADER_PASSWORD, topic) == "TOPIC_AUTHORIZATION_FAILED"
    # What they may do is enough for the whole loop: upload, download, signed receipt, verified.
    src = tmp_path / "measurement.dat"
    src.write_bytes(os.urandom(100_000))
    process = start_download(
        tmp_path / "out", downloader, topic, tmp_path / "down.log", "--group", "archive", *signing(keys)
    )
    try:
        done = labstream(
            "upload",
            src,
            "--config",
            instrument,
            "--topic",
            topic,
            "--wait-verified",
            "--wait-timeout",
            "120",
            *trusting(keys),
            timeout=180,
        )
    finally:
        process.terminate()
        process.wait(30)
    assert "verified downstream: all 1 file(s)" in done.stdout
    assert (tmp_path / "out" / "measurement.dat").read_bytes() == src.read_bytes()
