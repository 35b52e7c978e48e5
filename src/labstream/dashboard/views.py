"""What the page and the API show, computed from the store: summary, fleet, file search,
throughput. Times are the events' own (a receipt's, a watcher's), counts are in files."""

from __future__ import annotations

import enum
import time
from typing import Any

from labstream.dashboard.reasons import readable
from labstream.dashboard.store import DROPPED, VERIFIED_FILES, Store
from labstream.heartbeat import BeatState

__all__ = ["STALE_BEATS", "Liveness", "fleet", "instance_state", "search", "summary", "throughput"]

STALE_BEATS = 3  # missed beats before a running process is shown stale
MAX_RESULTS = 50
_INSTRUMENT_FIELDS = [
    "instance",
    "source",
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
    "downstream_by",
    "downstream_at",
    "refused",
    "refused_at",
]
_CONSUMER_FIELDS = [
    "instance",
    "role",
    "host",
    "pid",
    "folder",  # its output or work folder: members of one group on one host told apart
    "version",
    "topic",
    "grp",
    "trust",
    "verified",
    "failed",
    "bytes",
    "rate",
    "refused",
    "refused_at",
]


class Liveness(str, enum.Enum):
    """What the page says of a process from its beats; the value is what the API's JSON holds."""

    ALIVE = "alive"
    STALE = "stale"  # running, but no beat for STALE_BEATS intervals
    STOPPED = "stopped"  # its last beat said so

    def __str__(self) -> str:
        return self.value


def instance_state(row: dict[str, Any], now: float) -> tuple[Liveness, float]:
    """(ALIVE | STALE | STOPPED, seconds since the last beat).

    The last beat counts from when it arrived, or from when it says it was sent if that is
    earlier (a beat replayed after a dashboard restart must not look fresh); a sender's
    clock ahead of ours never makes it look fresher than its arrival.
    """
    seen = min(float(row["received"]), float(row["at"]))
    age = max(0.0, now - seen)
    if row["state"] == BeatState.STOPPED:
        return Liveness.STOPPED, age
    return (Liveness.STALE if age > STALE_BEATS * float(row["interval"]) else Liveness.ALIVE), age


def fleet(store: Store, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    rows = store.read("SELECT * FROM instances ORDER BY role, host, instance")
    lags = {(r["grp"], r["topic"]): r for r in store.read("SELECT * FROM lag")}
    groups = {(r["grp"], r["topic"]): r for r in store.read("SELECT * FROM groups")}
    instruments, consumers = [], []
    for row in rows:
        state, age = instance_state(row, now)
        alert = {"refused_reason": readable(row["refused_reason"] or "")}
        if row["role"] == "watch":
            instruments.append(
                {
                    **{k: row[k] for k in _INSTRUMENT_FIELDS},
                    **alert,
                    "state": state,
                    "age": age,
                    "last_error": readable(row["last_error"] or ""),
                    "downstream_reason": readable(row["downstream_reason"] or ""),
                }
            )
            continue
        key = (row["grp"], row["topic"])
        lag, group = lags.get(key, {}), groups.get(key, {})
        consumers.append(
            {
                **{k: row[k] for k in _CONSUMER_FIELDS},
                **alert,
                "state": state,
                "age": age,
                "failed": group.get("failed", 0),  # files, from receipts (beats count chunks)
                "lag_messages": lag.get("messages"),
                "lag_files": lag.get("files"),
                "last_file": group.get("last_file", ""),
                "last_reason": readable(group.get("last_reason") or row["last_error"] or ""),
            }
        )
    view = {
        "now": now,
        "instruments": instruments,
        "consumers": consumers,
        "groups": sorted(groups.values(), key=lambda g: (g["topic"], g["grp"])),
        "failures": [
            {**f, "reason": readable(f["reason"]), "detail": f["reason"]}
            for f in store.read(
                "SELECT at, topic, path, source, reason FROM failures ORDER BY id DESC LIMIT 20"
            )
        ],
        "rejected": {r["name"]: r["value"] for r in store.read("SELECT * FROM counters")},
        "live": store.read(
            "SELECT topic, source, path, grp, size, at FROM live ORDER BY received DESC LIMIT 100"
        ),
    }
    view["summary"] = summary(store, view)
    return view


DAY = 86400.0
BACKLOG_DAYS = 7.0
TOP_REASONS = 3


def summary(store: Store, view: dict[str, Any]) -> dict[str, Any]:
    """The page's first lines, from a `fleet` view: is all well, and if not, what needs a
    person (`attention`: stale processes, failed files, refused beats, dropped instances)."""
    now = float(view["now"])
    since, until = now - DAY, now + 300.0  # a receipt dated in the future is not "last 24 h"
    states = dict.fromkeys(Liveness, 0)
    for item in view["instruments"]:
        states[item["state"]] += 1
    verified = store.read(
        "SELECT COALESCE(SUM(files), 0) AS files, COALESCE(SUM(bytes), 0) AS bytes FROM minutes "
        "WHERE kind = ? AND minute >= ? AND minute <= ?",
        (VERIFIED_FILES, int(since // 60), int(until // 60)),
    )[0]
    failed = store.read(
        "SELECT reason, COUNT(*) AS n FROM verdicts WHERE failed_at > 0 AND failed_at > ? AND failed_at < ? "
        "GROUP BY reason "
        "UNION ALL "
        "SELECT reason, COUNT(*) AS n FROM files WHERE outcome = 'failed' AND at > ? GROUP BY reason",
        (since, until, since),
    )
    reasons: dict[str, int] = {}
    for row in failed:
        phrase = readable(row["reason"] or "") or "no reason given"
        reasons[phrase] = reasons.get(phrase, 0) + int(row["n"])
    failed_files = sum(reasons.values())
    top = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_REASONS]
    oldest = store.read(
        "SELECT topic, path, at FROM files WHERE outcome = 'sent' AND receipted = 0 AND at > ? "
        "ORDER BY at LIMIT 1",
        (now - BACKLOG_DAYS * DAY,),
    )
    behind = [
        {"grp": r["grp"], "topic": r["topic"], "files": r["files"], "messages": r["messages"]}
        for r in store.read("SELECT * FROM lag WHERE files > 0 ORDER BY files DESC LIMIT 5")
    ]
    stale_consumers = sum(1 for c in view["consumers"] if c["state"] == Liveness.STALE)
    refused = sum(int(i["refused"] or 0) for i in view["instruments"] + view["consumers"])
    attention = []
    if states[Liveness.STALE] or stale_consumers:
        attention.append(f"{states[Liveness.STALE] + stale_consumers} stale (no heartbeat)")
    if failed_files:
        attention.append(f"{failed_files} failed file(s) in 24 h")
    if refused:
        attention.append(f"{refused} forged or replayed heartbeat(s) refused")
    return {
        "instruments": states,
        "stale_consumers": stale_consumers,
        "verified_files": verified["files"],
        "verified_bytes": verified["bytes"],
        "failed_files": failed_files,
        "top_reasons": [{"reason": reason, "files": n} for reason, n in top],
        "queued_files": sum(
            int(i["queued_files"] or 0) for i in view["instruments"] if i["state"] == Liveness.ALIVE
        ),
        "oldest_unverified": oldest[0] if oldest else None,
        "behind": behind,
        "dropped_instances": int(view["rejected"].get(DROPPED, 0)),
        "attention": attention,
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
