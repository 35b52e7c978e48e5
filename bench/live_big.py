"""Live files, one large file: memory of both sides and the archive's lag behind the source.

Run as `python bench/live.py --big [options]` (or this script). A writer process appends
incompressible blocks to ONE file, kept open, at a steady pace up to `--size` bytes over
`--duration` seconds, while `labstream watch --live` and `labstream download` run as
processes against the broker. Every second it samples the RSS (VmRSS of the process tree)
of both and the sizes of the source and of the archive copy.

Printed: RSS at start / after the first minute / max / at end for each side and its growth
from the first minute to the end ("flat": within a few MiB); the archive's lag behind the
source in bytes and in seconds (per sample, the age of the oldest byte the source holds and
the archive does not yet; p50/p95/max), against the live interval; the SHA-256 of both
files, and the topic's payload / final size. The topic is created without retention limits
(nothing dropped mid-run) and deleted afterwards; the scratch folder with both files goes too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from bisect import bisect_right
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic
from live import _quantile, topic_bytes

from labstream.download.limits import parse_size

MIB = 1 << 20
NAME = "run.bin"
CLOSE_SECONDS = 5.0  # --live-close-seconds: the send closes soon after the writer does


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    args.scratch.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="labstream-bench-live-big-", dir=args.scratch))
    try:
        result = run(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # both big files: the disk is shared
    show(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default="10GiB", help="final size of the file")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of writing")
    parser.add_argument("--block", type=parse_size, default="4MiB", help="bytes per write")
    parser.add_argument("--interval", type=float, default=2.0, help="--live-interval")
    parser.add_argument("--bootstrap", default=os.environ.get("LABSTREAM_TEST_BOOTSTRAP", "127.0.0.1:9092"))
    parser.add_argument(
        "--scratch", type=Path, default=Path.cwd(), help="a run folder is made (and removed) in it"
    )
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


# --- the run ------------------------------------------------------------------------------------


def run(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    root, out = scratch / "instrument", scratch / "out"
    root.mkdir()
    topic = f"bench-live-big-{uuid.uuid4().hex[:8]}"
    config = scratch / "bench.config"
    config.write_text(
        f"[cluster]\nbootstrap.servers = {args.bootstrap}\n[producer]\n[consumer]\n"
        "auto.offset.reset = earliest\n"
    )
    create_topic(args.bootstrap, topic)
    try:
        measured = _measure(args, scratch, root / NAME, out / NAME, config, topic)
        payload, total, sends = topic_bytes(config, topic)
    finally:
        delete_topics(args.bootstrap, [topic, f"{topic}.receipts"])
    final = measured["final_bytes"]
    measured.update(payload_ratio=payload / final, message_ratio=total / final, sends=sends)
    return measured


def _measure(
    args: argparse.Namespace, scratch: Path, source: Path, copy: Path, config: Path, topic: str
) -> dict[str, Any]:
    env = {**os.environ, "XDG_STATE_HOME": str(scratch / "xdg")}  # nothing outside the scratch
    common = ["--config", str(config), "--topic", topic, "--update-seconds", "-1"]
    live = ["--live", NAME, "--live-interval", str(args.interval)]
    live += ["--live-close-seconds", str(CLOSE_SECONDS), "--settle-seconds", "1"]
    watch_args = ["watch", str(source.parent), *common, "--state", str(scratch / "state"), *live]
    watch = _labstream(watch_args, scratch / "watch.log", env)
    download = _labstream(["download", str(copy.parent), *common], scratch / "download.log", env)
    try:
        time.sleep(4.0)  # both connected and the group joined
        writes = scratch / "writes.log"
        writer = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--write",
                *map(str, (source, args.size, args.duration, args.block, writes)),
            ],
            stdin=subprocess.DEVNULL,
        )
        samples = _sample(writer, source, copy, args.size, {"watcher": watch.pid, "downloader": download.pid})
        if writer.wait() != 0:
            raise SystemExit(f"the writer failed: exit {writer.returncode}")
        closed = _wait_for(lambda: "live file closed" in _text(scratch / "download.log"), 120.0)
    finally:
        for proc in (watch, download):
            proc.terminate()
            proc.wait(60)
    if not closed:
        raise SystemExit(f"the live send was not closed; logs in {scratch}")
    return _figures(args, samples, _read_writes(writes), source, copy)


def _labstream(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "wb") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "labstream", *args],
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=handle,
            env=env,
        )


def _sample(
    writer: subprocess.Popen[bytes], source: Path, copy: Path, size: int, pids: dict[str, int]
) -> list[dict[str, float]]:
    """One sample a second until the writer is done and the archive holds the whole file."""
    samples: list[dict[str, float]] = []
    deadline = None
    while True:
        now = time.monotonic()
        sample = {"at": now, "source": _size(source), "archive": _size(copy)}
        sample.update({name: tree_rss(pid) for name, pid in pids.items()})
        samples.append(sample)
        if writer.poll() is not None and sample["archive"] >= size:
            return samples
        if writer.poll() is not None:
            deadline = deadline or now + 300.0
            if now > deadline:
                raise SystemExit(
                    f"the archive holds {sample['archive']} of {size} bytes, 300 s after the writer"
                )
        time.sleep(max(0.0, now + 1.0 - time.monotonic()))


def _wait_for(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


# --- the figures --------------------------------------------------------------------------------


def _figures(
    args: argparse.Namespace,
    samples: list[dict[str, float]],
    writes: list[tuple[float, int]],
    source: Path,
    copy: Path,
) -> dict[str, Any]:
    start, last = writes[0][0], writes[-1][0]
    during = [s for s in samples if s["at"] >= start]
    warm_at = start + min(60.0, args.duration / 5)  # "after the first minute" (scaled runs: 1/5)
    lag_s = [_lag_seconds(s, writes) for s in during]
    lag_b = [s["source"] - s["archive"] for s in during]
    source_sha, copy_sha = file_sha256(source), file_sha256(copy)
    return {
        "size": args.size,
        "duration_s": args.duration,
        "written_in_s": round(last - start, 1),
        "interval_s": args.interval,
        "block": args.block,
        "samples": len(during),
        "warm_at_s": round(warm_at - start, 1),
        "rss_mib": {name: _rss(during, name, warm_at) for name in ("watcher", "downloader")},
        "lag_bytes": _spread(lag_b),
        "lag_s": _spread(lag_s),
        "lag_over_interval": {k: v / args.interval for k, v in _spread(lag_s).items()},
        # share of the samples where the archive held what the source had this long ago
        "lag_within": {
            "interval": _share(lag_s, args.interval),
            "interval_plus_1s": _share(lag_s, args.interval + 1.0),
        },
        "catch_up_s": round(during[-1]["at"] - last, 1),
        "final_bytes": source.stat().st_size,
        "archive_bytes": copy.stat().st_size,
        "sha256_source": source_sha,
        "sha256_archive": copy_sha,
        "identical": source_sha == copy_sha and source.stat().st_size == args.size,
        # per sample: seconds since the writer started, source and archive bytes, RSS MiB
        "series": [
            [round(s["at"] - start, 2), s["source"], s["archive"], s["watcher"], s["downloader"]]
            for s in during
        ],
    }


def _lag_seconds(sample: dict[str, float], writes: list[tuple[float, int]]) -> float:
    """Age of the oldest byte the source held at the sample and the archive did not: how long
    ago the source still had the archive's size (0: the archive holds all of it)."""
    if sample["archive"] >= sample["source"]:
        return 0.0
    sizes = [size for _, size in writes]
    grew = bisect_right(sizes, sample["archive"])  # the first write past the archive's size
    return max(0.0, sample["at"] - writes[min(grew, len(writes) - 1)][0])


