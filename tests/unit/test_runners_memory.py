"""The runners end to end against the in-memory broker: watch -> download/process -> receipts.

No network: `clients=MemoryBroker()` replaces librdkafka for the data, receipts and heartbeats,
so the threaded stages (streamer, watcher, uploader, downloader, receipt collector, process
runner) run for real in a second or two.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from labstream.config import Config
from labstream.errors import AlreadyRunningError
from labstream.kafka.memory import MemoryBroker
from labstream.locks import InstanceLock
from labstream.runners import run_download, run_process, run_watch
from labstream.runners.console import ConsoleMode
from labstream.settings import download_settings, process_settings, watch_settings
from labstream.state import OutputState, WatchState
from labstream.upload.ledger import UploadLedger

CONFIG = Config("memory.config", {"cluster": {"bootstrap.servers": "127.0.0.1:1"}})
FAST = {"settle_seconds": 0.2, "rescan_seconds": 0.5, "update_seconds": 0.2, "heartbeat_seconds": 0.2}


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@contextmanager
def watching(broker: MemoryBroker, root: Path, state: Path, **given: Any) -> Iterator[threading.Event]:
    settings = watch_settings(
        CONFIG,
        {"file_directory": root, "topic_name": "data", "state": state, "new_files_only": False}
        | FAST
        | given,
    )
    stop = threading.Event()
    result: list[Any] = []
    thread = threading.Thread(
        target=lambda: result.append(run_watch(settings, stop, clients=broker, console=ConsoleMode())),
        name="labstream-test-watch",
    )
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(30)
    assert result, "run_watch did not return"


def ledger_status(state: Path) -> dict[str, str]:
    if not WatchState(state).ledger.exists():
        return {}
    with UploadLedger(WatchState(state).ledger) as ledger:
        return {str(row["path"]): str(row["status"]) for row in ledger.report()}


def verified_by(state: Path) -> dict[str, list[str]]:
    with UploadLedger(WatchState(state).ledger) as ledger:
        return {str(row["path"]): list(row["verified_by"]) for row in ledger.report()}


def test_watch_then_download_round_trip_with_receipts_and_heartbeats(tmp_path: Path) -> None:
    broker = MemoryBroker()
    root, state, out = tmp_path / "instrument", tmp_path / "state", tmp_path / "out"
    (root / "sub").mkdir(parents=True)
    files = {"a.csv": b"x" * 1000, "sub/b.raw": bytes(range(256)) * 3000, "empty.dat": b""}
    for relpath, data in files.items():
        (root / relpath).write_bytes(data)
    with watching(broker, root, state, chunk_size=4096):
        wait_for(lambda: ledger_status(state) == {name: "sent" for name in files})
        report = run_download(
            download_settings(
                CONFIG, {"out_dir": out, "topic": "data", "exit_when_idle": 0.5, "heartbeat_seconds": 0.2}
            ),
            threading.Event(),
            clients=broker,
        )
        assert report.files == 3 and report.failed == 0 and report.rejected == 0
        # The downloader's receipts reach the watcher's collector (unsigned: not trusted).
        wait_for(lambda: len(broker.messages("data.receipts")) == 3)
    for relpath, data in files.items():
        assert hashlib.sha256((out / relpath).read_bytes()).digest() == hashlib.sha256(data).digest()
    assert any(r.key for r in broker.messages("labstream.heartbeats"))


def test_a_second_watcher_of_one_state_folder_is_refused_before_any_broker_contact(tmp_path: Path) -> None:
    root, state = tmp_path / "w", tmp_path / "s"
    root.mkdir()
    settings = watch_settings(CONFIG, {"file_directory": root, "topic_name": "t", "state": state})
    broker = MemoryBroker()
    # Held by "another process": the lock file is locked from a separate open file.
    with InstanceLock(WatchState(state).lock, "watcher"):
        import labstream.locks as locks

        held = dict(locks._held)
        locks._held.clear()  # look like another process holds it
        try:
            with pytest.raises(AlreadyRunningError):
                run_watch(settings, threading.Event(), clients=broker, console=ConsoleMode())
        finally:
            locks._held.update(held)
    assert broker.messages("t") == [] and "t" not in broker._topics


def test_process_runner_processes_each_file_once_and_keeps_failures(tmp_path: Path) -> None:
    broker = MemoryBroker()
    root, state, work = tmp_path / "instrument", tmp_path / "state", tmp_path / "work"
    root.mkdir()
    (root / "good.txt").write_bytes(b"fine")
    (root / "bad.txt").write_bytes(b"boom")
    seen = tmp_path / "seen.log"
    (tmp_path / "proc.py").write_text(
        "from pathlib import Path\n"
        "class Proc:\n"
        "    def __init__(self, log):\n"
        "        self.log = Path(log)\n"
        "    def process(self, file):\n"
        "        with self.log.open('a') as f:\n"
        "            f.write(file.relpath + ' ' + file.hash_name + '\\n')\n"
        "        if file.read_bytes() == b'boom':\n"
        "            raise ValueError('cannot parse')\n"
    )
    with watching(broker, root, state):
        wait_for(lambda: ledger_status(state) == {"good.txt": "sent", "bad.txt": "sent"})
    given = {
        "processor": f"{tmp_path / 'proc.py'}:Proc",
        "processor_options": (f"log={seen}",),
        "topic": "data",
        "workdir": work,
        "exit_when_idle": 0.5,
        "retries": 0,
        "heartbeat_seconds": 0.0,
    }
    outcome = run_process(process_settings(CONFIG, given), threading.Event(), clients=broker)
    assert (outcome.report.processed, outcome.report.failed) == (1, 1)
    assert (outcome.failed_dir / "bad.txt").read_bytes() == b"boom"
    assert outcome.failed_dir == OutputState(work).failed_processing
    lines = seen.read_text().splitlines()
    assert lines.count("good.txt sha256") == 1 and lines.count("bad.txt sha256") == 1
    # Reprocessing the kept failure (it still fails) finds it again by its ledger state.
    again = run_process(
        process_settings(CONFIG, {**given, "reprocess_failed": True}), threading.Event(), clients=broker
    )
    assert again.report.failed == 1 and seen.read_text().splitlines().count("bad.txt sha256") == 2
    receipts = broker.messages("data.receipts")
    assert len(receipts) == 3  # verified good, failed bad, failed bad again
