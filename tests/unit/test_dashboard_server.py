"""`run_dashboard` for real (uvicorn on an ephemeral port, reader threads, lag poller,
pruner, metrics) against the in-memory Kafka, fetched over HTTP with urllib."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from labstream.config import Config
from labstream.dashboard.server import DashboardSettings, run_dashboard
from labstream.errors import ConfigError
from labstream.heartbeat import DEFAULT_HEARTBEAT_TOPIC, Heartbeat, Status
from labstream.kafka.memory import MemoryBroker
from labstream.receipts import Receipt

CONFIG = Config("memory.config", {"cluster": {"bootstrap.servers": "127.0.0.1:1"}})
TOKEN = "s3cret-token-0123456789"


def send(broker: MemoryBroker, topic: str, value: bytes, key: bytes = b"k") -> None:
    with broker.producer() as producer:
        producer.send(topic, key, value, lambda error: None)


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def get(url: str, token: str | None = TOKEN) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


@contextmanager
def serving(broker: MemoryBroker, state: Path, **given: Any) -> Iterator[str]:
    """The dashboard's base URL while `run_dashboard` runs on a thread; stopped on exit."""
    settings = DashboardSettings(
        state=state,
        port=0,
        receipts_topics=("t.receipts",),
        token=TOKEN,
        lag_seconds=1.0,
        metrics=("127.0.0.1", 0),
        **given,
    )
    stop, ready, urls, errors = threading.Event(), threading.Event(), [], []

    def on_ready(url: str) -> None:
        urls.append(url)
        ready.set()

    def main() -> None:
        try:
            run_dashboard(CONFIG, settings, on_ready=on_ready, stop=stop, clients=broker)
        except BaseException as exc:
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=main, name="labstream-test-dashboard")
    thread.start()
    try:
        assert ready.wait(20) and not errors, errors
        yield urls[0]
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive() and not errors, errors


def downloader_beat() -> bytes:
    now = time.time()
    status = Status(topic="t", group="archive", verified=1, failed=1)
    who = ("download@srv:t/archive", "download", "srv", 7, "0.1.0")
    return Heartbeat(*who, now - 60, now, 10.0, "running", status).to_bytes()


def failed_receipt() -> bytes:
    receipt = Receipt("bad.bin", "ab" * 32, 100, "failed", "archive", "srv", "chunk 2/3 fails", time.time())
    return receipt.to_bytes()


def test_the_dashboard_serves_what_its_readers_and_lag_poller_took_from_kafka(tmp_path: Path) -> None:
    broker = MemoryBroker()
    for i in range(3):  # three messages on t that group archive has not committed
        send(broker, "t", b"x", key=b"%d" % i)
    send(broker, DEFAULT_HEARTBEAT_TOPIC, downloader_beat())
    send(broker, "t.receipts", failed_receipt())
    with serving(broker, tmp_path / "state") as url:

        def consumer() -> dict[str, Any]:
            rows = json.loads(get(url + "api/fleet")[2])["consumers"]
            return rows[0] if rows else {}

        wait_for(lambda: consumer().get("lag_messages") == 3)
        row = consumer()
        assert (row["grp"], row["topic"], row["verified"], row["lag_files"]) == ("archive", "t", 1, 0)
        assert (row["failed"], row["last_file"], row["last_reason"]) == (1, "bad.bin", "chunk 2/3 fails")
        status, headers, body = get(url + "api/search?q=bad.bin")
        (found,) = json.loads(body)["results"]
        assert status == 200 and found["path"] == "bad.bin"
        assert [(r["grp"], r["outcome"]) for r in found["receipts"]] == [("archive", "failed")]
        assert get(url + "api/health")[2] == b'{"ok":true,"errors":[]}'
        status, headers, body = get(url)
        assert status == 200 and b"<html" in body.lower()
        assert headers["x-frame-options"] == "DENY"
        assert "default-src 'self'" in headers["content-security-policy"]
    assert (tmp_path / "state" / "dashboard.sqlite").exists()


def test_without_the_token_the_server_answers_401_and_after_stop_it_no_longer_listens(
    tmp_path: Path,
) -> None:
    with serving(MemoryBroker(), tmp_path / "state") as url:
        status, _headers, body = get(url + "api/fleet", token=None)
        assert status == 401 and b"a token is needed" in body
        assert get(url + "api/fleet", token="wrong-token-0123456789")[0] == 401
    host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=2):
        pass


def test_a_port_already_taken_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        settings = DashboardSettings(state=tmp_path / "state", port=port)
        with pytest.raises(ConfigError, match=rf"cannot listen on 127\.0\.0\.1:{port}: "):
            run_dashboard(CONFIG, settings, clients=MemoryBroker())
