"""Processors: how they are named and built, and the built-in metadata processor end to end on
the in-memory broker (upload -> process -> metadata topic and receipts naming the send)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from labstream.cli.process import outcome_line
from labstream.config import Config
from labstream.download.options import DownloadOptions
from labstream.errors import ConfigError
from labstream.kafka.memory import MemoryBroker
from labstream.process import BaseProcessor, LivePrefix, ReceivedFile, load_processor
from labstream.process.options import ProcessOptions
from labstream.process.runner import ProcessReport, ProcessRunner
from labstream.receipts import Receipt
from labstream.runners import run_process, run_upload
from labstream.runners.process import ProcessOutcome
from labstream.settings import process_settings, upload_settings
from labstream.upload import SourceFile

from .test_live import TOPIC as LIVE_TOPIC
from .test_live import Sent

CONFIG = Config("memory.config", {"cluster": {"bootstrap.servers": "127.0.0.1:1"}})


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_processors_are_named_by_file_module_or_builtin(tmp_path: Path) -> None:
    mod = write(
        tmp_path / "lab_procs.py",
        "seen = []\n"
        "def record(file):\n    seen.append(file.relpath)\n"
        "class Plain:\n    def __init__(self, prefix='x', topic=''):\n"
        "        self.prefix, self.topic = prefix, topic\n"
        "    def process(self, file):\n        seen.append(self.prefix + file.relpath)\n"
        "    def close(self):\n        seen.append('closed')\n"
        "class NoProcess:\n    pass\n"
        "VALUE = 3\n",
    )
    file = ReceivedFile("a.dat", tmp_path / "a.dat", 1, "00", "sha256", "t")
    function = load_processor(f"{mod}:record", {}, {})
    function.process(file)
    assert sys.modules["lab_procs"].seen == ["a.dat"]  # loaded from the file, named by its stem
    plain = load_processor(f"{mod}:Plain", {"prefix": "p-"}, {"topic": "data", "config": CONFIG})
    assert isinstance(plain, BaseProcessor)  # a plain class is adapted
    plain.process(file)
    plain.close()
    assert sys.modules["lab_procs"].seen == ["p-a.dat", "closed"]  # each load reads the file anew
    for spec, options, message in [
        (f"{mod}:NoProcess", {}, "no process"),
        (f"{mod}:record", {"a": "1"}, "takes no --option"),
        (f"{mod}:VALUE", {}, "neither a class nor a function"),
        (f"{mod}:Plain", {"nope": "1"}, "unexpected keyword"),
        (f"{mod}:Missing", {}, "has no Missing"),
        ("no_such_module_here:X", {}, "cannot import"),
        ("nocolon", {}, "expected module:Name"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_processor(spec, options, {})
    with pytest.raises(NotImplementedError):
        BaseProcessor().process(file)


def test_the_metadata_processor_publishes_each_files_metadata_and_a_receipt_naming_the_send(
    tmp_path: Path,
) -> None:
    broker = MemoryBroker()
    (tmp_path / "run1.csv").write_text("a,b\n1,2\n")
    run_upload(
        upload_settings(CONFIG, {"topic": "data", "source": "pc-xrd"}),
        [SourceFile(tmp_path / "run1.csv", "run1/run1.csv")],
        clients=broker,
    )
    write(
        tmp_path / "extract.py",
        "def rows(file):\n    return {'lines': len(file.read_bytes().splitlines())}\n",
    )
    given = {
        "processor": "metadata",
        "processor_options": (f"extractor={tmp_path / 'extract.py'}:rows",),
        "topic": "data",
        "workdir": tmp_path / "work",
        "exit_when_idle": 0.5,
        "heartbeat_seconds": 0.0,
    }
    outcome = run_process(process_settings(CONFIG, given), threading.Event(), clients=broker)
    assert outcome.report.processed == 1
    (record,) = [json.loads(m.value) for m in broker.messages("data.metadata")]
    assert record["path"] == "run1/run1.csv" and record["metadata"] == {"lines": 2} and record["size"] == 8
    (receipt,) = [Receipt.from_bytes(m.value) for m in broker.messages("data.receipts")]
    assert (receipt.path, receipt.outcome, receipt.source) == ("run1/run1.csv", "verified", "pc-xrd")
    assert len(receipt.file_id) == 32  # it names the send, so only that instrument acts on it


def test_a_processor_missing_a_required_option_names_it_and_where_to_give_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_processor("s3", {}, {})
    assert str(caught.value) == (
        "processor s3 needs -o bucket=VALUE (or processor_options = bucket=VALUE in [labstream])"
    )
    module = tmp_path / "needs.py"
    module.write_text("class Sink:\n    def __init__(self, url, *, token, topic):\n        pass\n")
    with pytest.raises(ConfigError, match=r"needs -o token=VALUE \(or processor_options = token=VALUE"):
        load_processor(f"{module}:Sink", {"url": "x"}, {"topic": "t"})  # topic comes from the context


class _Slow(BaseProcessor):
    """Takes `seconds` per file and notes how many messages the group had committed then."""

    def __init__(self, broker: MemoryBroker, seconds: float) -> None:
        self.broker, self.seconds, self.committed_then = broker, seconds, []  # type: ignore[var-annotated]

    def process(self, file: ReceivedFile) -> None:
        self.committed_then.append(sum(self.broker.committed("slow").values()))
        time.sleep(self.seconds)


def test_a_slow_processor_is_busy_not_idle_and_each_file_moves_the_group_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files taking COMMIT_SECONDS or more each are processed one by one, their offsets stored
    after each (faster processors get batches of about COMMIT_SECONDS of work)."""
    monkeypatch.setattr("labstream.download.downloader.COMMIT_SECONDS", 0.3)
    caplog.set_level(logging.INFO)
    broker = MemoryBroker(partitions=1)
    files = []
    for i in range(4):
        (tmp_path / f"f{i}.txt").write_text(f"file {i}")
        files.append(SourceFile(tmp_path / f"f{i}.txt", f"f{i}.txt"))
    run_upload(upload_settings(CONFIG, {"topic": "data"}), files, clients=broker)
    slow = _Slow(broker, 0.5)  # each file takes longer than the idle time below
    runner = ProcessRunner(
        slow,
        {"group.id": "slow"},
        "data",
        tmp_path / "work",
        ProcessOptions(download=DownloadOptions(exit_when_idle=0.3)),
        clients=broker,
    )
    assert runner.run().processed == 4
    assert slow.committed_then == [0, 1, 2, 3]  # the lag counts the files left, not the batch
    messages = [r.getMessage() for r in caplog.records]
    processed = [i for i, m in enumerate(messages) if m.startswith("file processed")]
    idle = [i for i, m in enumerate(messages) if m.startswith("idle, stopping")]
    assert len(processed) == 4 and idle and idle[0] > processed[-1]  # not idle while processing


