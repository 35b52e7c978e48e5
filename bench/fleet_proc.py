"""bench/fleet.py's processes: starting a `labstream` command, what /proc says of it, the topic."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

TICK_SECONDS = os.sysconf("SC_CLK_TCK")


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
