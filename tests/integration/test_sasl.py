"""SASL_SSL with SCRAM-SHA-512 against a TLS broker whose certificates the test makes."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import labstream
from .sasl_broker import PASSWORD, USER, sasl_ssl_broker
from .test_roundtrip import tree

SASL_PORT = int(os.environ.get("LABSTREAM_TEST_SASL_PORT", "29592"))


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    with sasl_ssl_broker(tmp_path_factory.mktemp("sasl"), SASL_PORT) as broker:
        yield broker


def write_config(folder: Path, bootstrap: str, ca: Path) -> Path:
    config = folder / "secure.config"
    config.write_text(f"""[cluster]
bootstrap.servers = {bootstrap}
security.protocol = SASL_SSL
sasl.mechanism = SCRAM-SHA-512
sasl.username = {USER}
sasl.password = ${{LAB_KAFKA_PASSWORD}}
ssl.ca.location = {ca}
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