def _rss(samples: list[dict[str, float]], name: str, warm_at: float) -> dict[str, float]:
    warm = next((s[name] for s in samples if s["at"] >= warm_at), samples[-1][name])
    first, end = samples[0][name], samples[-1][name]
    peak = max(s[name] for s in samples)
    return {"start": first, "first_minute": warm, "max": peak, "end": end, "growth": end - warm}


def _share(values: list[float], limit: float) -> float:
    return sum(1 for v in values if v <= limit) / len(values)


def _spread(values: list[float]) -> dict[str, float]:
    return {"p50": statistics.median(values), "p95": _quantile(values, 0.95), "max": max(values)}


def show(r: dict[str, Any]) -> None:
    interval = r["interval_s"]
    print(
        f"{r['size'] / MIB:.0f} MiB in {r['block'] / MIB:g} MiB blocks over {r['duration_s']:g} s "
        f"(written in {r['written_in_s']} s), live interval {interval:g} s, {r['samples']} samples"
    )
    warm = f"at {r['warm_at_s']} s"
    print(f"{'RSS MiB':<11} {'start':>7} {warm:>9} {'max':>7} {'end':>7} {'growth':>7}")
    for name, m in r["rss_mib"].items():
        print(
            f"{name:<11} {m['start']:>7.1f} {m['first_minute']:>9.1f} {m['max']:>7.1f} {m['end']:>7.1f} "
            f"{m['growth']:>+7.1f}"
        )
    lb, ls, li = r["lag_bytes"], r["lag_s"], r["lag_over_interval"]
    print(
        f"archive lag: {lb['p50'] / MIB:.1f} / {lb['p95'] / MIB:.1f} / {lb['max'] / MIB:.1f} MiB "
        f"(p50 / p95 / max); {ls['p50']:.2f} / {ls['p95']:.2f} / {ls['max']:.2f} s = "
        f"{li['p50']:.2f} / {li['p95']:.2f} / {li['max']:.2f} x the interval; "
        f"caught up {r['catch_up_s']} s after the last write"
    )
    within = r["lag_within"]
    print(
        f"samples with lag <= the interval: {within['interval']:.1%}, "
        f"<= the interval + 1 s: {within['interval_plus_1s']:.1%}"
    )
    same = "identical" if r["identical"] else "DIFFERENT"
    print(
        f"files {same}: {r['final_bytes']} bytes, sha256 {r['sha256_source'][:16]}… / "
        f"{r['sha256_archive'][:16]}…; topic payload / final {r['payload_ratio']:.4f}, "
        f"messages / final {r['message_ratio']:.4f}, sends {r['sends']}"
    )


