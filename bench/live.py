"""Live files: bytes in the topic and append-to-verified latency, against the settle-and-send
reference run in the same script on the same broker.

Usage (a broker must run: `labstream broker start`, or give --bootstrap):

    python bench/live.py [--appends 20 --every 2 --line-bytes 200 --interval 2 --bootstrap HOST:PORT]

For each mode a real `labstream watch` and `labstream download` run as processes; a writer
appends one line every `--every` seconds to a CSV (open, append, close), `--appends` times.

- reference: `watch` without `--live` (settle 1 s): each settled version is sent whole, so the
  topic grows with the square of the file;
- live: `watch --live "*.csv" --live-interval INTERVAL`.

Printed per mode: the messages' payload bytes for the file in the topic as a multiple of its
final size (and with headers), the versions (sends) in the topic, and the latency from each
append to the moment the archive copy held it, verified (p50, p95, max), sampled every 50 ms.

Big mode (issue 27: "a 10 GiB file written over 10 minutes: memory flat, the archive within
one interval of the source"):

    python bench/live.py --big [--size 10GiB --duration 600 --block 4MiB --interval 2
                                --scratch DIR --json FILE]

A writer process appends incompressible blocks to ONE file kept open, at a steady pace, up to
SIZE over DURATION seconds; `labstream watch --live` and `labstream download` run as
processes. Every second: the RSS (VmRSS, process tree) of both, the source and archive sizes.
Printed: RSS at start / after the first minute / max / at end and its growth from the first
minute to the end; the archive's lag behind the source in bytes and in seconds (the age of
the oldest byte the source has and the archive not yet; p50/p95/max, and against the
interval); the SHA-256 of both files and the topic's payload / final size. The topic is
created without retention limits and deleted afterwards, as are both files.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from labstream.config import load_config
from labstream.kafka import Consumer, consumer_settings
from labstream.wire import decode

SETTLE = ("--settle-seconds", "1")


def main() -> None:
    if "--big" in sys.argv[1:]:
        from live_big import main as big  # the big mode has its own options

        big([a for a in sys.argv[1:] if a != "--big"])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", action="store_true", help="one large file: see bench/live_big.py --help")
    parser.add_argument("--appends", type=int, default=20)
    parser.add_argument("--every", type=float, default=2.0, help="seconds between appends")
    parser.add_argument("--line-bytes", type=int, default=200)
    parser.add_argument("--interval", type=float, default=2.0, help="--live-interval")
    parser.add_argument("--bootstrap", default=os.environ.get("LABSTREAM_TEST_BOOTSTRAP", "127.0.0.1:9092"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="labstream-bench-live-") as scratch:
        config = Path(scratch) / "bench.config"
        config.write_text(
            f"[cluster]\nbootstrap.servers = {args.bootstrap}\n[producer]\n[consumer]\n"
            "auto.offset.reset = earliest\n"
        )
        for mode in ("reference", "live"):
            results[mode] = run_mode(mode, Path(scratch) / mode, config, args)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def run_mode(mode: str, folder: Path, config: Path, args: argparse.Namespace) -> dict[str, float]:
    root, out, state = folder / "instrument", folder / "out", folder / "state"
    root.mkdir(parents=True)
    topic = f"bench-live-{uuid.uuid4().hex[:8]}"
    live = ["--live", "*.csv", "--live-interval", str(args.interval), "--live-close-seconds", "30"]
    extra = live if mode == "live" else []
    common = ["--config", str(config), "--topic", topic, "--update-seconds", "-1"]
    log = open(folder / "processes.log", "wb")  # noqa: SIM115 - closed below
    watch = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "labstream",
            "watch",
            str(root),
            *common,
            "--state",
            str(state),
            *SETTLE,
            *extra,
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    download = subprocess.Popen(
        [sys.executable, "-m", "labstream", "download", str(out), *common],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    try:
        time.sleep(4.0)  # both connected and the group joined
        source, copy = root / "run.csv", out / "run.csv"
        appended: list[tuple[float, int]] = []
        seen: list[tuple[float, int]] = []
        done = threading.Event()
        sampler = threading.Thread(target=_sample, args=(copy, seen, done), name="bench-sampler")
        sampler.start()
        for i in range(args.appends):
            line = (f"{time.time():.6f},{i}," + "x" * args.line_bytes)[: args.line_bytes] + "\n"
            with open(source, "a") as handle:
                handle.write(line)
            appended.append((time.monotonic(), source.stat().st_size))
            time.sleep(args.every)
        final = source.stat().st_size
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (copy.exists() and copy.stat().st_size == final):
            time.sleep(0.1)
        time.sleep(3.0)  # the last versions of the reference arrive too
        done.set()
        sampler.join()
        assert copy.read_bytes() == source.read_bytes(), f"{mode}: the archive copy differs"
    finally:
        for proc in (watch, download):
            proc.terminate()
            proc.wait(60)
        log.close()
    payload, total, sends = topic_bytes(config, topic)
    latencies = [_latency(at, size, seen) for at, size in appended]
    latencies = [x for x in latencies if x is not None]
    return {
        "final_bytes": final,
        "payload_ratio": payload / final,
        "message_ratio": total / final,
        "sends": sends,
        "latency_p50": statistics.median(latencies),
        "latency_p95": _quantile(latencies, 0.95),
        "latency_max": max(latencies),
    }


def _sample(copy: Path, seen: list[tuple[float, int]], done: threading.Event) -> None:
    while not done.wait(0.05):
        try:
            size = copy.stat().st_size
        except FileNotFoundError:
            continue
        if not seen or seen[-1][1] != size:
            seen.append((time.monotonic(), size))


def _latency(at: float, size: int, seen: list[tuple[float, int]]) -> float | None:
    """Seconds from an append (the file reached `size`) to the archive copy holding it."""
    for when, held in seen:
        if held >= size and when >= at - 0.05:
            return max(0.0, when - at)
    return None


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def topic_bytes(config: Path, topic: str) -> tuple[int, int, int]:
    """(payload bytes, message bytes, distinct sends) of the topic."""
    payload = total = 0
    sends: set[bytes] = set()
    settings = consumer_settings(load_config(str(config)), f"bench-count-{time.monotonic_ns()}")
    with Consumer(settings, [topic]) as consumer:
        last = time.monotonic()
        while time.monotonic() - last < 3.0:
            records = consumer.consume(500, 0.5)
            if records:
                last = time.monotonic()
            for record in records:
                chunk = decode(record.value)
                payload += len(chunk.data)
                total += len(record.value) + len(record.key or b"")
                sends.add(chunk.file_id or chunk.file_digest)
    return payload, total, len(sends)


def print_table(results: dict[str, dict[str, float]]) -> None:
    print(
        f"{'mode':<10} {'final':>8} {'payload/final':>14} {'messages/final':>15} {'sends':>6} "
        f"{'p50 s':>7} {'p95 s':>7} {'max s':>7}"
    )
    for mode, r in results.items():
        print(
            f"{mode:<10} {r['final_bytes']:>8.0f} {r['payload_ratio']:>14.2f} {r['message_ratio']:>15.2f} "
            f"{r['sends']:>6.0f} {r['latency_p50']:>7.2f} {r['latency_p95']:>7.2f} {r['latency_max']:>7.2f}"
        )
    ref, live = results["reference"], results["live"]
    print(
        f"live / reference: topic bytes {live['message_ratio'] / ref['message_ratio']:.3f}, "
        f"p95 latency {live['latency_p95'] / max(ref['latency_p95'], 1e-9):.2f}"
    )


if __name__ == "__main__":
    main()
