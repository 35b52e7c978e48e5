"""`labstream upload` through click against the in-memory Kafka (the group's `obj`)."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from labstream.cli import cli
from labstream.download import Downloader
from labstream.download.options import DownloadOptions
from labstream.kafka.memory import MemoryBroker
from labstream.receipts import ReceiptPublisher, SigningKey
from labstream.receipts.signing import write_keypair
from labstream.wire import decode


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "memory.config"
    path.write_text("[cluster]\nbootstrap.servers = 127.0.0.1:1\n")
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "run"
    (root / "sub").mkdir(parents=True)
    (root / "a.csv").write_bytes(b"a" * 3000)
    (root / "sub" / "b.raw").write_bytes(b"b" * 100)
    return root


def upload(broker: MemoryBroker, *args: str) -> tuple[int, str, str]:
    done = CliRunner().invoke(cli, ["upload", *args], obj=broker)
    return done.exit_code, done.stdout, done.stderr


def test_a_folder_goes_up_file_by_file_with_subfolders_kept_and_every_chunk_acknowledged(
    folder: Path, config: Path
) -> None:
    broker = MemoryBroker()
    code, out, err = upload(
        broker, str(folder), "-t", "data", "-c", str(config), "--chunk-size", "1024", "--source", "pc-7"
    )
    assert code == 0, err
    assert out.startswith("uploaded 2 file(s), 3.0 KiB in 4 chunk(s) to data in ")
    assert out.rstrip().endswith("as source pc-7; every chunk acknowledged")
    chunks = [decode(record.value) for record in broker.messages("data")]
    assert sorted({c.path for c in chunks}) == ["a.csv", "sub/b.raw"]
    assert {c.source for c in chunks} == {"pc-7"}


def test_a_path_that_does_not_exist_is_one_line_and_exit_1(tmp_path: Path, config: Path) -> None:
    broker = MemoryBroker()
    code, _out, err = upload(broker, str(tmp_path / "nowhere"), "-t", "data", "-c", str(config))
    assert code == 1
    assert err.strip().count("\n") == 0 and "nowhere" in err
    assert broker.messages("data") == []


def test_chunks_the_cluster_did_not_acknowledge_fail_the_command_naming_a_file(
    folder: Path, config: Path
) -> None:
    broker = MemoryBroker()
    broker.fail_deliveries(100)
    code, out, err = upload(broker, str(folder), "-t", "data", "-c", str(config))
    assert code == 1 and out == ""
    assert "2 file(s) not fully sent; first: " in err and "Message timed out" in err


def _receipt_downstream(broker: MemoryBroker, chunks: int, out: Path, key: SigningKey) -> None:
    """Once `chunks` chunks are on the topic: download them and publish signed receipts."""
    deadline = time.monotonic() + 10.0
    while len(broker.messages("data")) < chunks and time.monotonic() < deadline:
        time.sleep(0.02)
    with ReceiptPublisher({}, "data.receipts", "archive", key, clients=broker) as publisher:
        Downloader(
            {"group.id": "archive"},
            "data",
            out,
            DownloadOptions(exit_when_idle=0.3),
            on_verdict=publisher.publish,
            clients=broker,
        ).run()


def test_wait_verified_returns_once_a_trusted_receipt_confirms_every_file(
    folder: Path, config: Path, tmp_path: Path
) -> None:
    write_keypair(tmp_path / "archive")
    broker = MemoryBroker()
    downstream = threading.Thread(
        target=_receipt_downstream,
        args=(broker, 4, tmp_path / "copy", SigningKey.load(tmp_path / "archive")),
    )
    downstream.start()
    try:
        code, out, err = upload(
            broker,
            str(folder),
            "-t",
            "data",
            "-c",
            str(config),
            "--chunk-size",
            "1024",
            "--wait-verified",
            "--wait-timeout",
            "10",
            "--receipts-trusted-keys",
            str(tmp_path / "archive.pub"),
        )
    finally:
        downstream.join()
    assert code == 0, err
    assert "waiting up to 10 s for receipts on data.receipts ..." in err
    assert out.splitlines()[-1] == (
        "verified downstream: all 2 file(s), SHA-256 confirmed by 1 consumer group(s) with trusted keys"
    )
    copy = tmp_path / "copy" / "sub" / "b.raw"
    assert hashlib.sha256(copy.read_bytes()).digest() == hashlib.sha256(b"b" * 100).digest()
