"""Fleet benchmark: N instruments and G downloaders on one topic of P partitions.

Usage (a broker must answer at --bootstrap, default $LABSTREAM_TEST_BOOTSTRAP or 127.0.0.1:29092):

    python bench/fleet.py [--instruments 5 --seconds 60 --interval 5 --min-size 10KiB
        --max-size 10MiB --partitions 8 --downloaders 2 --settle-seconds 2 --out fleet.json
        --threads --find-max-rate]

Each instrument is a real `labstream watch` process (with --threads: every watcher runs
`run_watch`, the same code, in a thread of one host process) on its own folder with its own
--source. One writer thread plays all the instruments: each writes a file every --interval
seconds (first one at a random phase), sizes log-uniform between --min-size and --max-size,
written in place and then closed (--write-mode rename: written as NAME.tmp, which the
watcher ignores, then renamed). The moment after close (or rename) is the file's "closed" time.
G `labstream download` processes in one group, each with its own output folder and
`--placement by-source`, read the topic, created beforehand with P partitions. A
`labstream dashboard` on the same config reads the fleet's heartbeats and receipts.

Reported: files/s and MB/s offered and delivered end to end (and their ratio), the
close-to-verified latency p50/p95/p99 (the verified receipt's `at` minus the closed time,
receipts matched by source and path; one clock, one machine), CPU (% of one core while the
fleet works, from /proc) and peak RSS (VmHWM) per instrument and per downloader, the
dashboard's page and /api/fleet times with the fleet running, and exactly-once: every
written file in exactly one output folder with the same SHA-256, no extra files, one
verified receipt per file and no failed one. Targets (issue 29): p95 <= settle + 2 s,
every file exactly once, watcher peak RSS <= 60 MiB.

--find-max-rate runs the fleet again with the interval divided by 1.5 each time, until the
p95 latency exceeds settle + 2 s or a file is not delivered exactly once, and reports the
last interval that held.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import logging
import math
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic

from labstream.download.limits import parse_size
from labstream.errors import BrokerUnreachableError
from labstream.kafka import consumer_settings, read_topic
from labstream.receipts import Receipt
from labstream.wire.paths import STATE_DIRNAME

MB = 1_000_000
MiB = 2**20
RSS_TARGET_MIB = 60.0
TICK_SECONDS = os.sysconf("SC_CLK_TCK")
READY = "watching folder="
HOST_STAGGER_SECONDS = 0.5  # --threads: between two watchers' starts


@dataclass(frozen=True)
class Written:
    source: str
    relpath: str
    size: int
    sha256: str
    closed_at: float  # wall clock, as the receipts' `at`


@dataclass
class Child:
    """One process of the fleet and what /proc says about it."""

    name: str
    role: str  # "watch" (or "watch-host" with --threads), "download", "dashboard"
    proc: subprocess.Popen[bytes]
    log: Path
    members: int = 1  # instruments in this process
    cpu_idle: float = 0.0  # CPU seconds when the idle measurement began
    cpu_start: float = 0.0
    cpu_end: float = 0.0
    peak_rss_mib: float = 0.0
    code: int | None = None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def proc_usage(pid: int) -> tuple[float, float]:
    """(CPU seconds, peak RSS MiB) of a live process, from /proc (psutil is not needed)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK_SECONDS  # utime, stime
    peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return cpu, peak


