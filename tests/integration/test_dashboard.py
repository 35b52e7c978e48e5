"""The fleet dashboard in a real headless Chromium, fed by a real watcher and downloader.

Chromium is Debian's (`apt-get install chromium`, scripts/setup.sh does it), driven by
Playwright for Python; Playwright's own browser download is never used.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright
from prometheus_client.parser import text_string_to_metric_families

from labstream.heartbeat import Heartbeat
from labstream.wire import Chunk, encode

from .conftest import labstream
from .test_bad_input import produce_raw
from .watchproc import Watcher, start_download, wait_for

CHROMIUM = "/usr/bin/chromium"
DOCS = Path(__file__).parents[2] / "docs"
SCREENSHOT = DOCS / "dashboard.png"
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {
        s.name + str(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


class Dashboard:
    def __init__(
        self, config: Path, state: Path, heartbeats: str, topic: str, metrics_port: int, *extra: object
    ) -> None:
        self.log = state.parent / "dashboard.log"
        self._out = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        args = ["dashboard", "-c", config, "--port", "0", "--state", state, "--heartbeat-topic", heartbeats]
        args += ["--receipts-topic", f"{topic}.receipts", "--metrics-port", str(metrics_port), *extra]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "labstream", *map(str, args)], stdout=self._out, stderr=self._out
        )
        wait_for(lambda: "dashboard at " in self.text() or self.proc.poll() is not None)
        assert self.proc.poll() is None, self.text()
        found = re.search(r"dashboard at (\S+)", self.text())
        assert found is not None
        self.url = found.group(1)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(60)
        self._out.close()
        return code


def corrupt_chunks(name: str) -> list[tuple[bytes, bytes]]:
    """A 3-chunk file whose middle chunk fails its checksum (as in test_bad_input)."""
    content = os.urandom(3000)
    sha = hashlib.sha256(content).digest()
    values = [
        encode(Chunk(name, 3000, sha, i, 3, 1024, content[i * 1024 : (i + 1) * 1024])) for i in range(3)
    ]
    corrupted = bytearray(values[1])
    corrupted[-10] ^= 0x55
    values[1] = bytes(corrupted)
    return [(name.encode(), v) for v in values]


def forged_stopped(instance: str) -> bytes:
    """An unsigned "stopped" beat naming `instance`: what anyone who may write the topic can send."""
    return Heartbeat(
        instance,
        "watch",
        "pc-forged",
        1,
        "0.0.0",
        time.time(),
        time.time(),
        1.0,
        "stopped",
        run="x",
        seq=10**6,
    ).to_bytes()


def test_dashboard_live_in_a_real_browser(
    tmp_path: Path, config_file: Path, topic: str, browser: Browser
) -> None:
    heartbeats = f"{topic}.heartbeats"
    beat = ["--heartbeat-seconds", "1", "--heartbeat-topic", heartbeats]
    root, out, wrong_out = tmp_path / "instrument", tmp_path / "out", tmp_path / "wrong"
    root.mkdir()
    key, wrong_key = tmp_path / "lab.key", tmp_path / "old.key"
    labstream("keygen", key)
    labstream("keygen", wrong_key)
    labstream("keygen", "--receipts", tmp_path / "instrument-a")  # the instrument's own signing key
    watch_metrics, fleet_metrics = free_port(), free_port()
    dashboard = Dashboard(
        config_file,
        tmp_path / "dash",
        heartbeats,
        topic,
        fleet_metrics,
        "--receipts-trusted-keys",
        tmp_path / "instrument-a.pub",
    )
    watcher = Watcher(
        root,
        config_file,
        topic,
        tmp_path / "state",
        *beat,
        "--metrics-port",
        str(watch_metrics),
        "--encryption-key-file",
        key,
        "--source",
        "xrd-a",  # the default wire (v2): a failure's receipt names the send and this source
        "--heartbeat-signing-key",
        tmp_path / "instrument-a",
    )
    downloader = start_download(
        out,
        config_file,
        topic,
        tmp_path / "download.log",
        "-g",
        "archive",
        "--encryption-key-file",
        key,
        *beat,
    )
    # A second group whose key is not the lab's: every file fails there, for a readable reason.
    wrong_group = start_download(
        wrong_out,
        config_file,
        topic,
        tmp_path / "wrong.log",
        "-g",
        "old-key",
        "--encryption-key-file",
        wrong_key,
        *beat,
    )
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(dashboard.url)
        rows = page.locator("#instruments tbody tr")
        expect(rows).to_have_count(1, timeout=TIMEOUT_MS)
        expect(rows.first).to_have_attribute("data-state", "alive", timeout=TIMEOUT_MS)
        expect(rows.first.locator(".trust-signed")).to_have_text("signed", timeout=TIMEOUT_MS)
        expect(page.locator("#consumers tbody tr").first).to_contain_text("archive", timeout=TIMEOUT_MS)

        # Files arrive, are sent and verified downstream: the page follows without a reload.
        for i in range(3):
            (root / f"run1/sample-{i}.dat").parent.mkdir(exist_ok=True)
            (root / f"run1/sample-{i}.dat").write_bytes(os.urandom(20_000 + i))
        wait_for(lambda: (out / "run1/sample-2.dat").exists())
        expect(rows.first.locator(".last-verified")).to_contain_text("run1/sample-", timeout=TIMEOUT_MS)
        expect(rows.first.locator(".last-verified")).to_contain_text("by archive", timeout=TIMEOUT_MS)
        expect(rows.first.locator(".last-sent")).to_contain_text("run1/sample-", timeout=TIMEOUT_MS)
        expect(rows.first).to_contain_text("xrd-a")  # the instrument by its source name

        # The summary first: counts from the receipts, in files.
        cards = page.locator("#summary-cards .card")
        expect(cards.nth(0)).to_contain_text("1 alive · 0 stale · 0 stopped", timeout=TIMEOUT_MS)
        expect(cards.nth(1)).to_contain_text("3 files", timeout=TIMEOUT_MS)
        expect(cards.nth(2)).to_contain_text("3 files", timeout=TIMEOUT_MS)
        expect(cards.nth(2)).to_contain_text("cannot decrypt: wrong key (3 files)")
        expect(page.locator("#attention")).to_contain_text("3 failed file(s) in 24 h")

        # The wrong-key group's failure, readable, on the instrument's own row.
        expect(rows.first.locator(".downstream-reason")).to_contain_text(
            "cannot decrypt: wrong key (old-key", timeout=TIMEOUT_MS
        )
        expect(rows.first.locator(".failures")).to_contain_text("3 failed downstream")
        wrong_row = page.locator("#consumers tbody tr", has_text="old-key")
        expect(wrong_row.locator(".failed-files")).to_have_text("3", timeout=TIMEOUT_MS)
        expect(wrong_row).to_contain_text("cannot decrypt: wrong key")
        expect(wrong_row).not_to_contain_text("partition=")
        page.screenshot(path=str(tmp_path / "summary.png"))

        # Where is my file?
        page.fill("#query", "sample-1")
        page.click("#search button")
        expect(page.locator("#results")).to_contain_text("verified by archive", timeout=TIMEOUT_MS)
        expect(page.locator("#results")).to_contain_text("run1/sample-1.dat")
        page.fill("#query", "sample\x00")
        page.click("#search button")
        expect(page.locator("#results")).to_contain_text("no file matches", timeout=TIMEOUT_MS)

        # A corrupt, unencrypted file: refused where a key is configured, its reason shows, live.
        produce_raw(config_file, topic, corrupt_chunks("bad.bin"))
        failures = page.locator("#failures tbody")
        expect(failures).to_contain_text("bad.bin", timeout=TIMEOUT_MS)
        expect(failures).to_contain_text(
            "refused: not encrypted, but a key is configured", timeout=TIMEOUT_MS
        )
        consumer = page.locator("#consumers tbody tr", has_text="archive")
        expect(consumer).to_contain_text("not encrypted")
        # Lag from the admin API: everything consumed, so 0 messages behind.
        expect(consumer.locator(".lag-messages")).to_have_text("0 msg", timeout=TIMEOUT_MS)

        # A forged "stopped" beat naming the signed watcher is not applied; the row says so.
        instance = rows.first.get_attribute("data-instance")
        assert instance
        produce_raw(config_file, heartbeats, [(instance.encode(), forged_stopped(instance))])
        expect(rows.first.locator(".alert")).to_have_text("1 forged beat refused", timeout=TIMEOUT_MS)
        expect(rows.first.locator(".refused")).to_contain_text("unsigned beat")
        expect(rows.first).to_have_attribute("data-state", "alive")
        expect(rows.first.locator(".trust-signed")).to_have_text("signed")
        page.locator("#instruments").scroll_into_view_if_needed()
        page.screenshot(path=str(tmp_path / "failure.png"))

        # Metrics, parsed with prometheus_client's own text parser.
        watched = scrape(watch_metrics)
        assert watched["labstream_files_sent_total[]"] == 3
        assert watched["labstream_chunk_delivery_seconds_count[]"] >= 3
        wait_for(lambda: _up(scrape(fleet_metrics)) == {"watch": 1.0, "download": 1.0})
        fleet = scrape(fleet_metrics)
        assert (
            fleet[
                "labstream_receipts_total[('group', 'archive'), ('outcome', 'failed'), ('topic', '"
                + topic
                + "')]"
            ]
            == 1
        )

        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        if os.environ.get("LABSTREAM_UPDATE_SCREENSHOT"):  # the README's pictures, on request only
            shutil.copyfile(tmp_path / "dashboard.png", SCREENSHOT)
            shutil.copyfile(tmp_path / "summary.png", DOCS / "dashboard-summary.png")
            shutil.copyfile(tmp_path / "failure.png", DOCS / "dashboard-failure.png")

        # A watcher killed with SIGKILL sends no "stopped" beat: it turns stale.
        watcher.proc.kill()
        watcher.wait(30)
        expect(rows.first).to_have_attribute("data-state", "stale", timeout=TIMEOUT_MS)
        expect(rows.first.locator(".state-stale")).to_have_text("stale")
        expect(cards.nth(0)).to_contain_text("0 alive · 1 stale · 0 stopped", timeout=TIMEOUT_MS)
        wait_for(lambda: _up(scrape(fleet_metrics)).get("watch") == 0.0)

        # A downloader stopped cleanly says so.
        downloader.send_signal(signal.SIGTERM)
        downloader.wait(60)
        expect(page.locator("#consumers tbody tr", has_text="archive")).to_have_attribute(
            "data-state", "stopped", timeout=TIMEOUT_MS
        )
    finally:
        for process in (downloader, wrong_group):
            if process.poll() is None:
                process.kill()
                process.wait(30)
        # Stopped while the page still holds its live stream open: must still exit promptly.
        code = dashboard.stop()
        page.close()
    assert code == 0, dashboard.text()


def _up(samples: dict[str, float]) -> dict[str, float]:
    return {
        re.search(r"\('role', '(\w+)'\)", key).group(1): value  # type: ignore[union-attr]
        for key, value in samples.items()
        if key.startswith("labstream_instance_up[")
    }
