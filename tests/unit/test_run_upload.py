"""`run_upload` end to end against the in-memory broker: upload -> download -> receipts -> wait."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from labstream.config import Config
from labstream.download import Downloader
from labstream.download.limits import Limits
from labstream.download.options import DownloadOptions
from labstream.errors import DeliveryError
from labstream.kafka.memory import MemoryBroker
from labstream.receipts import ReceiptPublisher, SigningKey
from labstream.receipts.signing import write_keypair
from labstream.runners import run_upload
from labstream.settings import upload_settings
from labstream.upload import SourceFile
from labstream.wire import decode

CONFIG = Config("memory.config", {"cluster": {"bootstrap.servers": "127.0.0.1:1"}})


def files(tmp_path: Path, **contents: bytes) -> list[SourceFile]:
    (tmp_path / "src").mkdir(exist_ok=True)
    for name, data in contents.items():
        (tmp_path / "src" / name).write_bytes(data)
    return [SourceFile(tmp_path / "src" / name, name) for name in contents]


def test_every_file_acknowledged_and_named_by_its_source(tmp_path: Path) -> None:
    broker = MemoryBroker()
    settings = upload_settings(CONFIG, {"topic": "data", "source": "pc-7", "chunk_size": 1024})
    progress: list[int] = []
    outcome = run_upload(
        settings, files(tmp_path, a=b"x" * 3000, b=b""), clients=broker, on_progress=progress.append
    )
    assert (outcome.report.files, outcome.report.chunks, sum(progress)) == (2, 4, 3000)
    assert outcome.verdicts == {}
    chunks = [decode(r.value) for r in broker.messages("data")]
    assert {c.source for c in chunks} == {"pc-7"} and len(chunks) == 4


def test_a_file_that_cannot_be_read_fails_the_upload_naming_it(tmp_path: Path) -> None:
    settings = upload_settings(CONFIG, {"topic": "data"})
    gone = SourceFile(tmp_path / "missing.dat", "missing.dat")
    with pytest.raises(DeliveryError, match=r"missing\.dat"):
        run_upload(settings, [gone], clients=MemoryBroker())


def _download_and_sign(broker: MemoryBroker, out: Path, key: SigningKey, max_file_size: str = "1TiB") -> None:

    with ReceiptPublisher({}, "data.receipts", "archive", key, clients=broker) as publisher:
        Downloader(
            {"group.id": "archive"},
            "data",
            out,
            DownloadOptions(exit_when_idle=0.3, limits=Limits.from_values({"max_file_size": max_file_size})),
            on_verdict=publisher.publish,
            clients=broker,
        ).run()


@pytest.mark.parametrize("refused", [False, True])
def test_wait_verified_returns_on_receipts_for_its_own_sends_or_names_the_failure(
    tmp_path: Path, refused: bool
) -> None:
    write_keypair(tmp_path / "archive")
    key = SigningKey.load(tmp_path / "archive")
    broker = MemoryBroker()
    given = {
        "topic": "data",
        "wait_verified": True,
        "wait_timeout": 10.0,
        "receipts_trusted_keys": str(tmp_path / "archive.pub"),
        "chunk_size": 1024,
    }
    settings = upload_settings(CONFIG, given)
    limit = "100" if refused else "1TiB"  # a downloader refusing files over 100 bytes

    def downstream(_line: str) -> None:  # runs once every chunk is acknowledged
        thread = threading.Thread(target=_download_and_sign, args=(broker, tmp_path / "out", key, limit))
        thread.start()
        thread.join()

    sent = files(tmp_path, a=b"a" * 5000, b=b"b" * 700)
    if refused:
        with pytest.raises(DeliveryError, match=r"not verified downstream.*over the limit"):
            run_upload(settings, sent, clients=broker, on_waiting=downstream)
    else:
        outcome = run_upload(settings, sent, clients=broker, on_waiting=downstream)
        assert outcome.verdicts == {"a": "verified", "b": "verified"}