def cli(args: list[object], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "labstream", *map(str, args)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_until(condition: Callable[[], bool], timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


# --- the topic ---------------------------------------------------------------------------------


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """The data topic with P partitions, before any watcher would create it with the default."""
    client = admin(bootstrap)
    brokers = len(client.list_topics(timeout=10).brokers)
    client.create_topics([NewTopic(topic, partitions, min(3, brokers))])[topic].result(30)
    found = client.list_topics(topic, timeout=10).topics[topic]
    if len(found.partitions) != partitions:
        raise SystemExit(f"topic {topic} has {len(found.partitions)} partitions, not {partitions}")


def delete_topics(bootstrap: str, topics: list[str]) -> None:
    """The run's own topics only (their data would fill the shared broker's disk)."""
    client = admin(bootstrap)
    existing = client.list_topics(timeout=10).topics
    gone = [t for t in topics if t in existing]
    for future in client.delete_topics(gone).values() if gone else ():
        future.result(30)


# --- the instruments' writer -------------------------------------------------------------------


class Writer:
    """Plays every instrument: a file every `interval` s each, sizes log-uniform."""

    def __init__(self, folders: dict[str, Path], args: argparse.Namespace, seed: int) -> None:
        self.folders = folders
        self.interval = args.interval
        self.low, self.high = math.log(args.min_size), math.log(args.max_size)
        self.rename = args.write_mode == "rename"
        self.random = random.Random(seed)
        self.block = self.random.randbytes(args.max_size)
        self.written: list[Written] = []
        self.late_seconds = 0.0  # how far the writer fell behind its schedule, at most

    def run(self, seconds: float) -> None:
        start = time.monotonic()
        queue = [(start + self.random.uniform(0, self.interval), s) for s in sorted(self.folders)]
        heapq.heapify(queue)
        counts: Counter[str] = Counter()
        while queue:
            due, source = heapq.heappop(queue)
            if due - start >= seconds:
                continue
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            self.late_seconds = max(self.late_seconds, -pause)
            self.written.append(self.write(source, counts[source]))
            counts[source] += 1
            heapq.heappush(queue, (due + self.interval, source))

    def write(self, source: str, seq: int) -> Written:
        size = int(math.exp(self.random.uniform(self.low, self.high)))
        header = f"{source} {seq} {uuid.uuid4().hex}\n".encode()[:size]
        offset = self.random.randrange(0, len(self.block) - size + 1)
        content = header + self.block[offset : offset + size - len(header)]
        digest = hashlib.sha256(content).hexdigest()  # before: the closed time is the close's
        relpath = f"run/{seq:05d}.bin"
        final = self.folders[source] / relpath
        final.parent.mkdir(exist_ok=True)
        target = final.with_name(final.name + ".tmp") if self.rename else final
        with open(target, "wb") as handle:
            for start in range(0, size, MiB):  # as an instrument writes: in pieces
                handle.write(content[start : start + MiB])
        if self.rename:
            os.replace(target, final)
        return Written(source, relpath, size, digest, time.time())


# --- starting and stopping the fleet -----------------------------------------------------------


@dataclass
class Fleet:
    root: Path
    config: Path
    bootstrap: str
    topic: str
    args: argparse.Namespace
    folders: dict[str, Path] = field(default_factory=dict)
    outs: list[Path] = field(default_factory=list)
    children: list[Child] = field(default_factory=list)
    dashboard_url: str = ""
    args_of: dict[str, list[object]] = field(default_factory=dict)  # a watcher's arguments, by name
    start_retries: int = 0

    @property
    def heartbeats(self) -> str:
        return f"{self.topic}.heartbeats"

    def by_role(self, *roles: str) -> list[Child]:
        return [c for c in self.children if c.role in roles]

    def start(self) -> None:
        """Downloaders and dashboard start with the first watchers, and are waited for after."""
        self._start_downloaders()
        dashboard = self._start_dashboard()
        self._start_instruments()
        self._wait_dashboard(dashboard)
        wait_until(self._downloaders_assigned, 120, "the downloaders to be assigned partitions")

    def _common(self) -> list[object]:
        return ["--config", self.config, "--update-seconds", "-1", "--heartbeat-topic", self.heartbeats]

    def _start_downloaders(self) -> None:
        for g in range(self.args.downloaders):
            out = self.root / f"out-{g}"
            self.outs.append(out)
            log = self.root / f"download-{g}.log"
            args: list[object] = ["download", out, *self._common(), "--topic", self.topic]
            args += ["--group", f"{self.topic}-group", "--placement", "by-source"]
            self.children.append(Child(f"download-{g}", "download", cli(args, log), log))

    def _downloaders_assigned(self) -> bool:
        return all("assigned" in c.text() or c.proc.poll() is not None for c in self.by_role("download"))

    def _start_dashboard(self) -> Child:
        log = self.root / "dashboard.log"
        args: list[object] = ["dashboard", "--config", self.config, "--port", "0"]
        args += ["--state", self.root / "dashboard", "--heartbeat-topic", self.heartbeats]
        args += ["--receipts-topic", f"{self.topic}.receipts"]
        child = Child("dashboard", "dashboard", cli(args, log), log)
        self.children.append(child)
        return child

    def _wait_dashboard(self, child: Child) -> None:
        wait_until(lambda: "dashboard at " in child.text() or child.proc.poll() is not None, 120, "dashboard")
        found = re.search(r"dashboard at (\S+)", child.text())
        if found is None:
            raise SystemExit(f"the dashboard did not start:\n{child.text()}")
        self.dashboard_url = found.group(1).rstrip("/")

    def _instrument_args(self, i: int) -> list[object]:
        source = f"inst{i:03d}"
        folder = self.root / "instruments" / source
        folder.mkdir(parents=True)
        self.folders[source] = folder
        args: list[object] = [folder, "--topic", self.topic, "--source", source]
        args += ["--state", self.root / "state" / source, "--settle-seconds", self.args.settle_seconds]
        self.args_of[f"watch-{source}"] = args
        return args

    def _start_instruments(self) -> None:
        """Watchers start --start-batch at a time, each batch waited for: 50 Python processes
        starting at once on two cores miss their 10 s broker check (measured)."""
        specs = [self._instrument_args(i) for i in range(self.args.instruments)]
        if self.args.threads:
            self._start_host(specs)
            self._wait_instruments(self.by_role("watch-host"), len(specs))
            return
        for first in range(0, len(specs), self.args.start_batch):
            batch = [self._start_watcher(spec) for spec in specs[first : first + self.args.start_batch]]
            self.children += batch
            self._wait_instruments(batch, len(batch))

    def _start_watcher(self, spec: list[object]) -> Child:
        log = self.root / f"watch-{spec[4]}.log"
        return Child(f"watch-{spec[4]}", "watch", cli(["watch", *spec, *self._common()], log), log)

    def _wait_instruments(self, watchers: list[Child], need: int) -> None:
        """A watcher that gave up at start-up (its broker check has 10 s, too short on an
        overloaded machine) is started again, up to 3 times; the restarts are reported."""

        def ready() -> bool:
            for child in watchers:
                if child.proc.poll() is not None:
                    gave_up = "no Kafka broker answered" in child.text() and child.name in self.args_of
                    if not gave_up or self.start_retries >= 3 * len(watchers):
                        raise SystemExit(f"{child.name} exited:\n{child.text()}")
                    self.start_retries += 1
                    child.proc = self._start_watcher(self.args_of[child.name]).proc
            return sum(c.text().count(READY) for c in watchers) >= need

        wait_until(ready, 60 + 5 * need, f"{need} watchers to make their first scan")

    def _start_host(self, specs: list[list[object]]) -> None:
        spec = self.root / "host.json"
        spec.write_text(json.dumps([[*map(str, s), *map(str, self._common())] for s in specs]))
        log = self.root / "watch-host.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, __file__, "--host", str(spec)], stdout=out, stderr=subprocess.STDOUT
            )
        self.children.append(Child("watch-host", "watch-host", proc, log, members=len(specs)))

    def sample(self, attribute: str) -> None:
        """Record every live child's CPU seconds in `attribute`, and its peak RSS so far."""
        for child in self.children:
            if child.proc.poll() is None:
                cpu, peak = proc_usage(child.proc.pid)
                setattr(child, attribute, cpu)
                child.peak_rss_mib = max(child.peak_rss_mib, peak)

    def stop(self) -> None:
        """SIGTERM the watchers first (nothing more is sent), then the downloaders and dashboard."""
        for roles in (("watch", "watch-host"), ("download", "dashboard")):
            group = self.by_role(*roles)
            for child in group:
                if child.proc.poll() is None:
                    child.proc.send_signal(signal.SIGTERM)
            for child in group:
                try:
                    child.code = child.proc.wait(120)
                except subprocess.TimeoutExpired:
                    child.proc.kill()
                    child.code = child.proc.wait()


# --- what arrived ------------------------------------------------------------------------------


def stored(outs: list[Path], item: Written) -> list[Path]:
    return [p for out in outs if (p := out / item.source / item.relpath).exists()]


def arrived(outs: list[Path], item: Written) -> bool:
    return any(p.stat().st_size == item.size for p in stored(outs, item))


def output_files(outs: list[Path]) -> Iterator[tuple[Path, str]]:
    """(output folder, relative path) of every file the downloaders left, state excluded."""
    for out in outs:
        for folder, dirs, files in os.walk(out):
            dirs[:] = [d for d in dirs if d != STATE_DIRNAME]
            for name in files:
                yield out, Path(folder, name).relative_to(out).as_posix()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(MiB):
            digest.update(block)
    return digest.hexdigest()


def receipts(bootstrap: str, topic: str) -> list[Receipt]:
    """Every receipt of the run, read once to the end (no group joined)."""
    settings = consumer_settings(_config(bootstrap), f"{topic}-bench")
    return [Receipt.from_bytes(t.record.value) for t in read_topic(settings, f"{topic}.receipts", timeout=30)]


def _config(bootstrap: str) -> Any:
    from labstream.config import load_config

    return load_config("local", bootstrap=bootstrap)


def exactly_once(outs: list[Path], written: list[Written], got: list[Receipt]) -> dict[str, Any]:
    expected = {f"{w.source}/{w.relpath}": w for w in written}
    places = Counter(rel for _out, rel in output_files(outs))
    corrupt = 0
    for rel, item in expected.items():
        for path in (out / rel for out in outs if (out / rel).exists()):
            corrupt += file_sha256(path) != item.sha256
    verified = Counter(f"{r.source}/{r.path}" for r in got if r.outcome == "verified")
    figures = {
        "written": len(expected),
        "missing": sum(1 for rel in expected if places[rel] == 0),
        "in_two_folders": sum(1 for rel in expected if places[rel] > 1),
        "extra_files": sum(n for rel, n in places.items() if rel not in expected),
        "corrupt": corrupt,
        "verified_receipts": sum(verified.values()),
        "files_without_receipt": sum(1 for rel in expected if verified[rel] == 0),
        "files_verified_twice": sum(1 for rel in expected if verified[rel] > 1),
        "failed_receipts": sum(1 for r in got if r.outcome != "verified"),
    }
    figures["ok"] = all(v == 0 for k, v in figures.items() if k not in ("written", "verified_receipts"))
    return figures


# --- figures -----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def latencies(written: list[Written], got: list[Receipt], sent: dict[str, float]) -> dict[str, Any]:
    """Close -> verified percentiles, and its two halves when the watchers' logs say when each
    file was sent (all its chunks acknowledged): close -> sent (settle, read, hash, produce)
    and sent -> verified (the broker, the group, the downloader)."""
    first: dict[str, float] = {}
    for r in got:
        if r.outcome == "verified":
            key = f"{r.source}/{r.path}"
            first[key] = min(first.get(key, r.at), r.at)
    keyed = {f"{w.source}/{w.relpath}": w.closed_at for w in written}
    values = [first[k] - closed for k, closed in keyed.items() if k in first]
    figures: dict[str, Any] = _percentiles(values)
    if sent:
        figures["close_to_sent"] = _percentiles([sent[k] - c for k, c in keyed.items() if k in sent])
        both = [k for k in keyed if k in sent and k in first]
        figures["sent_to_verified"] = _percentiles([first[k] - sent[k] for k in both])
    return figures


def _percentiles(values: list[float]) -> dict[str, float]:
    figures = {f"p{q}": round(percentile(values, q), 3) for q in (50, 95, 99)}
    return figures | {"max": round(max(values, default=float("nan")), 3)}


_SENT = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) INFO \S+ file sent file=(\S+) ")


