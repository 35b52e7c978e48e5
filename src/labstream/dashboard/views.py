"""What the page and the API show, computed from the store: fleet, file search, throughput."""

from __future__ import annotations

import time
from typing import Any

from labstream.dashboard.store import Store

__all__ = ["STALE_BEATS", "fleet", "instance_state", "search", "throughput"]

STALE_BEATS = 3  # missed beats before a running process is shown stale
MAX_RESULTS = 50
_INSTRUMENT_FIELDS = [
    "instance",
    "host",
    "pid",
    "version",
    "folder",
    "topic",
    "trust",
    "queued_files",
    "queued_bytes",
    "in_flight",
    "rate",
    "sent",
    "failed",
    "bytes",
    "last_file",
    "last_file_at",
    "last_error",
    "last_verified",
    "last_verified_at",
    "last_verified_by",
    "downstream_failed",
]
_CONSUMER_FIELDS = [
    "instance",
    "role",
    "host",
    "pid",
    "version",
    "topic",
    "grp",
    "trust",
    "verified",
    "failed",
    "bytes",
    "rate",
    "last_error",
]


def instance_state(row: dict[str, Any], now: float) -> tuple[str, float]:
    """("alive" | "stale" | "stopped", seconds since the last beat).

    The last beat counts from when it arrived, or from when it says it was sent if that is
    earlier (a beat replayed after a dashboard restart must not look fresh); a sender's
    clock ahead of ours never makes it look fresher than its arrival.
    """
    seen = min(float(row["received"]), float(row["at"]))
    age = max(0.0, now - seen)
    if row["state"] == "stopped":
        return "stopped", age
    return ("stale" if age > STALE_BEATS * float(row["interval"]) else "alive"), age


def fleet(store: Store, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    rows = store.read("SELECT * FROM instances ORDER BY role, host, instance")
    lags = {(r["grp"], r["topic"]): r for r in store.read("SELECT * FROM lag")}
    groups = {(r["grp"], r["topic"]): r for r in store.read("SELECT * FROM groups")}
    instruments, consumers = [], []
    for row in rows:
        state, age = instance_state(row, now)
        if row["role"] == "watch":
            instruments.append({**{k: row[k] for k in _INSTRUMENT_FIELDS}, "state": state, "age": age})
            continue
        key = (row["grp"], row["topic"])
        lag, group = lags.get(key, {}), groups.get(key, {})
        consumers.append(
            {
                **{k: row[k] for k in _CONSUMER_FIELDS},
                "state": state,
                "age": age,
                "lag_messages": lag.get("messages"),
                "lag_files": lag.get("files"),
                "last_file": group.get("last_file", ""),
                "last_reason": group.get("last_reason", ""),
            }
        )
    return {
        "now": now,
        "instruments": instruments,
        "consumers": consumers,
        "groups": sorted(groups.values(), key=lambda g: (g["topic"], g["grp"])),
        "failures": store.read(
            "SELECT at, topic, path, source, reason FROM failures ORDER BY id DESC LIMIT 20"
        ),
        "rejected": {r["name"]: r["value"] for r in store.read("SELECT * FROM counters")},
    }


def search(store: Store, query: str) -> list[dict[str, Any]]:
    """Files whose path contains `query`: where sent from, when, and every group's verdict."""
    query = query.strip()[:4096]
    if not query:
        return []
    versions: list[dict[str, Any]] = []
    for path in store.find_paths(query, MAX_RESULTS):
        versions += store.read(
            "SELECT topic, path, sha256 FROM files WHERE path = ? "
            "UNION SELECT topic, path, sha256 FROM receipts WHERE path = ?",
            (path, path),
        )
    versions = versions[:MAX_RESULTS]
    results = []
    for v in versions:
        key = (v["topic"], v["path"], v["sha256"])
        sent = store.read(
            "SELECT instance, host, size, outcome, reason, at FROM files "
            "WHERE topic = ? AND path = ? AND sha256 = ?",
            key,
        )
        verdicts = store.read(
            "SELECT grp, host, outcome, reason, at, size FROM receipts "
            "WHERE topic = ? AND path = ? AND sha256 = ? ORDER BY grp",
            key,
        )
        results.append({**v, "sent": sent[0] if sent else None, "receipts": verdicts})
    results.sort(key=_latest, reverse=True)
    return results


def _latest(result: dict[str, Any]) -> float:
    times = [float(x["at"]) for x in result["receipts"]]
    if result["sent"]:
        times.append(float(result["sent"]["at"]))
    return max(times, default=0.0)


def throughput(store: Store, now: float | None = None, minutes: int = 60) -> dict[str, list[float]]:
    """Per minute of the last hour: bytes sent, verified and failed (uPlot's column layout)."""
    now = time.time() if now is None else now
    last = int(now // 60)
    first = last - minutes + 1
    rows = store.read("SELECT minute, kind, bytes FROM minutes WHERE minute >= ?", (first,))
    series: dict[str, list[float]] = {
        "t": [float(m * 60) for m in range(first, last + 1)],
        "sent": [0.0] * minutes,
        "verified": [0.0] * minutes,
        "failed": [0.0] * minutes,
    }
    for row in rows:
        if row["kind"] in series and first <= row["minute"] <= last:
            series[row["kind"]][row["minute"] - first] += float(row["bytes"])
    return series
