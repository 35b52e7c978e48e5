"""bench/fleet.py's figures: what arrived (exactly once?), latencies, rates, CPU and memory,
the dashboard's times."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import statistics
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fleet_proc import Child
from fleet_writer import Written

from labstream.kafka import consumer_settings, read_topic
from labstream.receipts import Receipt
from labstream.wire.paths import STATE_DIRNAME

MB = 1_000_000
MiB = 2**20


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
