"""A real Prometheus server (Debian's package, scripts/setup.sh installs it) scrapes a real
watcher, downloader and dashboard, with the shipped alert rules loaded."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any, TypeVar

from .test_dashboard import Dashboard, free_port
from .watchproc import Watcher, start_download, wait_for

RULES = Path(str(files("labstream.metrics") / "alerts.yml"))
T = TypeVar("T")
DEADLINE = 30.0  # seconds for anything Prometheus should see: it scrapes every second


class Prometheus:
    """`prometheus` on a free loopback port, its data in a temporary folder."""

    def __init__(self, folder: Path, targets: dict[str, int]) -> None:
        binary = shutil.which("prometheus")
        assert binary, (
            "prometheus not found: `bash scripts/setup.sh` installs it (apt-get install prometheus)"
        )
        folder.mkdir()
        config = folder / "prometheus.yml"
        jobs = [
            {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
            for job, port in targets.items()
        ]
        settings = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        config.write_text(  # JSON is YAML
            json.dumps({"global": settings, "rule_files": [str(RULES)], "scrape_configs": jobs})
        )
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = folder / "prometheus.log"
        self._out = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
            ],
            stdout=self._out,
            stderr=self._out,
        )
        wait_for(lambda: self._ready() or self.proc.poll() is not None, timeout=DEADLINE)
        assert self.proc.poll() is None, self.log.read_text(errors="replace")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as answer:
            body = json.load(answer)
        assert body["status"] == "success", body
        return body["data"]

    def value(self, promql: str) -> float | None:
        """The single value of an instant query; None while it answers nothing."""
        result = self.api("query", query=promql)["result"]
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self._out.close()


@contextmanager
def running(process: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(60)


def test_prometheus_scrapes_watcher_downloader_dashboard_and_loads_the_rules(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    heartbeats = f"{topic}.heartbeats"
    beat = ["--heartbeat-seconds", "1", "--heartbeat-topic", heartbeats]
    ports = {"watch": free_port(), "download": free_port(), "dashboard": free_port()}
    root, out = tmp_path / "instrument", tmp_path / "out"
    root.mkdir()
    with ExitStack() as stack:
        dashboard = Dashboard(config_file, tmp_path / "dash", heartbeats, topic, ports["dashboard"])
        stack.callback(dashboard.stop)
        watcher = Watcher(
            root, config_file, topic, tmp_path / "state", *beat, "--metrics-port", str(ports["watch"])
        )
        stack.callback(lambda: watcher.stop() if watcher.proc.poll() is None else None)
        metrics = ["--metrics-port", str(ports["download"])]
        downloader = start_download(
            out, config_file, topic, tmp_path / "download.log", "-g", "archive", *beat, *metrics
        )
        stack.enter_context(running(downloader))
        prometheus = Prometheus(tmp_path / "prometheus", ports)
        stack.callback(prometheus.stop)

        for i in range(2):
            (root / f"sample-{i}.dat").write_bytes(os.urandom(30_000 + i))
        wait_for(lambda: (out / "sample-1.dat").exists() and (out / "sample-0.dat").exists())

        # The query for verified files answers: the downloader's own count and the receipts
        # the dashboard saw; and all three targets are up.
        up, everyone = 'sum by (job) (up{job=~"watch|download|dashboard"})', dict.fromkeys(ports, 1.0)
        assert latest(lambda: _by_job(prometheus.api("query", query=up)), lambda v: v == everyone) == everyone
        verified = 'labstream_files_verified_total{job="download"}'
        assert latest(lambda: prometheus.value(verified), lambda v: v == 2) == 2
        receipts = 'sum(labstream_receipts_total{job="dashboard",group="archive",outcome="verified"})'
        assert latest(lambda: prometheus.value(receipts), lambda v: v == 2) == 2
        sent = 'labstream_files_sent_total{job="watch"}'
        assert latest(lambda: prometheus.value(sent), lambda v: v == 2) == 2
        # The dashboard's per-instance label arrives renamed, as the rules file says.
        fleet = prometheus.api("series", **{"match[]": "labstream_instance_up"})
        assert {s["role"] for s in fleet} == {"watch", "download"}
        assert all("exported_instance" in s for s in fleet), fleet

        # The shipped rules load and evaluate without error.
        rules = _rules(prometheus)
        assert sorted(rules) == [
            "BacklogGrowing",
            "ConsumerFallingBehind",
            "ConsumerStale",
            "InstrumentStale",
            "VerificationFailures",
        ]
        health = latest(lambda: {n: r["health"] for n, r in _rules(prometheus).items()}, _all_ok)
        assert _all_ok(health), health
        # Every series a rule selects exists here, and carries the labels its annotations name.
        assert latest(lambda: _unmatched(prometheus, rules.values()), lambda v: not v) == []
        # A healthy pipeline: nothing firing, nothing pending.
        assert prometheus.api("alerts")["alerts"] == []


def latest(read: Callable[[], T], ok: Callable[[T], bool]) -> T:
    """Poll `read` until `ok(value)` or DEADLINE seconds pass; the last value, to assert on."""
    deadline = time.monotonic() + DEADLINE
    while not ok(value := read()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return value


def _by_job(data: Any) -> dict[str, float]:
    return {r["metric"]["job"]: float(r["value"][1]) for r in data["result"]}


def _all_ok(health: dict[str, str]) -> bool:
    return set(health.values()) == {"ok"}


def _rules(prometheus: Prometheus) -> dict[str, dict[str, Any]]:
    groups = prometheus.api("rules")["groups"]
    assert [g["name"] for g in groups] == ["labstream"], groups
    return {r["name"]: r for r in groups[0]["rules"]}


def _unmatched(prometheus: Prometheus, rules: Any) -> list[str]:
    """Selectors in the rules' queries that match no series (or lack an annotation's label;
    the leftmost selector gives an alert its labels)."""
    missing = []
    for rule in rules:
        selectors = re.findall(r"labstream_\w+(?:\{[^}]*\})?", rule["query"])
        needed = set(re.findall(r"\$labels\.(\w+)", json.dumps(rule["annotations"])))
        for index, selector in enumerate(selectors):
            series = prometheus.api("series", **{"match[]": selector})
            if not series:
                missing.append(f"{rule['name']}: {selector} matches nothing")
            elif index == 0 and any(not needed <= set(s) for s in series):
                missing.append(f"{rule['name']}: {selector} lacks one of {sorted(needed)}: {series}")
    return missing