def test_the_last_line_names_the_failed_folder_only_when_files_failed(tmp_path: Path) -> None:
    assert outcome_line(ProcessOutcome(ProcessReport(processed=6), tmp_path)) == (
        "processed 6 file(s), 0 failed (0 reprocessed)"
    )
    assert outcome_line(ProcessOutcome(ProcessReport(processed=5, failed=1), tmp_path)) == (
        f"processed 5 file(s), 1 failed (0 reprocessed); failed files kept in {tmp_path}"
    )


class _Live(BaseProcessor):
    """Notes each live prefix (and what the file held of it then) and each whole file."""

    def __init__(self) -> None:
        self.prefixes: list[tuple[int, str, bool]] = []
        self.files: list[tuple[str, int]] = []

    def process_live(self, prefix: LivePrefix) -> None:
        with open(prefix.path, "rb") as handle:
            held = handle.read(prefix.size)
        self.prefixes.append((prefix.size, prefix.digest, hashlib.sha256(held).hexdigest() == prefix.digest))
        if prefix.size == 300:
            raise RuntimeError("a bug in process_live")  # logged; the file goes on

    def process(self, file: ReceivedFile) -> None:
        self.files.append((file.relpath, file.size))


def test_a_processor_with_process_live_gets_each_verified_prefix_then_the_whole_file_once(
    tmp_path: Path,
) -> None:
    sent = Sent(tmp_path)
    for size in (100, 200, 50):
        sent.append(os.urandom(size))
        sent.send.extend()
    sent.send.extend(end=True)
    live = _Live()
    runner = ProcessRunner(
        live,
        {"group.id": "live"},
        LIVE_TOPIC,
        tmp_path / "work",
        ProcessOptions(download=DownloadOptions(exit_when_idle=0.3)),
        clients=sent.broker,
    )
    assert runner.run().processed == 1
    content = sent.path.read_bytes()
    assert live.prefixes == [
        (n, hashlib.sha256(content[:n]).hexdigest(), True) for n in (100, 300, 350)
    ]  # the failing call on 300 did not stop the next ones
    assert live.files == [("log.csv", 350)]