def sent_times(watchers: list[Child]) -> dict[str, float]:
    """When each file was sent, from the watchers' own logs (local time, milliseconds)."""
    found: dict[str, float] = {}
    for child in watchers:
        source = child.name.removeprefix("watch-")
        for line in child.text().splitlines():
            if match := _SENT.match(line):
                at = time.mktime(time.strptime(match[1], "%Y-%m-%d %H:%M:%S")) + int(match[2]) / 1000
                found.setdefault(f"{source}/{match[3]}", at)
    return found


def rates(written: list[Written], got: list[Receipt]) -> dict[str, Any]:
    """Offered (closes) and delivered (verified receipts) rates over their own spans."""
    sizes = {f"{w.source}/{w.relpath}": w.size for w in written}
    seen: dict[str, float] = {}
    for r in got:
        key = f"{r.source}/{r.path}"
        if r.outcome == "verified" and key in sizes and key not in seen:
            seen[key] = r.at
    closes = [w.closed_at for w in written]
    offered_span = max(closes) - min(closes) if len(closes) > 1 else float("nan")
    delivered_span = max(seen.values()) - min(seen.values()) if len(seen) > 1 else float("nan")
    offered_bytes, delivered_bytes = sum(sizes.values()), sum(sizes[k] for k in seen)
    out = {
        "offered_files_per_s": len(closes) / offered_span,
        "offered_MB_per_s": offered_bytes / MB / offered_span,
        "delivered_files_per_s": len(seen) / delivered_span,
        "delivered_MB_per_s": delivered_bytes / MB / delivered_span,
    }
    out["delivered_vs_offered_files"] = out["delivered_files_per_s"] / out["offered_files_per_s"]
    out["delivered_vs_offered_MB"] = out["delivered_MB_per_s"] / out["offered_MB_per_s"]
    return {k: round(v, 3) for k, v in out.items()}


