"""Hostile, corrupt and impossible input: clear errors, nothing lost, nothing bogus written."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from labstream.config import load_config
from labstream.kafka import Producer, ensure_topic, producer_settings
from labstream.upload import SourceFile, Uploader
from labstream.wire import Chunk, encode

from ..unit.test_wire import _raw
from .conftest import labstream


def produce_raw(config: Path, topic: str, values: list[tuple[bytes, bytes]]) -> None:
    settings = producer_settings(load_config(config))
    ensure_topic(settings, topic)
    errors: list[str | None] = []
    with Producer(settings) as producer:
        for key, value in values:
            producer.send(topic, key, value, errors.append)
        assert producer.flush(30) == 0
    assert errors == [None] * len(values)


def download(out: Path, config: Path, topic: str) -> tuple[int, str]:
    done = labstream(
        "download", out, "--config", config, "--topic", topic, "--exit-when-idle", "4", check=False
    )
    return done.returncode, done.stdout + done.stderr


def test_corrupted_chunk_is_rejected_and_nothing_presented(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    content = os.urandom(3000)
    sha = hashlib.sha256(content).digest()
    values = [
        encode(Chunk("bad.bin", 3000, sha, i, 3, 1024, content[i * 1024 : (i + 1) * 1024])) for i in range(3)
    ]
    corrupted = bytearray(values[1])
    corrupted[-10] ^= 0x55
    good = encode(Chunk("good.txt", 2, hashlib.sha256(b"ok").digest(), 0, 1, 1024, b"ok"))
    produce_raw(
        config_file,
        topic,
        [
            (b"bad.bin", values[0]),
            (b"bad.bin", bytes(corrupted)),
            (b"bad.bin", values[2]),
            (b"good.txt", good),
        ],
    )
    out = tmp_path / "out"
    status, log = download(out, config_file, topic)
    assert status == 2
    assert "bad.bin: chunk 2/3 fails its checksum" in log
    assert not (out / "bad.bin").exists()
    assert (out / "good.txt").read_bytes() == b"ok"


def test_lying_hash_is_kept_aside(tmp_path: Path, config_file: Path, topic: str) -> None:
    value = encode(Chunk("liar.bin", 5, b"\x42" * 32, 0, 1, 1024, b"hello"))
    produce_raw(config_file, topic, [(b"liar.bin", value)])
    out = tmp_path / "out"
    status, log = download(out, config_file, topic)
    assert status == 2 and "failed verification, kept aside file=liar.bin" in log
    assert not (out / "liar.bin").exists()
    assert [p.read_bytes() for p in (out / ".labstream" / "failed").iterdir()] == [b"hello"]


def test_hostile_paths_are_refused_and_nothing_escapes(tmp_path: Path, config_file: Path, topic: str) -> None:
    out = tmp_path / "deep" / "out"
    hostile = [
        b"../escape.txt",
        b"../../escape.txt",
        b"/tmp/labstream-abs-escape.txt",
        b"C:/escape.txt",
        b"..\\escape.txt",
        b"ok/../../escape.txt",
        b"\x00.txt",
    ]
    produce_raw(config_file, topic, [(p, _raw(p)) for p in hostile] + [(b"garbage", b"\x00" * 10)])
    status, log = download(out, config_file, topic)
    assert status == 2
    assert log.count("message rejected") == len(hostile) + 1
    assert not Path("/tmp/labstream-abs-escape.txt").exists()
    assert not list(tmp_path.rglob("escape.txt"))


def test_unreachable_broker_fails_fast_with_a_clear_message(tmp_path: Path) -> None:
    config = tmp_path / "nowhere.config"
    config.write_text("[cluster]\nbootstrap.servers = 127.0.0.1:1\n")
    src = tmp_path / "f.txt"
    src.write_text("x")
    for args in (["upload", src], ["download", tmp_path / "out"]):
        started = time.monotonic()
        done = labstream(*args, "--config", config, "--topic", "t", "--timeout", "3", check=False, timeout=60)
        assert done.returncode == 1
        assert "no Kafka broker answered at 127.0.0.1:1 within 3 s" in done.stderr
        assert "Traceback" not in done.stderr
        assert time.monotonic() - started < 30


def test_missing_file_and_bad_chunk_size_are_clear(tmp_path: Path, config_file: Path, topic: str) -> None:
    done = labstream("upload", tmp_path / "nope.bin", "--config", config_file, "--topic", topic, check=False)
    assert done.returncode == 1 and "nope.bin: no such file or folder" in done.stderr
    src = tmp_path / "f.txt"
    src.write_text("x")
    done = labstream(
        "upload", src, "--config", config_file, "--topic", topic, "--chunk-size", "1000", check=False
    )
    assert done.returncode == 1 and "not a nonzero power of two" in done.stderr


def test_vanished_file_is_reported_and_the_others_still_sent(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    fine = tmp_path / "fine.txt"
    fine.write_text("fine")
    gone = tmp_path / "gone.txt"  # listed, then deleted before it could be read
    settings = producer_settings(load_config(config_file))
    ensure_topic(settings, topic)
    with Producer(settings) as producer:
        report = Uploader(producer, topic).upload(
            [SourceFile(gone, "gone.txt"), SourceFile(fine, "fine.txt")]
        )
    assert report.files == 1 and list(report.failed) == ["gone.txt"]
    assert "gone.txt: cannot read: No such file or directory" in report.failed["gone.txt"]
    status, _ = download(tmp_path / "out", config_file, topic)
    assert status == 0 and (tmp_path / "out" / "fine.txt").read_text() == "fine"
