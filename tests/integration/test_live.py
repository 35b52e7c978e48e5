"""Live files on the real broker: a growing file streamed while it is written, each byte once,
the archive copy at every moment a verified prefix of the source (issue 27)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from labstream.config import load_config
from labstream.kafka import Consumer, consumer_settings
from labstream.wire import decode, encode
from labstream.wire.crypto import load_cipher
from labstream.wire.v2 import live_data, live_mark, new_file_id

from .conftest import labstream
from .receiptkeys import make_keys, signing, trusting
from .test_bad_input import produce_raw
from .test_receipts import download
from .watchproc import Watcher, start_download, wait_for

LIVE = ("--live", "*.csv", "--live", "*.log", "--live-interval", "0.5", "--live-close-seconds", "2")
LIVE += ("--upload-existing",)


class Sampler:
    """Watches the archive copy while the source grows: every look must be a prefix."""

    def __init__(self, source: Path, copy: Path) -> None:
        self.source, self.copy = source, copy
        self.sizes: list[int] = []
        self.not_prefix: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="labstream-test-sampler")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                seen = self.copy.read_bytes()
            except FileNotFoundError:
                continue
            if not self.source.read_bytes().startswith(seen):
                self.not_prefix.append(len(seen))
            if not self.sizes or self.sizes[-1] != len(seen):
                self.sizes.append(len(seen))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def payload_bytes(config: Path, topic: str, path: str) -> int:
    """Bytes of chunk payload the topic holds for `path` (all sends)."""
    total, last = 0, time.monotonic()
    with Consumer(
        consumer_settings(load_config(config), f"count-{time.monotonic_ns()}"), [topic]
    ) as consumer:
        while time.monotonic() - last < 3.0:
            records = consumer.consume(500, 0.5)
            if records:
                last = time.monotonic()
            total += sum(len(decode(r.value).data) for r in records if decode(r.value).path == path)
    return total


def grow(path: Path, lines: int, every: float, *, keep_open: bool) -> None:
    """Append `lines` lines, one every `every` seconds; closed after each, or kept open."""
    if keep_open:
        with open(path, "ab", buffering=0) as handle:
            for i in range(lines):
                handle.write(f"{time.time():.6f},{i},{os.urandom(8).hex()}\n".encode())
                time.sleep(every)
        return
    for i in range(lines):
        with open(path, "ab") as handle:
            handle.write(f"{time.time():.6f},{i},{os.urandom(8).hex()}\n".encode())
        time.sleep(every)


@pytest.fixture
def downloader(tmp_path: Path, config_file: Path, topic: str) -> Callable[..., subprocess.Popen[bytes]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*extra: str) -> subprocess.Popen[bytes]:
        log = tmp_path / "download.log"  # written anew by each downloader
        proc = start_download(tmp_path / "out", config_file, topic, log, *extra)
        started.append(proc)
        # Joined its group: what is appended from now on is seen as it arrives.
        wait_for(lambda: "partitions assigned" in log.read_text(), timeout=60)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)


@pytest.mark.parametrize("keep_open", [False, True], ids=["closed-each-time", "kept-open"])
def test_a_growing_file_arrives_as_it_grows_always_a_prefix_and_once_in_the_topic(
    tmp_path: Path, config_file: Path, topic: str, downloader: Callable[..., object], keep_open: bool
) -> None:
    root = tmp_path / "instrument"
    root.mkdir()
    source = root / ("run.log" if keep_open else "run.csv")
    watcher = Watcher(root, config_file, topic, tmp_path / "state", *LIVE)
    downloader()
    # Written once both sides run: a file left unchanged longer than the close time while the
    # downloader joins would be closed, and its appends sent as a second version.
    source.write_bytes(b"time,index,value\n")
    sampler = Sampler(source, tmp_path / "out" / source.name)
    grow(source, 16, 0.4, keep_open=keep_open)
    wait_for(lambda: watcher.statuses().get(source.name) == "sent", timeout=60)
    wait_for(lambda: sampler.copy.exists() and sampler.copy.read_bytes() == source.read_bytes(), timeout=60)
    sampler.stop()
    assert sampler.not_prefix == []  # never anything but a prefix of what was written
    assert len(sampler.sizes) >= 4, sampler.sizes  # it grew during the run, not at the end
    assert payload_bytes(config_file, topic, source.name) == source.stat().st_size  # one copy
    assert watcher.stop() == 0


def _live_status(state: Path, name: str) -> dict[str, object]:
    report = json.loads(labstream("status", "--state", state, "--json", "--no-refresh").stdout)
    return next((f for f in report["files"] if f["path"] == name), {})


def _ls_live(config: Path, topic: str, name: str) -> dict[str, object]:
    lines = labstream("ls", topic, "--config", config, "--json").stdout.splitlines()
    return next((e for e in map(json.loads, lines) if e["path"] == name and e["state"] == "live"), {})


def test_the_instrument_and_ls_see_a_live_file_verified_so_far_while_it_grows(
    tmp_path: Path, config_file: Path, topic: str, downloader: Callable[..., object]
) -> None:
    root, state = tmp_path / "instrument", tmp_path / "state"
    root.mkdir()
    keys = make_keys(tmp_path / "keys", "archive")
    watcher = Watcher(root, config_file, topic, state, *LIVE, *trusting(keys))
    downloader(*signing(keys))
    source = root / "run.log"
    source.write_bytes(b"time,index,value\n")
    writer = threading.Thread(target=grow, args=(source, 30, 0.4), kwargs={"keep_open": True})
    writer.start()
    try:
        # While it is written: the downloader's live receipts reach the watcher's ledger.
        wait_for(lambda: _live_status(state, "run.log").get("live_verified", 0) > 0, timeout=60)
        seen = _live_status(state, "run.log")
        listed = _ls_live(config_file, topic, "run.log")
    finally:
        writer.join()
    copy = tmp_path / "out" / "run.log"
    assert seen["state"] == "live" and len(seen["live_verified_by"]) == 1  # type: ignore[arg-type]
    assert 0 < seen["live_verified"] <= seen["live_sent"] <= source.stat().st_size  # type: ignore[operator]
    assert copy.stat().st_size >= seen["live_verified"]  # type: ignore[operator]
    assert listed["live"] is True and listed["size"] > 0  # type: ignore[operator]
    wait_for(lambda: _live_status(state, "run.log").get("state") == "verified", timeout=60)
    assert copy.read_bytes() == source.read_bytes()
    assert watcher.stop() == 0


def test_a_rewrite_in_the_middle_and_a_truncation_make_new_versions_never_a_mix(
    tmp_path: Path, config_file: Path, topic: str, downloader: Callable[..., object]
) -> None:
    root = tmp_path / "instrument"
    root.mkdir()
    source = root / "run.csv"
    watcher = Watcher(root, config_file, topic, tmp_path / "state", *LIVE, "--live-close-seconds", "5")
    downloader()
    source.write_bytes(b"a" * 5000)
    copy = tmp_path / "out" / "run.csv"
    wait_for(lambda: copy.exists() and copy.stat().st_size == 5000, timeout=60)
    with open(source, "r+b") as handle:  # a rewrite in the middle, then more appended
        handle.seek(1000)
        handle.write(b"B" * 10)
        handle.seek(0, os.SEEK_END)
        handle.write(b"c" * 2000)
    versions = {bytes(b"a" * 1000 + b"B" * 10 + b"a" * 3990 + b"c" * 2000)}
    wait_for(lambda: copy.read_bytes() in versions, timeout=60)
    source.write_bytes(b"short")  # truncated
    wait_for(lambda: copy.read_bytes() == b"short", timeout=60)
    wait_for(lambda: watcher.statuses().get("run.csv") == "sent", timeout=60)
    assert "live file changed, sending it again" in watcher.text()
    assert watcher.stop() == 0


def test_kill_9_of_the_watcher_and_of_the_downloader_mid_live_file_resumes_exactly(
    tmp_path: Path, config_file: Path, topic: str, downloader: Callable[..., subprocess.Popen[bytes]]
) -> None:
    root = tmp_path / "instrument"
    root.mkdir()
    source = root / "run.csv"
    source.write_bytes(os.urandom(20_000))
    state = tmp_path / "state"
    # A long settle time keeps the send open (live) across the kills; the second watcher closes it.
    watcher = Watcher(root, config_file, topic, state, *LIVE, "--live-close-seconds", "60")
    proc = downloader()
    copy = tmp_path / "out" / "run.csv"
    wait_for(lambda: copy.exists() and copy.stat().st_size == 20_000, timeout=60)
    # Killed once its ledger holds the acknowledged mark (the downloader can verify a mark
    # before the watcher has served that mark's delivery report and checkpointed it).
    wait_for(lambda: _live_status(state, "run.csv").get("live_sent") == 20_000, timeout=30)
    watcher.proc.kill()
    watcher.wait(30)
    proc.kill()
    proc.wait(30)
    with open(source, "ab") as handle:
        handle.write(os.urandom(30_000))
    watcher = Watcher(root, config_file, topic, state, *LIVE)
    downloader()
    sampler = Sampler(source, copy)
    with open(source, "ab") as handle:
        handle.write(os.urandom(10_000))
    wait_for(lambda: watcher.statuses().get("run.csv") == "sent", timeout=60)
    wait_for(lambda: copy.read_bytes() == source.read_bytes(), timeout=60)
    sampler.stop()
    assert sampler.not_prefix == []
    assert "live file continued" in watcher.text()
    # Each byte is in the topic once, plus what was produced but not checkpointed before the kill.
    assert payload_bytes(config_file, topic, "run.csv") < source.stat().st_size + 20_000
    assert watcher.stop() == 0


def test_live_files_with_an_encryption_key(
    tmp_path: Path, config_file: Path, topic: str, downloader: Callable[..., object]
) -> None:
    key = tmp_path / "data.key"
    labstream("keygen", key)
    root = tmp_path / "instrument"
    root.mkdir()
    source = root / "run.csv"
    watcher = Watcher(root, config_file, topic, tmp_path / "state", *LIVE, "--encryption-key-file", key)
    downloader("--encryption-key-file", str(key))
    source.write_bytes(b"header\n")
    sampler = Sampler(source, tmp_path / "out" / "run.csv")
    grow(source, 8, 0.4, keep_open=False)
    wait_for(lambda: watcher.statuses().get("run.csv") == "sent", timeout=60)
    wait_for(lambda: sampler.copy.exists() and sampler.copy.read_bytes() == source.read_bytes(), timeout=60)
    sampler.stop()
    assert sampler.not_prefix == [] and len(sampler.sizes) >= 2
    assert watcher.stop() == 0


@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "with-a-key"])
def test_a_forged_segment_or_prefix_hash_is_refused_and_only_the_verified_prefix_is_kept(
    tmp_path: Path, config_file: Path, topic: str, keyed: bool
) -> None:
    """A real send's first segment verifies; then a segment whose mark lies about the prefix
    hash (plain), or whose sealed mark was altered in transit (with a key), never reaches the
    file: it stays the verified prefix, and the send fails with one verdict."""
    cipher, extra = None, []
    if keyed:
        key = tmp_path / "data.key"
        labstream("keygen", key)
        cipher, extra = load_cipher(str(key)), ["--encryption-key-file", str(key)]
    first, forged = b"genuine prefix\n" * 100, b"forged tail\n" * 50
    send = (1 << 16, new_file_id(), time.time_ns(), "pc-x")  # chunk size, file id, version, source
    end = len(first) + len(forged)
    messages = [
        live_data("run.csv", 0, first, 0, *send),
        live_mark("run.csv", len(first), hashlib.sha256(first).digest(), 1, *send),
        live_data("run.csv", len(first), forged, 2, *send),
        live_mark("run.csv", end, bytes(32), 3, *send),
    ]
    values = [encode(m, cipher) for m in messages]
    if keyed:  # the honest mark, sealed, then its digest altered in transit
        honest = live_mark("run.csv", end, hashlib.sha256(first + forged).digest(), 3, *send)
        altered = bytearray(encode(honest, cipher))
        altered[50] ^= 0xFF
        values[-1] = bytes(altered)
    produce_raw(config_file, topic, [(b"run.csv", v) for v in values])
    out = tmp_path / "out"
    done = download(out, config_file, topic, *extra)
    assert (out / "run.csv").read_bytes() == first  # the verified prefix, nothing forged
    log = done.stdout + done.stderr
    assert ("cannot decrypt" if keyed else "fails its SHA-256") in log
    assert "0 verified file(s)" in log and "; 1 failed" in log  # one verdict for the send