def usage(children: list[Child], window: float, megabytes: float, idle: float) -> dict[str, Any]:
    """CPU (% of one core over the window; when idle, over the `idle` s before it) and peak
    RSS, per instrument or downloader, and the role's CPU per MB that went through the fleet
    above its idle cost (what sizing a larger fleet needs)."""
    if not children:
        return {}
    cpu = [(c.cpu_end - c.cpu_start) / window * 100 / c.members for c in children]
    rss = [c.peak_rss_mib / c.members for c in children]
    total = sum(c.cpu_end - c.cpu_start for c in children)
    idle_cpu = [(c.cpu_start - c.cpu_idle) / idle * 100 / c.members for c in children] if idle else [0.0]
    above_idle = total - sum(idle_cpu) / 100 * window * children[0].members
    return {
        "processes": len(children),
        "idle_cpu_pct_median": round(statistics.median(idle_cpu), 2),
        "cpu_seconds_total": round(total, 2),
        "cpu_ms_per_MB": round(total * 1000 / megabytes, 2) if megabytes else None,
        "cpu_ms_per_MB_above_idle": round(above_idle * 1000 / megabytes, 2) if megabytes else None,
        "cpu_pct_median": round(statistics.median(cpu), 2),
        "cpu_pct_max": round(max(cpu), 2),
        "peak_rss_mib_median": round(statistics.median(rss), 1),
        "peak_rss_mib_max": round(max(rss), 1),
        "exit_codes": sorted(Counter(str(c.code) for c in children).items()),
    }


