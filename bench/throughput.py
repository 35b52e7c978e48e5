"""Throughput of labstream upload/download against raw confluent-kafka on the same broker.

Usage (the broker must run: `labstream broker start`):

    python bench/throughput.py [--small-files 2000 --small-size 65536 --large-files 1
                                --large-size 268435456 --medium-size 10485760 --repeat 3
                                --chunk-size 524288 --json out.json --datasets large]

Every phase runs in its own subprocess so that its peak RSS is its own. Each round runs
every phase once, raw references and labstream side by side on the same broker; the
figures are the median of `--repeat` rounds (peak RSS: the largest). Printed as MB/s and
as ratios against the raw producer/consumer measured in the same run, with the same
message size and the same guarantees (acks=all, idempotent producer). The raw end-to-end
reference is the raw producer feeding the raw consumer that writes files (no fsync),
timed like labstream's: first byte produced -> last byte written. openmsistream runs once
per dataset (it is slow: minutes on small files).

The raw clients skip work labstream must do. Two more references add it, the simplest way
(same thread, in series): a raw producer that also SHA-256s each file, and a raw writer that
SHA-256s each file and fsyncs it when complete. Their ratios show labstream's own overhead
apart from the cost of its guarantees. A last one has no Kafka at all: the files copied
and fsync'd (their writing to disk started every 8 MiB, as the downloader does), the pace
this disk allows any durable writer. Every phase starts after an `os.sync()`, so dirty
pages left by earlier phases and the broker do not compete with its writes. Each command
runs with its default threads (upload 2 files at a time, download 1 consumer) unless
--threads is given.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

MB = 1_000_000


def make_dataset(root: Path, count: int, size: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    block = os.urandom(min(size, 1 << 20))
    for i in range(count):
        with open(root / f"f{i:05d}.bin", "wb") as handle:
            left = size
            while left > 0:
                handle.write(block[: min(left, len(block))])
                left -= len(block)
            handle.write(i.to_bytes(4, "big"))  # every file distinct
    return root


def settings(kind: str) -> dict[str, object]:
    from labstream.config import load_config
    from labstream.kafka import consumer_settings, producer_settings

    config = load_config("local")
    if kind == "producer":
        return producer_settings(config)
    return consumer_settings(config, f"bench-{uuid.uuid4().hex[:8]}")


def phase_raw_produce(args: argparse.Namespace) -> dict[str, float]:
    import confluent_kafka

    conf = {k: v for k, v in settings("producer").items() if k != "logger"}
    producer = confluent_kafka.Producer(conf)
    files = sorted(Path(args.data).iterdir())
    started = time.monotonic()
    total = 0
    for path in files:
        # With --sha256: what any sender that proves its bytes adds.
        digest = hashlib.sha256() if args.sha256 else None
        with open(path, "rb") as handle:
            while block := handle.read(args.chunk_size):
                total += len(block)
                if digest is not None:
                    digest.update(block)
                while True:
                    try:
                        producer.produce(args.topic, block, key=path.name.encode())
                        break
                    except BufferError:
                        producer.poll(0.05)
                producer.poll(0)
    producer.flush()
    return {"seconds": time.monotonic() - started, "bytes": total}


def phase_raw_consume(args: argparse.Namespace) -> dict[str, float]:
    import confluent_kafka

    conf = {k: v for k, v in settings("consumer").items() if k != "logger"}
    started = time.monotonic()  # both consumers are timed from creation, group join included
    consumer = confluent_kafka.Consumer(conf)
    consumer.subscribe([args.topic])
    total, count = 0, 0
    while count < args.messages:
        # Same draining as labstream's consumer: what is queued now, else wait for one.
        batch = consumer.consume(500, 0) or consumer.consume(1, 1.0)
        for message in batch:
            if message.error():
                continue
            total += len(message.value())
            count += 1
    seconds = time.monotonic() - started
    consumer.close()
    return {"seconds": seconds, "bytes": total}


def phase_raw_consume_files(args: argparse.Namespace) -> dict[str, float]:
    """The raw consumer writing each file (by key) to disk, fsyncing each complete file
    with --fsync: the reference for a downloader that makes files durable."""
    import confluent_kafka

    sizes = {p.name: p.stat().st_size for p in Path(args.data).iterdir()}
    out = Path(tempfile.mkdtemp(prefix="bench-raw-out-", dir=args.scratch))
    conf = {k: v for k, v in settings("consumer").items() if k != "logger"}
    started = time.monotonic()
    consumer = confluent_kafka.Consumer(conf)
    consumer.subscribe([args.topic])
    written: dict[str, int] = {}
    digests: dict[str, Any] = {}
    total, count = 0, 0
    while count < args.messages:
        batch = consumer.consume(500, 0) or consumer.consume(1, 1.0)
        for message in batch:
            if message.error():
                continue
            name = message.key().decode()
            with open(out / name, "ab") as handle:
                handle.write(message.value())
                if args.sha256:  # what any reader that checks the sender's hash adds
                    digests.setdefault(name, hashlib.sha256()).update(message.value())
                written[name] = written.get(name, 0) + len(message.value())
                if args.fsync and written[name] == sizes[name]:
                    handle.flush()
                    os.fsync(handle.fileno())
            total += len(message.value())
            count += 1
    seconds = time.monotonic() - started
    finished_at = time.time()
    consumer.close()
    shutil.rmtree(out)  # a 2 GiB file per phase would fill the disk otherwise
    return {"seconds": seconds, "bytes": total, "finished_at": finished_at}


def _threads(args: argparse.Namespace, key: str) -> int:
    """--threads, else what the command uses by default (upload 2 files at a time, download
    one consumer per process)."""
    from labstream.settings.table import default_of

    return int(args.threads or default_of(key))


def phase_disk_write(args: argparse.Namespace) -> dict[str, float]:
    """No Kafka: copy the data set's files (read from the page cache) to new files, each
    fsync'd when complete. What this disk allows any durable writer of these bytes."""
    from labstream.download.durability import WRITEBACK_BYTES, start_writeback

    out = Path(tempfile.mkdtemp(prefix="bench-disk-", dir=args.scratch))
    started = time.monotonic()
    total = 0
    for path in sorted(Path(args.data).iterdir()):
        with open(path, "rb") as source, open(out / path.name, "wb") as target:
            written = sent_back = 0  # this file's bytes written; of those, handed to writeback
            while block := source.read(args.chunk_size):
                target.write(block)
                written += len(block)
                if written - sent_back >= WRITEBACK_BYTES:
                    target.flush()
                    start_writeback(target.fileno(), sent_back, written - sent_back)
                    sent_back = written
            total += written
            target.flush()
            os.fsync(target.fileno())
    seconds = time.monotonic() - started
    shutil.rmtree(out)
    return {"seconds": seconds, "bytes": total}