# --- helpers ------------------------------------------------------------------------------------


def tree_rss(pid: int) -> float:
    """VmRSS of `pid` and its descendants, MiB (0 once gone)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total / 1024


def create_topic(bootstrap: str, topic: str) -> None:
    """One partition, no retention limit: the broker drops nothing mid-run."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    brokers = len(admin.list_topics(timeout=10).brokers)
    limits = {"retention.ms": "-1", "retention.bytes": "-1"}
    admin.create_topics([NewTopic(topic, 1, min(3, brokers), config=limits)])[topic].result(30)


def delete_topics(bootstrap: str, topics: list[str]) -> None:
    """The run's own topics (a 10 GiB topic would fill the shared broker's disk)."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    gone = [t for t in topics if t in admin.list_topics(timeout=10).topics]
    for future in admin.delete_topics(gone).values() if gone else ():
        future.result(30)


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


# --- the writer (its own process) ---------------------------------------------------------------


def write(path: Path, size: int, duration: float, block: int, log: Path) -> None:
    """Append `size` bytes to `path` in `block`s at a steady pace over `duration` s, the file
    kept open; one line `monotonic_time size` in `log` at the start and after each block."""
    blocks = max(1, -(-size // block))
    rng = random.Random(27)
    start = time.monotonic()
    with open(path, "wb", buffering=0) as handle, open(log, "w", buffering=1) as record:
        record.write(f"{start:.6f} 0\n")
        for i in range(blocks):
            time.sleep(max(0.0, start + (i + 1) * duration / blocks - time.monotonic()))
            data = rng.randbytes(min(block, size - i * block))  # incompressible
            view = memoryview(data)
            while view:
                view = view[handle.write(view) :]
            record.write(f"{time.monotonic():.6f} {min(size, (i + 1) * block)}\n")


def _read_writes(log: Path) -> list[tuple[float, int]]:
    return [(float(at), int(size)) for at, size in (line.split() for line in log.read_text().splitlines())]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"]:
        path, size, duration, block, log = sys.argv[2:7]
        write(Path(path), int(size), float(duration), int(block), Path(log))
    else:
        main()
