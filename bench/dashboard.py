"""Dashboard benchmark: 100 instruments beating every 10 s, 1,000,000 receipts, page times and RSS.

The store is fed directly, through the same `Store.add_heartbeats` / `add_receipts` the reader
threads call for each consumed batch (the broker is left out: this measures the dashboard,
not Kafka). Every instrument lists the files it sent in its beats, so each receipt links to
a sender, as in a real fleet. Then the real app is served by uvicorn on a free port and
asked over HTTP while 100 simulated instruments keep beating every 10 s.

    PYTHONPATH=src python bench/dashboard.py [--receipts 1000000] [--instruments 100]
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import socket
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import uvicorn

from labstream.dashboard.app import create_app
from labstream.dashboard.store import Store
from labstream.heartbeat import Heartbeat, RecentFile, Status
from labstream.receipts import Receipt

BATCH = 500
GROUPS = ("archive", "s3-raw")


def heartbeat(i: int, now: float, recent: tuple[RecentFile, ...] = (), sent: int = 0) -> Heartbeat:
    status = Status(folder=f"D:/instrument-{i}/data", topic=f"lab-{i % 10}", sent=sent, recent=recent)
    return Heartbeat(
        f"watch@pc{i}:D:/data", "watch", f"pc{i}", 1000 + i, "0.1.0", now - 3600, now, 10.0, "running", status
    )


def feed(store: Store, instruments: int, receipts: int) -> float:
    """Files sent by the instruments (in beats) and their receipts, one group per file."""
    started = time.monotonic()
    per_beat = 100
    done = 0
    while done < receipts:
        now = time.time()
        beats, batch = [], []
        for i in range(instruments):
            files = []
            for _ in range(per_beat):
                if done >= receipts:
                    break
                path = f"run{done // 10_000}/sample-{done}.tif"
                sha = hashlib.sha256(path.encode()).hexdigest()
                files.append(RecentFile(path, sha, 1_000_000 + done % 1000, "sent", now))
                outcome = "failed" if done % 997 == 0 else "verified"
                reason = "chunk 2/3 fails its checksum" if outcome == "failed" else ""
                batch.append(
                    (
                        f"lab-{i % 10}",
                        Receipt(path, sha, 1_000_000, outcome, GROUPS[done % 2], "srv", reason, now),
                    )
                )
                done += 1
            beats.append(heartbeat(i, now, tuple(files), sent=done))
        store.add_heartbeats(beats)
        for start in range(0, len(batch), BATCH):
            store.add_receipts(batch[start : start + BATCH])
        if done and done % 100_000 < per_beat * instruments:
            print(f"  fed {done:,} receipts, {time.monotonic() - started:.0f} s", flush=True)
    return time.monotonic() - started


def beating(store: Store, instruments: int, stop: threading.Event) -> None:
    """100 instruments every 10 s: one beat every 0.1 s."""
    i = 0
    while not stop.wait(10.0 / instruments):
        store.add_heartbeats([heartbeat(i % instruments, time.time())])
        i += 1


def timed_get(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as answer:
        answer.read()
    return (time.perf_counter() - started) * 1000


def first_event(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as answer:
        for line in answer:
            if line.startswith(b"data: "):
                return (time.perf_counter() - started) * 1000
    return float("nan")


def rss_mib() -> tuple[float, float]:
    current = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            current = int(line.split()[1]) / 1024
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receipts", type=int, default=1_000_000)
    parser.add_argument("--instruments", type=int, default=100)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "dashboard.sqlite") as store:
        print(f"feeding {args.receipts:,} receipts from {args.instruments} instruments ...", flush=True)
        seconds = feed(store, args.instruments, args.receipts)
        size = (Path(tmp) / "dashboard.sqlite").stat().st_size / 2**20
        print(f"fed in {seconds:.0f} s ({args.receipts / seconds:,.0f} receipts/s); database {size:.0f} MiB")
        stop = threading.Event()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        config = uvicorn.Config(create_app(store, stop=stop), log_config=None, access_log=False)
        server = uvicorn.Server(config)
        threads = [
            threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="bench-uvicorn"),
            threading.Thread(target=beating, args=(store, args.instruments, stop), name="bench-beats"),
        ]
        for thread in threads:
            thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        probe = f"sample-{args.receipts // 2}.tif"
        print(f"{'request':34} {'median ms':>10} {'max ms':>10}")
        for name, url in (
            ("GET / (page)", f"{base}/"),
            ("GET /api/fleet", f"{base}/api/fleet"),
            ("GET /api/throughput", f"{base}/api/throughput"),
            (f"GET /api/search?q={probe}", f"{base}/api/search?q={probe}"),
            ("GET /api/search?q=no-such-file", f"{base}/api/search?q=no-such-file"),
        ):
            times = [timed_get(url) for _ in range(args.requests)]
            print(f"{name:34} {statistics.median(times):10.1f} {max(times):10.1f}")
        times = [first_event(f"{base}/events") for _ in range(5)]
        print(f"{'GET /events (first live view)':34} {statistics.median(times):10.1f} {max(times):10.1f}")
        current, peak = rss_mib()
        print(f"RSS now {current:.0f} MiB, peak {peak:.0f} MiB (whole process: feeder, store, server)")
        stop.set()
        server.should_exit = True
        for thread in threads:
            thread.join()


if __name__ == "__main__":
    main()
