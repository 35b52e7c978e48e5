"""`labstream resend` through click against the in-memory Kafka: a real watcher's state
folder (run_watch on the same broker), then the command sends files again as it sends."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from labstream.cli import cli
from labstream.config import load_config
from labstream.kafka.memory import MemoryBroker
from labstream.runners import run_watch
from labstream.runners.console import ConsoleMode
from labstream.settings import watch_settings
from labstream.state import WatchState
from labstream.upload.ledger import UploadLedger
from labstream.wire import decode

FAST = {"settle_seconds": 0.2, "rescan_seconds": 0.5, "update_seconds": 0.2, "heartbeat_seconds": 0.0}


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def status(state: Path, relpath: str) -> str | None:
    if not WatchState(state).ledger.exists():
        return None
    with UploadLedger(WatchState(state).ledger) as ledger:
        row = ledger.get(relpath)
        return row.status if row else None


@pytest.fixture
def watched(tmp_path: Path) -> tuple[MemoryBroker, Path, Path]:
    """A broker, the watched folder and the state folder of a watcher that sent a.csv and b.dat."""
    config = tmp_path / "memory.config"
    config.write_text("[cluster]\nbootstrap.servers = 127.0.0.1:1\n")
    root, state = tmp_path / "instrument", tmp_path / "state"
    root.mkdir()
    (root / "a.csv").write_bytes(b"a" * 5000)
    (root / "b.dat").write_bytes(b"b" * 10)
    given = {"file_directory": root, "topic_name": "data", "state": state, "new_files_only": False}
    settings = watch_settings(load_config(config), given | FAST | {"chunk_size": 2048, "source": "pc-7"})
    broker, stop = MemoryBroker(), threading.Event()
    thread = threading.Thread(
        target=run_watch, args=(settings, stop), kwargs={"clients": broker, "console": ConsoleMode()}
    )
    thread.start()
    try:
        wait_for(lambda: status(state, "a.csv") == "sent" and status(state, "b.dat") == "sent")
    finally:
        stop.set()
        thread.join(30)
    return broker, root, state


def resend(broker: MemoryBroker, *args: str) -> tuple[int, str, str]:
    done = CliRunner().invoke(cli, ["resend", *args], obj=broker)
    return done.exit_code, done.stdout, done.stderr


def test_resend_sends_the_file_again_as_the_watcher_sends_and_records_the_new_send(
    watched: tuple[MemoryBroker, Path, Path],
) -> None:
    broker, root, state = watched
    before = [decode(r.value) for r in broker.messages("data") if decode(r.value).path == "a.csv"]
    code, out, err = resend(broker, str(root / "a.csv"), "--state", str(state))
    assert code == 0, err
    assert out == "resent 1 file(s) to data\n"
    chunks = [decode(r.value) for r in broker.messages("data") if decode(r.value).path == "a.csv"]
    again = chunks[len(before) :]
    assert len(before) == len(again) == 3  # 5000 bytes in chunks of the watcher's 2048
    assert (
        {(c.source, c.chunk_size, c.wire_version) for c in again}
        == {(c.source, c.chunk_size, c.wire_version) for c in before}
        == {("pc-7", 2048, before[0].wire_version)}
    )
    assert {c.file_id for c in again}.isdisjoint({c.file_id for c in before})  # a new send
    with UploadLedger(WatchState(state).ledger) as ledger:
        row = ledger.get("a.csv")
        assert row is not None and (row.status, row.reason) == ("sent", "resent on request")
        assert ledger.send_of("a.csv", again[0].file_id.hex()) is not None


def test_a_file_outside_the_watched_folder_is_refused_in_one_line(
    watched: tuple[MemoryBroker, Path, Path], tmp_path: Path
) -> None:
    broker, _root, state = watched
    stray = tmp_path / "stray.txt"
    stray.write_text("not watched")
    sent = len(broker.messages("data"))
    code, _out, err = resend(broker, str(stray), "--state", str(state))
    assert code == 1 and err.strip().count("\n") == 0
    assert "is not inside the watched folder" in err
    assert len(broker.messages("data")) == sent


def test_a_folder_that_is_no_watcher_state_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    code, _out, err = resend(MemoryBroker(), str(tmp_path / "f.txt"), "--state", str(tmp_path / "empty"))
    assert code == 1 and "is not a watcher state folder" in err
