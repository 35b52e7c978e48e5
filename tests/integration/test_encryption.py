"""End-to-end payload encryption: the cluster never sees the bytes; wrong key = no file."""

from __future__ import annotations

import os
from pathlib import Path

from labstream.config import load_config
from labstream.kafka import Consumer, consumer_settings
from labstream.wire import decode

from .conftest import labstream
from .test_roundtrip import tree
from .watchproc import Watcher


def test_encrypted_upload_download_and_wrong_key(tmp_path: Path, config_file: Path, topic: str) -> None:
    key, other = tmp_path / "lab.key", tmp_path / "other.key"
    labstream("keygen", key)
    labstream("keygen", other)
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    secret = b"confidential measurement " * 5000
    (src / "sub" / "secret.dat").write_bytes(secret)
    (src / "noise.bin").write_bytes(os.urandom(300_000))
    labstream(
        "upload",
        src,
        "--config",
        config_file,
        "--topic",
        topic,
        "--chunk-size",
        "65536",
        "--encryption-key-file",
        key,
    )
    settings = consumer_settings(load_config(config_file), f"{topic}-raw")
    with Consumer(settings, [topic]) as consumer:
        raw = b"".join(r.value for _ in range(20) for r in consumer.consume(100, 0.5))
    assert raw and b"confidential" not in raw
    wrong = labstream(
        "download",
        tmp_path / "wrong",
        "--config",
        config_file,
        "--topic",
        topic,
        "--encryption-key-file",
        other,
        "--exit-when-idle",
        "4",
        "--group",
        f"{topic}-wrong",
        check=False,
    )
    assert wrong.returncode == 2 and "cannot decrypt (wrong key" in wrong.stderr
    assert tree(tmp_path / "wrong") == {}
    missing = labstream(
        "download",
        tmp_path / "nokey",
        "--config",
        config_file,
        "--topic",
        topic,
        "--exit-when-idle",
        "4",
        "--group",
        f"{topic}-missing",
        check=False,
    )
    assert missing.returncode == 2 and "is encrypted and no key is configured" in missing.stderr
    labstream(
        "download",
        tmp_path / "right",
        "--config",
        config_file,
        "--topic",
        topic,
        "--encryption-key-file",
        key,
        "--exit-when-idle",
        "4",
        "--group",
        f"{topic}-right",
    )
    assert tree(tmp_path / "right") == tree(src)


def test_resend_seals_with_the_watchers_key_and_chunk_size(
    tmp_path: Path, bootstrap: str, topic: str
) -> None:
    key = tmp_path / "lab.key"
    labstream("keygen", key)
    config = tmp_path / "watch.config"
    config.write_text(
        f"[cluster]\nbootstrap.servers = {bootstrap}\n\n[producer]\n\n"
        "[consumer]\nauto.offset.reset = earliest\n\n"
        f"[labstream]\nencryption_key_file = {key}\nchunk_size = 65536\n"
    )
    root, state = tmp_path / "instrument", tmp_path / "state"
    root.mkdir()
    content = b"confidential resend " * 10_000  # 200 kB: 4 chunks of 64 KiB
    (root / "again.dat").write_bytes(content)  # there before the watcher: it is not sent
    assert Watcher(root, config, topic, state, "--ignore-existing").stop() == 0
    assert "resent 1 file(s)" in labstream("resend", root / "again.dat", "--state", state).stdout
    settings = consumer_settings(load_config(config), f"{topic}-raw")
    with Consumer(settings, [topic]) as consumer:
        values = [r.value for _ in range(20) for r in consumer.consume(100, 0.5)]
    chunks = [decode(v) for v in values]
    assert len(chunks) == 4 and all(c.encrypted and c.chunk_size == 65536 for c in chunks)
    assert b"confidential" not in b"".join(values)
    without = labstream(
        "download",
        tmp_path / "nokey",
        "--config",
        config_file_without_key(tmp_path, bootstrap),
        "--topic",
        topic,
        "--exit-when-idle",
        "4",
        "--group",
        f"{topic}-nokey",
        check=False,
    )
    assert without.returncode == 2 and "is encrypted and no key is configured" in without.stderr
    assert tree(tmp_path / "nokey") == {}
    labstream(
        "download",
        tmp_path / "right",
        "--config",
        config,
        "--topic",
        topic,
        "--encryption-key-file",
        key,
        "--exit-when-idle",
        "4",
        "--group",
        f"{topic}-key",
    )
    assert (tmp_path / "right" / "again.dat").read_bytes() == content


def config_file_without_key(tmp_path: Path, bootstrap: str) -> Path:
    path = tmp_path / "plain.config"
    path.write_text(
        f"[cluster]\nbootstrap.servers = {bootstrap}\n\n[producer]\n\n"
        "[consumer]\nauto.offset.reset = earliest\n"
    )
    return path
