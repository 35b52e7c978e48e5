"""Memory of one `labstream watch` process: RSS and PSS idle after start, and after a load.

Usage (a broker must answer at --bootstrap, default $LABSTREAM_BOOTSTRAP or 127.0.0.1:29092):

    python bench/memory_watch.py [--small 200 --small-size 4KiB --large 3 --large-size 4MiB
        --idle-seconds 10 --out memory.json]

One real `labstream watch` process on its own folder and topic (deleted afterwards), as
bench/fleet.py starts each instrument. Measured from /proc: VmRSS and VmHWM (status), and
PSS (smaps_rollup: shared pages such as libc and the Python binary counted once per sharer,
which is what N watchers on one machine really cost each) plus the thread count:

- idle: --idle-seconds after the watcher made its first scan (heartbeats and the receipts
  consumer running, nothing to send);
- loaded: after --small files of --small-size and --large files of --large-size, written
  aside and moved into the folder at once, were all sent (the watcher's "file sent" lines),
  then --idle-seconds of quiet. How long that send took (settle included) is reported too.

The target of issue 29 is 60 MiB RSS per watcher, peak included (bench/fleet.py reports
VmHWM); the exit status is 1 when a run's peak is above it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from labstream.download.limits import parse_size

KiB = 1024
RSS_TARGET_MIB = 60.0
READY = "watching folder="
SENT = " file sent file="


def memory(pid: int) -> dict[str, float]:
    """VmRSS, VmHWM and PSS in MiB, and the thread count, of a live process."""
    figures: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            figures[f"{name.lower()}_mib"] = round(int(value.split()[0]) / KiB, 1)
        elif name == "Threads":
            figures["threads"] = int(value)
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            figures["pss_mib"] = round(int(line.split()[1]) / KiB, 1)
    return figures


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.2)


def write_files(folder: Path, count: int, size: int, prefix: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"{prefix}-{i:05d}.bin").write_bytes(random.randbytes(size))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="memwatch-"))
    topic = f"memwatch-{uuid.uuid4().hex[:10]}"
    config = root / "watch.config"
    producer = "".join(f"{line}\n" for line in args.producer)
    config.write_text(f"[cluster]\nbootstrap.servers = {args.bootstrap}\n\n[producer]\n{producer}")
    folder, log = root / "data", root / "watch.log"
    folder.mkdir()
    command = [sys.executable, "-m", "labstream", "watch", str(folder), "--config", str(config)]
    command += ["--topic", topic, "--state", str(root / "state"), "--update-seconds", "-1"]
    command += ["--settle-seconds", str(args.settle_seconds), *args.extra]
    with open(log, "ab") as out:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    text = lambda: log.read_text(errors="replace")  # noqa: E731
    try:
        started = time.monotonic()
        wait_until(lambda: READY in text() or proc.poll() is not None, 120, "the first scan")
        if proc.poll() is not None:
            raise SystemExit(f"the watcher exited:\n{text()}")
        ready_seconds = time.monotonic() - started
        time.sleep(args.idle_seconds)
        idle = memory(proc.pid)
        staging = root / "staging"  # written aside, then moved in at once: the send is timed
        write_files(staging / "small", args.small, args.small_size, "s")
        write_files(staging / "large", args.large, args.large_size, "l")
        total = args.small + args.large
        moved = time.monotonic()
        for part in ("small", "large"):
            (staging / part).rename(folder / part)
        wait_until(lambda: text().count(SENT) >= total, 600, f"{total} files to be sent")
        send_seconds = time.monotonic() - moved
        time.sleep(args.idle_seconds)
        loaded = memory(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        _delete_topics(args.bootstrap, [topic, f"{topic}.receipts"])
        shutil.rmtree(root, ignore_errors=True)
    return {
        "command": " ".join(command[1:]),
        "ready_seconds": round(ready_seconds, 1),
        "idle": idle,
        "loaded": loaded,
        "load": f"{args.small} x {args.small_size} B + {args.large} x {args.large_size} B",
        "send_seconds": round(send_seconds, 2),  # moved in -> all sent, settle included
        "send_MB_per_s": round(
            (args.small * args.small_size + args.large * args.large_size) / 1e6 / send_seconds, 1
        ),
        "peak_rss_le_60_mib": loaded["vmhwm_mib"] <= RSS_TARGET_MIB,
    }


def _delete_topics(bootstrap: str, topics: list[str]) -> None:
    client = AdminClient({"bootstrap.servers": bootstrap})
    existing = client.list_topics(timeout=10).topics
    for future in client.delete_topics([t for t in topics if t in existing] or []).values():
        future.result(30)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_bootstrap = os.environ.get("LABSTREAM_BOOTSTRAP", "127.0.0.1:29092")
    parser.add_argument("--bootstrap", default=default_bootstrap)
    parser.add_argument("--small", type=int, default=200, help="small files sent")
    parser.add_argument("--small-size", type=parse_size, default=4 * KiB)
    parser.add_argument("--large", type=int, default=3, help="large files sent")
    parser.add_argument("--large-size", type=parse_size, default=4 * KiB * KiB)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--settle-seconds", type=float, default=1.0)
    parser.add_argument(
        "--producer", action="append", default=[], metavar="KEY=VALUE", help="[producer] line"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs; every one is reported")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here")
    parser.add_argument("extra", nargs="*", help="more `labstream watch` arguments (after --)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    runs = [measure(args) for _ in range(args.repeat)]
    for run in runs:
        idle, loaded = run["idle"], run["loaded"]
        print(
            f"ready in {run['ready_seconds']:.1f} s; idle: RSS {idle['vmrss_mib']:.1f} MiB, "
            f"PSS {idle['pss_mib']:.1f}, {idle['threads']} threads; after {run['load']}: "
            f"RSS {loaded['vmrss_mib']:.1f} MiB, PSS {loaded['pss_mib']:.1f}, peak (VmHWM) "
            f"{loaded['vmhwm_mib']:.1f}, {loaded['threads']} threads; sent in {run['send_seconds']:.1f} s "
            f"({run['send_MB_per_s']:.1f} MB/s, settle {args.settle_seconds:g} s included)"
        )
    text = json.dumps(runs, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if all(r["peak_rss_le_60_mib"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
