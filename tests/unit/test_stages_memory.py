"""The threaded stages one by one against the in-memory broker: failures and edges."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from labstream.download import Downloader
from labstream.download.options import DownloadOptions
from labstream.errors import DeliveryError, OutputError
from labstream.kafka.memory import MemoryBroker
from labstream.outcomes import ReceiptOutcome, Verdict
from labstream.receipts import ReceiptCollector, ReceiptPublisher, SigningKey, TrustedKeys, wait_verified
from labstream.receipts.collector import read_receipts
from labstream.receipts.format import Receipt
from labstream.receipts.signing import write_keypair
from labstream.upload import SourceFile, Uploader, collect, raise_if_failed
from labstream.upload.ledger import UploadLedger
from labstream.upload.streamer import DirectoryStreamer, StreamOptions
from labstream.watch import Filters
from labstream.wire import wire_format


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_uploader_sends_every_file_and_names_the_ones_not_acknowledged(tmp_path: Path) -> None:
    broker = MemoryBroker()
    for name in ("a.bin", "b.bin", "c.bin"):
        (tmp_path / "src" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "src" / name).write_bytes(os.urandom(5000))
    progress: list[int] = []
    with broker.producer() as producer:
        report = Uploader(producer, "t", chunk_size=1024, on_progress=progress.append).upload(
            list(collect([tmp_path / "src"]))
        )
    assert (report.files, report.chunks, report.failed) == (3, 15, {}) and sum(progress) == 15000
    raise_if_failed(report)
    broker.fail_deliveries(1)
    missing = SourceFile(tmp_path / "src" / "gone.bin", "gone.bin")
    with broker.producer() as producer:
        report = Uploader(producer, "t", chunk_size=1024, threads=1).upload(
            [SourceFile(tmp_path / "src" / "a.bin", "a.bin"), missing]
        )
    assert set(report.failed) == {"a.bin", "gone.bin"} and "timed out" in report.failed["a.bin"]
    with pytest.raises(DeliveryError, match="2 file"):
        raise_if_failed(report)


def _publish(broker: MemoryBroker, key: SigningKey | None, *verdicts: Verdict) -> None:
    with ReceiptPublisher({}, "t.receipts", "archive", key, clients=broker) as publisher:
        for verdict in verdicts:
            publisher.publish(verdict)


def test_wait_verified_counts_only_trusted_keys_and_reports_failures(tmp_path: Path) -> None:
    write_keypair(tmp_path / "lab")
    key, trusted = SigningKey.load(tmp_path / "lab"), TrustedKeys.load(str(tmp_path / "lab.pub"))
    broker = MemoryBroker()
    digest = bytes(32)
    _publish(broker, None, Verdict("a", digest, 1, "verified"))  # unsigned: never counts
    _publish(broker, key, Verdict("b", digest, 1, "failed", "bad chunk"), Verdict("c", digest, 1, "verified"))
    with broker.producer() as producer:  # garbage on the receipts topic is skipped
        producer.send("t.receipts", b"x", b"not json", lambda _e: None)
    files = {"a": digest.hex(), "b": digest.hex(), "c": digest.hex()}
    verdicts = wait_verified({}, "t.receipts", files, trusted, since_ms=0, timeout=1.0, clients=broker)
    assert verdicts["c"] == "verified"
    assert verdicts["b"].startswith("failed: 'bad chunk'")
    assert verdicts["a"] == "no receipt (1 unauthenticated receipt(s) ignored)"


def test_a_signed_live_receipt_never_counts_as_verified_for_wait_verified(tmp_path: Path) -> None:
    write_keypair(tmp_path / "lab")
    key, trusted = SigningKey.load(tmp_path / "lab"), TrustedKeys.load(str(tmp_path / "lab.pub"))
    broker = MemoryBroker()
    digest = bytes(32)
    _publish(broker, key, Verdict("a", digest, 1, ReceiptOutcome.LIVE))  # the same digest, a prefix
    verdicts = wait_verified(
        {}, "t.receipts", {"a": digest.hex()}, trusted, since_ms=0, timeout=1.0, clients=broker
    )
    assert verdicts == {"a": "no receipt"}


def test_the_collector_hands_live_receipts_only_to_its_live_handler() -> None:
    broker = MemoryBroker()
    verdicts: list[Receipt] = []
    live: list[Receipt] = []
    _publish(
        broker,
        None,
        Verdict("log", bytes(32), 10, ReceiptOutcome.LIVE),
        Verdict("x", bytes(32), 1, "verified"),
    )
    with ReceiptCollector({"group.id": "w"}, "t.receipts", verdicts.append, TrustedKeys(), clients=broker):
        wait_for(lambda: len(verdicts) == 1)
    assert [r.path for r in verdicts] == ["x"]  # no live handler: the live receipt is dropped
    with ReceiptCollector(
        {"group.id": "w2"}, "t.receipts", verdicts.append, TrustedKeys(), on_live=live.append, clients=broker
    ):
        wait_for(lambda: len(live) == 1 and len(verdicts) == 2)
    assert [(r.path, r.size, r.outcome) for r in live] == [("log", 10, "live")]
    assert [r.path for r in verdicts] == ["x", "x"]


def test_collector_hands_every_receipt_over_and_survives_a_failing_callback(tmp_path: Path) -> None:
    broker = MemoryBroker()
    seen: list[Receipt] = []

    def on_receipt(receipt: Receipt) -> None:
        seen.append(receipt)
        if receipt.path == "boom":
            raise RuntimeError("a bug in the callback")

    _publish(broker, None, Verdict("boom", bytes(32), 1, "verified"), Verdict("ok", bytes(32), 2, "verified"))
    with ReceiptCollector({"group.id": "w"}, "t.receipts", on_receipt, TrustedKeys(), clients=broker):
        wait_for(lambda: len(seen) == 2)
    assert [r.path for r in seen] == ["boom", "ok"]
    assert broker.committed("w") and sum(broker.committed("w").values()) == 2
    again: list[Receipt] = []
    read_receipts(
        {"group.id": "s"}, "t.receipts", again.append, TrustedKeys(), idle_seconds=0.2, clients=broker
    )
    assert len(again) == 2


def _streamer(
    broker: MemoryBroker, root: Path, ledger: UploadLedger, stop: threading.Event, **options: object
) -> DirectoryStreamer:
    base = StreamOptions(chunk_size=1024, settle_seconds=0.1, rescan_seconds=0.3, filters=Filters())
    return DirectoryStreamer(
        root, broker.producer(), "t", ledger, StreamOptions(**{**base.__dict__, **options}), stop
    )


def test_streamer_sends_again_what_was_not_acknowledged_ignores_existing_files_and_reports_readably(
    tmp_path: Path,
) -> None:
    broker = MemoryBroker()
    root = tmp_path / "w"
    root.mkdir()
    (root / "old.txt").write_text("there before")
    stop = threading.Event()
    with UploadLedger(tmp_path / "ledger.sqlite") as ledger:
        streamer = _streamer(broker, root, ledger, stop, retry_seconds=1.0, ignore_existing=True)
        thread = threading.Thread(target=streamer.run, name="labstream-test-stream")
        thread.start()
        try:
            wait_for(lambda: ledger.get("old.txt") is not None)
            broker.fail_deliveries(1)
            (root / "new.txt").write_bytes(b"n" * 100)
            # Not acknowledged: still `sending` (a restart would resume it), and why.
            wait_for(lambda: "timed out" in (((row := ledger.get("new.txt")) and row.reason) or ""))
            assert ledger.get("new.txt").status == "sending"  # type: ignore[union-attr]
            wait_for(lambda: (row := ledger.get("new.txt")) is not None and row.status == "sent")
            (root / "next.txt").write_bytes(b"m" * 3000)
            wait_for(lambda: (row := ledger.get("next.txt")) is not None and row.status == "sent")
            status = streamer.status()
        finally:
            stop.set()
            thread.join(30)
        assert ledger.get("old.txt").status == "ignored"  # type: ignore[union-attr]
    session = status.session
    assert (session.sent, session.failed, session.retried, session.bytes) == (2, 0, 1, 3100)
    lines = status.lines()
    assert lines[2] == "this session: sent 2, failed 0, 3.0 KiB, 1 send(s) retried"
    assert "ignored 1" in lines[3] and "sent 2" in lines[3] and "{" not in "".join(lines)
    assert len([r for r in broker.messages("t") if r.key and b"next" in r.key]) == 3
    assert len([r for r in broker.messages("t") if r.key and b"new" in r.key]) == 1  # the retry


@pytest.mark.parametrize("wire", ["labstream-v1", "openmsistream"])
def test_a_watcher_on_an_older_wire_format_records_its_files_as_sent(tmp_path: Path, wire: str) -> None:
    """Sends of the formats without a file id record none (no stray value in its place)."""
    broker = MemoryBroker()
    root = tmp_path / "w"
    root.mkdir()
    stop = threading.Event()
    with UploadLedger(tmp_path / "ledger.sqlite") as ledger:
        streamer = _streamer(broker, root, ledger, stop, wire=wire_format(wire), upload_existing=True)
        (root / "a.txt").write_bytes(b"a" * 3000)
        thread = threading.Thread(target=streamer.run, name="labstream-test-stream")
        thread.start()
        try:
            wait_for(lambda: (row := ledger.get("a.txt")) is not None and row.status == "sent")
        finally:
            stop.set()
            thread.join(10)
        assert ledger.unfinished() == []
        row = ledger.get("a.txt")
        assert row is not None and row.size == 3000 and row.sha256


def test_downloader_waits_while_the_output_is_full_then_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = MemoryBroker()
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(3000))
    with broker.producer() as producer:
        Uploader(producer, "t", chunk_size=1024).upload([SourceFile(src, "a.bin")])
    from labstream.download import assembler as assembler_module
    from labstream.download import downloader as module

    monkeypatch.setattr(module, "SPACE_PROBE_SECONDS", 0.01)
    real_commit = assembler_module.Assembler.commit
    calls = [0]

    def full_once(self: assembler_module.Assembler) -> object:
        calls[0] += 1
        if calls[0] == 1:
            raise OutputError("no space left on device")
        return real_commit(self)

    monkeypatch.setattr(assembler_module.Assembler, "commit", full_once)
    free = iter(range(1000, 10**9, 1000))
    monkeypatch.setattr(module, "_free_bytes", lambda _folder: next(free))  # space comes back
    verdicts: list[Verdict] = []
    report = Downloader(
        {"group.id": "d"},
        "t",
        tmp_path / "out",
        DownloadOptions(exit_when_idle=0.5),
        on_verdict=verdicts.append,
        clients=broker,
    ).run()
    assert report.files == 1 and calls[0] >= 2
    assert (tmp_path / "out" / "a.bin").read_bytes() == src.read_bytes()
    assert [(v.path, v.size, v.outcome, v.reason) for v in verdicts] == [("a.bin", 3000, "verified", "")]
    assert broker.committed("d")  # offsets moved past the file once it was durable


def test_downloader_stale_partials_of_dead_processes_are_removed(tmp_path: Path) -> None:
    from labstream.state import OutputState

    partial = OutputState(tmp_path / "out").partial
    (partial / "999999999-0").mkdir(parents=True)
    (partial / f"{os.getpid()}-7").mkdir()
    report = Downloader(
        {"group.id": "d"}, "t", tmp_path / "out", DownloadOptions(exit_when_idle=0.2), clients=MemoryBroker()
    ).run()
    assert report.files == 0
    assert not (partial / "999999999-0").exists() and (partial / f"{os.getpid()}-7").exists()


def test_unsigned_receipts_are_said_in_one_line_once_per_process(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("labstream.receipts.publisher._told_unsigned", threading.Event())
    caplog.set_level(logging.DEBUG, logger="labstream.receipts.publisher")
    broker = MemoryBroker()
    for group in ("archive", "mirror"):  # e.g. a downloader and a processor in one process
        ReceiptPublisher({}, "t.receipts", group, None, clients=broker).close()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "receipts unsigned" in lines[0] and "labstream keygen --receipts NAME" in lines[0]
    assert [r.levelno for r in caplog.records] == [logging.INFO]