def timed_get(url: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as answer:
        body = answer.read()
    return (time.perf_counter() - started) * 1000, body


def dashboard_times(url: str, requests: int = 10) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for name, path in (("page", "/"), ("api_fleet", "/api/fleet")):
        times = []
        for _ in range(requests):
            ms, body = timed_get(url + path)
            times.append(ms)
        figures[f"{name}_ms_median"] = round(statistics.median(times), 1)
        figures[f"{name}_ms_max"] = round(max(times), 1)
        if name == "api_fleet":  # what the dashboard sees of the fleet
            view = json.loads(body)
            figures["instruments_seen"] = len(view["instruments"])
            figures["consumers_seen"] = len(view["consumers"])
    return figures


# --- one run -----------------------------------------------------------------------------------


def run_fleet(args: argparse.Namespace, interval: float) -> dict[str, Any]:
    args = argparse.Namespace(**{**vars(args), "interval": interval})
    root = Path(tempfile.mkdtemp(prefix="fleet-", dir=args.scratch))
    topic = f"fleet-{uuid.uuid4().hex[:10]}"
    config = root / "fleet.config"
    config.write_text(
        f"[cluster]\nbootstrap.servers = {args.bootstrap}\n\n[consumer]\nauto.offset.reset = earliest\n"
    )
    create_topic(args.bootstrap, topic, args.partitions)
    fleet = Fleet(root, config, args.bootstrap, topic, args)
    try:
        return _measure(fleet, args)
    finally:
        fleet.stop()
        delete_topics(args.bootstrap, [topic, f"{topic}.receipts", fleet.heartbeats])
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}")