def _rchar() -> int:
    """Bytes this process passed through read() calls (Linux /proc/self/io)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def phase_upload(args: argparse.Namespace) -> dict[str, float]:
    from labstream.kafka import Producer
    from labstream.upload import Uploader, collect
    from labstream.wire import wire_format

    # Options given only when asked for, so the same script measures labstream before issue 16.
    options: dict[str, object] = {"chunk_size": args.chunk_size, "threads": _threads(args, "n_threads")}
    if args.wire != "default":
        options["wire"] = wire_format(args.wire)
    if args.max_rate:
        from labstream.upload import parse_rate

        options["max_rate"] = parse_rate(args.max_rate)
    files = list(collect([args.data]))
    read_before = _rchar()
    with Producer(settings("producer")) as producer:
        report = Uploader(producer, args.topic, **options).upload(files)  # type: ignore[arg-type]
    assert not report.failed, report.failed
    read = _rchar() - read_before
    return {
        "seconds": report.seconds,
        "bytes": report.bytes,
        "messages": report.chunks,
        "read_per_byte": read / max(report.bytes, 1),
    }


def phase_download(args: argparse.Namespace) -> dict[str, float]:
    from labstream.download import Downloader
    from labstream.download.options import DownloadOptions
    from labstream.outcomes import Verdict

    stop = threading.Event()
    done = {"files": 0}
    lock = threading.Lock()

    def on_verdict(verdict: Verdict) -> None:
        # Counted at commit (verified, durable, renamed into place), once per file: a file
        # read again after a rebalance is not counted twice.
        with lock:
            done["files"] += verdict.verified
            if done["files"] == args.files:
                stop.set()

    out = Path(tempfile.mkdtemp(prefix="bench-out-", dir=args.scratch))
    threads = _threads(args, "consumer_threads")
    report = Downloader(
        settings("consumer"),
        args.topic,
        out,
        DownloadOptions(consumer_threads=threads),
        stop=stop,
        on_verdict=on_verdict,
    ).run()
    assert report.files == args.files and report.failed == 0, report
    shutil.rmtree(out)
    # Timed from consumer creation to the last file verified, like the raw consumer.
    return {"seconds": report.seconds, "bytes": report.bytes, "finished_at": time.time()}


PHASES = {
    "raw-produce": phase_raw_produce,
    "raw-consume": phase_raw_consume,
    "raw-consume-files": phase_raw_consume_files,
    "disk-write": phase_disk_write,
    "upload": phase_upload,
    "download": phase_download,
}


def start_phase(name: str, **options: object) -> subprocess.Popen[str]:
    """Start one phase in a fresh interpreter (so its peak RSS is its own); an option
    whose value is "" is a flag."""
    # Each phase starts on a quiet disk: what earlier phases (and the broker) left in the
    # page cache is written first, so it does not compete with this phase's writes.
    os.sync()
    command = [sys.executable, __file__, "--phase", name]
    for key, value in options.items():
        command += [f"--{key.replace('_', '-')}"] + ([str(value)] if value != "" else [])
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_phase(name: str, proc: subprocess.Popen[str]) -> dict[str, float]:
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{stderr[-3000:]}")
    return json.loads(stdout.strip().splitlines()[-1])


def run_phase(name: str, **options: object) -> dict[str, float]:
    return finish_phase(name, start_phase(name, **options))


def end_to_end(
    data: Path,
    files: int,
    common: dict[str, object],
    label: str,
    *,
    raw: bool = False,
    same_work: bool = False,
) -> dict[str, float]:
    """Consumer first (given 5 s to join), then producer; first byte sent -> last file
    written. labstream's downloader and uploader, or (`raw`) the raw consumer writing files
    and the raw producer; `same_work`: the raw ones hash (both) and fsync (the writer)."""
    topic = f"bench-{label}-e2e-{uuid.uuid4().hex[:6]}"
    from labstream.kafka import ensure_topic

    ensure_topic(settings("producer"), topic)  # so the consumer can join before any data
    messages = sum(max(1, -(-p.stat().st_size // int(common["chunk_size"]))) for p in data.iterdir())  # type: ignore[call-overload]
    hashing: dict[str, object] = {"sha256": ""} if same_work else {}
    durable: dict[str, object] = {"fsync": ""} if same_work else {}
    if raw:
        down = start_phase(
            "raw-consume-files", topic=topic, messages=messages, data=data, **common, **hashing, **durable
        )
    else:
        down = start_phase("download", topic=topic, files=files, **common)
    time.sleep(5.0)
    started = time.time()
    up = run_phase("raw-produce" if raw else "upload", topic=topic, data=data, **common, **hashing)
    down_figures = finish_phase("download", down)
    return {
        "seconds": down_figures["finished_at"] - started,
        "cpu_seconds": up["cpu_seconds"] + down_figures["cpu_seconds"],
        "upload_peak_rss_kib": up["peak_rss_kib"],
        "peak_rss_kib": down_figures["peak_rss_kib"],
    }


def openmsistream_e2e(
    data: Path, args: argparse.Namespace, label: str, chunk_size: int | None
) -> dict[str, float]:
    import openmsistream_run

    topic = f"bench-{label}-omsi-{uuid.uuid4().hex[:6]}"
    scratch = Path(args.scratch)
    from labstream.kafka import ensure_topic

    ensure_topic(settings("producer"), topic)
    config = openmsistream_run.write_config(scratch, os.environ.get("LABSTREAM_BOOTSTRAP", "127.0.0.1:9092"))
    out = Path(tempfile.mkdtemp(prefix="omsi-out-", dir=scratch))
    figures = openmsistream_run.end_to_end(data, out, config, topic, chunk_size)
    figures["peak_rss_kib"] = figures["download_peak_rss_kib"]
    return figures


def one_round(label: str, data: Path, files: int, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Every phase once, raw references and labstream side by side, on fresh topics."""
    messages = sum(max(1, -(-p.stat().st_size // args.chunk_size)) for p in data.iterdir())
    common = {"chunk_size": args.chunk_size, "scratch": args.scratch, "threads": args.threads}
    raw_topic, ls_topic = (f"bench-{label}-{kind}-{uuid.uuid4().hex[:6]}" for kind in ("raw", "ls"))
    raw = {"topic": raw_topic, "messages": messages, **common}
    try:
        return _round(label, data, files, args, raw_topic, ls_topic, raw, common)
    finally:
        delete_topics(f"bench-{label}-")


def _round(
    label: str,
    data: Path,
    files: int,
    args: argparse.Namespace,
    raw_topic: str,
    ls_topic: str,
    raw: dict[str, object],
    common: dict[str, object],
) -> dict[str, dict[str, float]]:
    return {
        "raw_produce": run_phase("raw-produce", topic=raw_topic, data=data, **common),
        "raw_consume": run_phase("raw-consume", **raw),
        "raw_files": run_phase("raw-consume-files", data=data, **raw),
        "raw_files_fsync": run_phase("raw-consume-files", data=data, fsync="", **raw),
        "raw_produce_sha": run_phase("raw-produce", topic=raw_topic, data=data, sha256="", **common),
        "raw_files_sha_fsync": run_phase("raw-consume-files", data=data, fsync="", sha256="", **raw),
        "disk_write": run_phase("disk-write", data=data, **common),
        "upload": run_phase("upload", topic=ls_topic, data=data, wire=args.wire, **common),
        "download": run_phase("download", topic=ls_topic, files=files, **common),
        "raw_e2e": end_to_end(data, files, common, label, raw=True),
        "raw_e2e_same_work": end_to_end(data, files, common, label, raw=True, same_work=True),
        "labstream_e2e": end_to_end(data, files, common, label),
    }


def delete_topics(prefix: str) -> None:
    """Delete this benchmark's topics (they hold GiBs on the broker's disk)."""
    from confluent_kafka.admin import AdminClient

    conf = {k: v for k, v in settings("producer").items() if k != "logger"}
    admin = AdminClient({k: v for k, v in conf.items() if k in ADMIN_KEYS or k.startswith(("sasl.", "ssl."))})
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    for future in admin.delete_topics(names).values() if names else []:
        future.result()


ADMIN_KEYS = {"bootstrap.servers", "security.protocol"}


def median_figures(runs: list[dict[str, float]]) -> dict[str, float]:
    """The median of each figure over the rounds; peak RSS is the largest seen."""
    merged = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    for key in merged:
        if "rss" in key:
            merged[key] = max(run[key] for run in runs)
    merged["runs_seconds"] = [run["seconds"] for run in runs]  # type: ignore[assignment]
    return merged


def bench_dataset(label: str, data: Path, files: int, args: argparse.Namespace) -> dict[str, object]:
    total = sum(p.stat().st_size for p in data.iterdir())
    rounds = [one_round(label, data, files, args) for _ in range(args.repeat)]
    results = {phase: median_figures([r[phase] for r in rounds]) for phase in rounds[0]}
    if args.openmsistream:
        try:
            results["omsi_e2e_default"] = openmsistream_e2e(data, args, label, None)
        finally:
            delete_topics(f"bench-{label}-omsi-")
    for figures in results.values():
        figures["MB_per_s"] = total / MB / figures["seconds"]
        figures["files_per_s"] = files / figures["seconds"]
    mbs = {phase: figures["MB_per_s"] for phase, figures in results.items()}
    row: dict[str, object] = {
        "dataset": label,
        "files": files,
        "bytes": total,
        "repeat": args.repeat,
        "results": results,
        "read_per_byte": results["upload"]["read_per_byte"],
        "upload_vs_raw": mbs["upload"] / mbs["raw_produce"],
        "download_vs_raw": mbs["download"] / mbs["raw_consume"],
        "download_vs_raw_files": mbs["download"] / mbs["raw_files"],
        "download_vs_raw_fsync": mbs["download"] / mbs["raw_files_fsync"],
        "upload_vs_raw_sha": mbs["upload"] / mbs["raw_produce_sha"],
        "download_vs_raw_sha_fsync": mbs["download"] / mbs["raw_files_sha_fsync"],
        "download_vs_disk": mbs["download"] / mbs["disk_write"],
        "e2e_vs_raw": mbs["labstream_e2e"] / mbs["raw_e2e"],
        "e2e_vs_raw_same_work": mbs["labstream_e2e"] / mbs["raw_e2e_same_work"],
        "upload_peak_rss_mib": results["upload"]["peak_rss_kib"] / 1024,
        "download_peak_rss_mib": results["download"]["peak_rss_kib"] / 1024,
    }
    if "omsi_e2e_default" in results:
        row["e2e_vs_openmsistream"] = mbs["labstream_e2e"] / mbs["omsi_e2e_default"]
    return row


RATIOS = (
    ("upload_vs_raw", "upload / raw producer"),
    ("download_vs_raw", "download / raw consumer"),
    ("download_vs_raw_files", "download / raw consumer writing files"),
    ("download_vs_raw_fsync", "download / raw consumer writing files, fsync each"),
    ("upload_vs_raw_sha", "upload / raw producer that also SHA-256s each file"),
    ("download_vs_raw_sha_fsync", "download / raw writer that SHA-256s and fsyncs each file"),
    ("download_vs_disk", "download / the disk: the same bytes copied and fsync'd"),
    ("e2e_vs_raw", "end to end / raw producer -> raw consumer writing files"),
    ("e2e_vs_raw_same_work", "end to end / the same, both hashing, the writer fsyncing"),
    ("e2e_vs_openmsistream", "end to end / openmsistream 1.8.8 (x times faster)"),
    ("read_per_byte", "bytes read from disk per byte uploaded"),
    ("upload_peak_rss_mib", "upload peak RSS, MiB"),
    ("download_peak_rss_mib", "download peak RSS, MiB"),
)


def print_table(rows: list[dict[str, object]]) -> None:
    names = [f"{row['dataset']} ({_describe(row)})" for row in rows]
    print(f"median of {rows[0]['repeat']} rounds; ratios of MB/s (higher is better for labstream)")
    print(f"| {'figure':<56} | " + " | ".join(names) + " |")
    print(f"|{'-' * 58}|" + "|".join("-" * (len(n) + 2) for n in names) + "|")
    for key, title in RATIOS:
        cells = [f"{row[key]:.2f}" if key in row else "-" for row in rows]
        print(
            f"| {title:<56} | "
            + " | ".join(f"{c:>{len(n)}}" for c, n in zip(cells, names, strict=True))
            + " |"
        )
    print()
    print(
        f"{'dataset':<8} {'phase':<19} {'MB/s':>8} {'files/s':>9} {'peak RSS MiB':>13} "
        f"{'client CPU s':>12}  seconds per round"
    )
    for row in rows:
        for phase, figures in row["results"].items():  # type: ignore[attr-defined]
            runs = " ".join(f"{s:.2f}" for s in figures.get("runs_seconds", [figures["seconds"]]))
            print(
                f"{row['dataset']:<8} {phase:<19} {figures['MB_per_s']:>8.1f} "
                f"{figures['files_per_s']:>9.1f} {figures['peak_rss_kib'] / 1024:>13.0f} "
                f"{figures.get('cpu_seconds', 0.0):>12.2f}  {runs}"
            )


def _describe(row: dict[str, object]) -> str:
    files, size = int(row["files"]), int(row["bytes"])  # type: ignore[call-overload]
    each = size / files
    unit = f"{each / (1 << 30):.0f} GiB" if each >= 1 << 30 else f"{each / (1 << 20):.0f} MiB"
    if each < 1 << 20:
        unit = f"{each / 1024:.0f} KiB"
    return f"{files} x {unit}"


def rate_check(args: argparse.Namespace) -> None:
    """Upload 30 s worth of data at --rate-check and compare the achieved rate."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from labstream.kafka import ensure_topic
    from labstream.upload import parse_rate

    rate = parse_rate(args.rate_check)
    with tempfile.TemporaryDirectory(prefix="labstream-bench-") as scratch:
        data = make_dataset(Path(scratch) / "rate", 4, int(rate * 30 / 4))
        topic = f"bench-rate-{uuid.uuid4().hex[:6]}"
        ensure_topic(settings("producer"), topic)
        figures = run_phase(
            "upload",
            topic=topic,
            data=data,
            chunk_size=args.chunk_size,
            threads=args.threads,
            scratch=scratch,
            wire=args.wire,
            max_rate=args.rate_check,
        )
    achieved = figures["bytes"] / figures["seconds"]
    print(
        f"--max-rate {args.rate_check}: {achieved / (1 << 20):.3f} MiB/s over {figures['seconds']:.1f} s, "
        f"{(achieved / rate - 1) * 100:+.2f} % off the limit"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--phase", choices=sorted(PHASES))
    parser.add_argument("--topic")
    parser.add_argument("--data")
    parser.add_argument("--messages", type=int, default=0)
    parser.add_argument("--files", type=int, default=0)
    parser.add_argument("--scratch", default=None)
    parser.add_argument(
        "--threads", type=int, default=0, help="sender/consumer threads (default: each command's own)"
    )
    parser.add_argument("--chunk-size", type=int, default=512 * 1024)
    parser.add_argument("--small-files", type=int, default=2000)
    parser.add_argument("--small-size", type=int, default=64 * 1024)
    parser.add_argument("--large-files", type=int, default=1)
    parser.add_argument("--large-size", type=int, default=256 * 1024 * 1024, help="(0: none)")
    parser.add_argument("--medium-size", type=int, default=10 * 1024 * 1024, help="one file (0: none)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; figures are their median")
    parser.add_argument(
        "--datasets", default="small,medium,large", help="which data sets to run (comma-separated)"
    )
    parser.add_argument("--json", dest="json_path", default=None)
    parser.add_argument("--fsync", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sha256", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--wire", default="default", help="labstream, labstream-v1 [what this labstream writes]"
    )
    parser.add_argument("--max-rate", default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--rate-check",
        default=None,
        metavar="RATE",
        help="Only measure --max-rate: upload RATE x 30 s of data at RATE and print the error.",
    )
    parser.add_argument(
        "--openmsistream",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Also run openmsistream 1.8.8 (installed in bench/.venv-openmsistream).",
    )
    args = parser.parse_args()
    if args.phase:
        figures = PHASES[args.phase](args)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        figures["peak_rss_kib"] = usage.ru_maxrss
        # All threads, start-up and imports included: what the phase took from the cores.
        figures["cpu_seconds"] = usage.ru_utime + usage.ru_stime
        print(json.dumps(figures))
        return
    if args.rate_check:
        rate_check(args)
        return
    with tempfile.TemporaryDirectory(prefix="labstream-bench-") as scratch:
        args.scratch = scratch
        rows = []
        datasets = [("small", args.small_files, args.small_size)]
        if args.medium_size:
            datasets.append(("medium", 1, args.medium_size))
        if args.large_size and args.large_files:
            datasets.append(("large", args.large_files, args.large_size))
        wanted = set(args.datasets.split(","))
        for label, count, size in (d for d in datasets if d[0] in wanted):
            data = make_dataset(Path(scratch) / label, count, size)
            rows.append(bench_dataset(label, data, count, args))
    print_table(rows)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