def _measure(fleet: Fleet, args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    fleet.start()
    print(
        f"fleet up in {time.monotonic() - started:.0f} s: {args.instruments} instruments, "
        f"{args.downloaders} downloaders, topic {fleet.topic} ({args.partitions} partitions)",
        flush=True,
    )
    writer = Writer(fleet.folders, args, args.seed)
    fleet.sample("cpu_idle")
    time.sleep(args.idle_seconds)  # the fleet running with nothing to send: its fixed cost
    fleet.sample("cpu_start")
    loads = [os.getloadavg()[0]]  # the machine is shared: how busy it was is part of the figure
    window_start = time.monotonic()
    thread = threading.Thread(target=writer.run, args=(args.seconds,), name="fleet-writer")
    thread.start()
    pending: list[Written] = []
    dashboard: dict[str, Any] = {}
    while thread.is_alive():
        thread.join(10)
        fleet.sample("cpu_end")
        loads.append(os.getloadavg()[0])
        if not dashboard and time.monotonic() - window_start > args.seconds * 0.8:
            dashboard = dashboard_times(fleet.dashboard_url)  # the fleet at full work
        done = sum(1 for w in list(writer.written) if arrived(fleet.outs, w))
        print(
            f"  {time.monotonic() - window_start:5.0f} s: written {len(writer.written)}, "
            f"arrived {done}, load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    pending = list(writer.written)
    deadline = time.monotonic() + args.drain_seconds
    while pending and time.monotonic() < deadline:
        pending = [w for w in pending if not arrived(fleet.outs, w)]
        time.sleep(0.5)
    window = time.monotonic() - window_start
    fleet.sample("cpu_end")
    dashboard = dashboard or dashboard_times(fleet.dashboard_url)
    fleet.stop()  # a downloader publishes its last receipts before it exits
    got = receipts(fleet.bootstrap, fleet.topic)
    dashboard["load_average_1min_median"] = round(statistics.median(loads), 1)
    return report(fleet, args, writer, got, window, dashboard)


def report(
    fleet: Fleet,
    args: argparse.Namespace,
    writer: Writer,
    got: list[Receipt],
    window: float,
    dash: dict[str, Any],
) -> dict[str, Any]:
    once = exactly_once(fleet.outs, writer.written, got)
    late = latencies(writer.written, got, sent_times(fleet.by_role("watch")))
    megabytes = sum(w.size for w in writer.written) / MB
    watchers = usage(fleet.by_role("watch", "watch-host"), window, megabytes, args.idle_seconds)
    result = {
        "run": {k: v for k, v in vars(args).items() if k not in ("host",)} | {"interval": args.interval},
        "window_seconds": round(window, 1),
        "writer_late_seconds_max": round(writer.late_seconds, 3),
        "watcher_start_retries": fleet.start_retries,
        "load_average_1min_median": dash.pop("load_average_1min_median", None),
        "throughput": rates(writer.written, got),
        "latency_seconds": late,
        "exactly_once": once,
        "per_instrument": watchers,
        "per_downloader": usage(fleet.by_role("download"), window, megabytes, args.idle_seconds),
        "dashboard": dash | usage(fleet.by_role("dashboard"), window, megabytes, args.idle_seconds),
    }
    target = args.settle_seconds + 2
    result["targets"] = {
        "p95_latency_le_settle_plus_2": late["p95"] <= target,
        "every_file_exactly_once": once["ok"],
        "watcher_peak_rss_le_60_mib": watchers["peak_rss_mib_max"] <= RSS_TARGET_MIB,
    }
    result["targets_met"] = all(result["targets"].values())
    return result


def show(result: dict[str, Any]) -> None:
    run, t, lat, once = result["run"], result["throughput"], result["latency_seconds"], result["exactly_once"]
    inst, dl, dash = result["per_instrument"], result["per_downloader"], result["dashboard"]
    rows = [
        (
            "fleet",
            f"{run['instruments']} instruments x 1 file / {run['interval']:g} s, "
            f"{run['partitions']} partitions, {run['downloaders']} downloaders, {run['seconds']:g} s; "
            f"load average {result['load_average_1min_median']}",
        ),
        ("offered", f"{t['offered_files_per_s']:.2f} files/s, {t['offered_MB_per_s']:.2f} MB/s"),
        (
            "delivered",
            f"{t['delivered_files_per_s']:.2f} files/s ({t['delivered_vs_offered_files']:.2f}x), "
            f"{t['delivered_MB_per_s']:.2f} MB/s ({t['delivered_vs_offered_MB']:.2f}x)",
        ),
        (
            "close->verified",
            f"p50 {lat['p50']:.2f} s, p95 {lat['p95']:.2f} s, p99 {lat['p99']:.2f} s, "
            f"max {lat['max']:.2f} s (target p95 <= {run['settle_seconds'] + 2:g} s)",
        ),
        *(
            (f"  {half.replace('_', ' ')}", f"p50 {lat[half]['p50']:.2f} s, p95 {lat[half]['p95']:.2f} s")
            for half in ("close_to_sent", "sent_to_verified")
            if half in lat
        ),
        (
            "exactly once",
            f"{once['written']} written, {once['missing']} missing, "
            f"{once['in_two_folders'] + once['files_verified_twice']} twice, {once['extra_files']} extra, "
            f"{once['corrupt']} corrupt, {once['failed_receipts']} failed",
        ),
        (
            "per instrument",
            f"CPU {inst['cpu_pct_median']:.1f}% (max {inst['cpu_pct_max']:.1f}%), "
            f"peak RSS {inst['peak_rss_mib_median']:.0f} MiB (max {inst['peak_rss_mib_max']:.0f}); "
            f"idle {inst['idle_cpu_pct_median']:.1f}%; all watchers {inst['cpu_ms_per_MB_above_idle']:.1f} "
            "CPU ms per MB above idle",
        ),
        (
            "per downloader",
            f"CPU {dl['cpu_pct_median']:.1f}% (max {dl['cpu_pct_max']:.1f}%), "
            f"peak RSS {dl['peak_rss_mib_median']:.0f} MiB (max {dl['peak_rss_mib_max']:.0f}); "
            f"idle {dl['idle_cpu_pct_median']:.1f}%; all downloaders {dl['cpu_ms_per_MB_above_idle']:.1f} "
            "CPU ms per MB above idle",
        ),
        (
            "dashboard",
            f"GET / {dash['page_ms_median']:.0f} ms (max {dash['page_ms_max']:.0f}), "
            f"/api/fleet {dash['api_fleet_ms_median']:.0f} ms (max {dash['api_fleet_ms_max']:.0f}), "
            f"RSS {dash['peak_rss_mib_max']:.0f} MiB; sees {dash['instruments_seen']} instruments, "
            f"{dash['consumers_seen']} consumers",
        ),
        ("targets", ", ".join(f"{k}={'ok' if v else 'FAILED'}" for k, v in result["targets"].items())),
    ]
    for name, text in rows:
        print(f"{name:16} {text}")


def find_max_rate(args: argparse.Namespace) -> dict[str, Any]:
    interval, held, runs = args.interval, None, []
    while interval >= args.min_interval:
        print(f"--- interval {interval:.3g} s", flush=True)
        result = run_fleet(args, interval)
        show(result)
        runs.append(result)
        targets = result["targets"]  # memory is reported, but the rate search is about delivery
        if not (targets["p95_latency_le_settle_plus_2"] and targets["every_file_exactly_once"]):
            break
        held = interval
        interval /= 1.5
    return {
        "runs": runs,
        "max_rate": None
        if held is None
        else {
            "interval_seconds": round(held, 3),
            "files_per_s_per_instrument": round(1 / held, 3),
            "fleet_files_per_s": round(args.instruments / held, 2),
        },
    }


# --- --threads: the watchers as threads of one process -----------------------------------------


def host(spec: Path) -> None:
    """Run every watcher of `spec` with `run_watch` in a thread; SIGTERM stops them all."""
    from labstream.cli.watch import watch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threads = [
        threading.Thread(target=_host_one, args=(watch, argv, stop), name=f"watch-{argv[4]}")
        for argv in json.loads(spec.read_text())
    ]
    for thread in threads:  # staggered, as the processes are: start-up is the busy part
        thread.start()
        stop.wait(HOST_STAGGER_SECONDS)
    for thread in threads:
        thread.join()


def _host_one(command: Any, argv: list[str], stop: threading.Event) -> None:
    from labstream.cli.globals import load
    from labstream.runners import run_watch
    from labstream.runners.console import QUIET
    from labstream.settings import watch_settings

    context = command.make_context("watch", list(argv))
    given = dict(context.params)
    directory, config_name = given.pop("directory"), given.pop("config_name")
    settings = watch_settings(load(config_name), {"file_directory": directory, **given})
    for attempt in range(3):  # the 10 s start-up broker check, on an overloaded machine
        try:
            run_watch(settings, stop, console=QUIET)
            return
        except BrokerUnreachableError:
            logging.getLogger("bench.fleet").warning("watcher start retried attempt=%d", attempt + 1)
    run_watch(settings, stop, console=QUIET)


# --- the command -------------------------------------------------------------------------------


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_bootstrap = os.environ.get("LABSTREAM_TEST_BOOTSTRAP", "127.0.0.1:29092")
    parser.add_argument("--instruments", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the instruments write")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between files per instrument")
    parser.add_argument("--min-size", type=parse_size, default=10 * 1024)
    parser.add_argument("--max-size", type=parse_size, default=10 * MiB)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--downloaders", type=int, default=2)
    parser.add_argument("--bootstrap", default=default_bootstrap)
    parser.add_argument("--settle-seconds", type=float, default=2.0)
    parser.add_argument("--write-mode", choices=("inplace", "rename"), default="inplace")
    parser.add_argument("--threads", action="store_true", help="watchers as threads of one process")
    parser.add_argument("--start-batch", type=int, default=5, help="watchers started at a time")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="idle CPU measured first")
    parser.add_argument("--drain-seconds", type=float, default=120.0, help="wait for the last files")
    parser.add_argument("--find-max-rate", action="store_true")
    parser.add_argument("--min-interval", type=float, default=0.2, help="--find-max-rate stops here")
    parser.add_argument("--seed", type=int, default=29)
    parser.add_argument("--scratch", default=None, help="folder for the run's files [system temp]")
    parser.add_argument("--keep", action="store_true", help="keep the run's folders")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here")
    parser.add_argument("--host", type=Path, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # SIGTERM unwinds like Ctrl+C, so the fleet is stopped and the run's topics deleted.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.host is not None:
        host(args.host)
        return 0
    if args.find_max_rate:
        result = find_max_rate(args)
    else:
        result = run_fleet(args, args.interval)
        show(result)
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    ok = result["targets_met"] if not args.find_max_rate else result["max_rate"] is not None
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
