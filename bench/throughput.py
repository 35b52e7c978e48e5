"""Throughput of labstream upload/download against raw confluent-kafka on the same broker.

Usage (the broker must run: `labstream broker start`):

    python bench/throughput.py [--small-files 2000 --small-size 65536 --large-files 1
                                --large-size 268435456 --chunk-size 524288 --json out.json]

Every phase runs in its own subprocess so that its peak RSS is its own. Figures are printed
as MB/s and as ratios against the raw producer/consumer ("ceiling") measured in the same run,
with the same message size and the same guarantees (acks=all, idempotent producer).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

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
        with open(path, "rb") as handle:
            while block := handle.read(args.chunk_size):
                total += len(block)
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
    total, count = 0, 0
    while count < args.messages:
        batch = consumer.consume(500, 0) or consumer.consume(1, 1.0)
        for message in batch:
            if message.error():
                continue
            name = message.key().decode()
            with open(out / name, "ab") as handle:
                handle.write(message.value())
                written[name] = written.get(name, 0) + len(message.value())
                if args.fsync and written[name] == sizes[name]:
                    handle.flush()
                    os.fsync(handle.fileno())
            total += len(message.value())
            count += 1
    seconds = time.monotonic() - started
    consumer.close()
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
    options: dict[str, object] = {"chunk_size": args.chunk_size, "threads": args.threads}
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
    from labstream.download import Downloader, Outcome

    stop = threading.Event()
    done = {"files": 0}

    def on_outcome(outcome: Outcome, _nbytes: int) -> None:
        if outcome is Outcome.COMPLETE:
            done["files"] += 1
            if done["files"] == args.files:
                stop.set()

    out = Path(tempfile.mkdtemp(prefix="bench-out-", dir=args.scratch))
    report = Downloader(
        settings("consumer"), args.topic, out, threads=args.threads, stop=stop, on_outcome=on_outcome
    ).run()
    assert report.files == args.files and report.failed == 0, report
    # Timed from consumer creation to the last file verified, like the raw consumer.
    return {"seconds": report.seconds, "bytes": report.bytes, "finished_at": time.time()}


PHASES = {
    "raw-produce": phase_raw_produce,
    "raw-consume": phase_raw_consume,
    "raw-consume-files": phase_raw_consume_files,
    "upload": phase_upload,
    "download": phase_download,
}


def start_phase(name: str, **options: object) -> subprocess.Popen[str]:
    """Start one phase in a fresh interpreter (so its peak RSS is its own); an option
    whose value is "" is a flag."""
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


def end_to_end(data: Path, files: int, common: dict[str, object], label: str) -> dict[str, float]:
    """Downloader first (given 5 s to join), then upload; first byte sent -> last file verified."""
    topic = f"bench-{label}-e2e-{uuid.uuid4().hex[:6]}"
    from labstream.kafka import ensure_topic

    ensure_topic(settings("producer"), topic)  # so the downloader can join before any data
    down = start_phase("download", topic=topic, files=files, **common)
    time.sleep(5.0)
    started = time.time()
    up = run_phase("upload", topic=topic, data=data, **common)
    down_figures = finish_phase("download", down)
    return {
        "seconds": down_figures["finished_at"] - started,
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


def bench_dataset(label: str, data: Path, files: int, args: argparse.Namespace) -> dict[str, object]:
    total = sum(p.stat().st_size for p in data.iterdir())
    messages = sum(max(1, -(-p.stat().st_size // args.chunk_size)) for p in data.iterdir())
    common = {"chunk_size": args.chunk_size, "scratch": args.scratch, "threads": args.threads}
    raw_topic, ls_topic = (f"bench-{label}-{kind}-{uuid.uuid4().hex[:6]}" for kind in ("raw", "ls"))
    results = {
        "raw_produce": run_phase("raw-produce", topic=raw_topic, data=data, **common),
        "raw_consume": run_phase("raw-consume", topic=raw_topic, messages=messages, **common),
        "raw_files": run_phase("raw-consume-files", topic=raw_topic, messages=messages, data=data, **common),
        "raw_files_fsync": run_phase(
            "raw-consume-files", topic=raw_topic, messages=messages, data=data, fsync="", **common
        ),
        "upload": run_phase("upload", topic=ls_topic, data=data, wire=args.wire, **common),
        "download": run_phase("download", topic=ls_topic, files=files, **common),
        "labstream_e2e": end_to_end(data, files, common, label),
    }
    if args.openmsistream:
        results["omsi_e2e_default"] = openmsistream_e2e(data, args, label, None)
    for figures in results.values():
        figures["MB_per_s"] = total / MB / figures["seconds"]
        figures["files_per_s"] = files / figures["seconds"]
    row = {
        "dataset": label,
        "read_per_byte": results["upload"]["read_per_byte"],
        "download_vs_raw_files": results["download"]["MB_per_s"] / results["raw_files"]["MB_per_s"],
        "download_vs_raw_fsync": results["download"]["MB_per_s"] / results["raw_files_fsync"]["MB_per_s"],
        "files": files,
        "bytes": total,
        "results": results,
        "upload_vs_raw": results["upload"]["MB_per_s"] / results["raw_produce"]["MB_per_s"],
        "download_vs_raw": results["download"]["MB_per_s"] / results["raw_consume"]["MB_per_s"],
    }
    if "omsi_e2e_default" in results:
        row["e2e_vs_openmsistream"] = (
            results["omsi_e2e_default"]["seconds"] / results["labstream_e2e"]["seconds"]
        )
    return row


def print_table(rows: list[dict[str, object]]) -> None:
    print(
        "vs ref: upload/download against the raw producer/consumer; labstream_e2e as\n"
        "openmsistream e2e time / labstream e2e time (x times faster)"
    )
    print(f"{'dataset':<8} {'phase':<17} {'MB/s':>8} {'files/s':>9} {'peak RSS MiB':>13} {'vs ref':>7}")
    for row in rows:
        print(
            f"{row['dataset']}: read per byte uploaded {row['read_per_byte']:.2f}; download vs raw "
            f"consumer writing files {row['download_vs_raw_files']:.2f}, with fsync per file "
            f"{row['download_vs_raw_fsync']:.2f}"
        )
    for row in rows:
        results = row["results"]
        ratios = {
            "upload": row["upload_vs_raw"],
            "download": row["download_vs_raw"],
            "labstream_e2e": row.get("e2e_vs_openmsistream", float("nan")),
        }
        for phase, figures in results.items():
            ratio = f"{ratios[phase]:.2f}" if phase in ratios else "1.00"
            print(
                f"{row['dataset']:<8} {phase:<17} {figures['MB_per_s']:>8.1f} "
                f"{figures['files_per_s']:>9.1f} {figures['peak_rss_kib'] / 1024:>13.0f} {ratio:>7}"
            )


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
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=512 * 1024)
    parser.add_argument("--small-files", type=int, default=2000)
    parser.add_argument("--small-size", type=int, default=64 * 1024)
    parser.add_argument("--large-files", type=int, default=1)
    parser.add_argument("--large-size", type=int, default=256 * 1024 * 1024)
    parser.add_argument("--json", dest="json_path", default=None)
    parser.add_argument("--fsync", action="store_true", help=argparse.SUPPRESS)
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
        figures["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps(figures))
        return
    if args.rate_check:
        rate_check(args)
        return
    with tempfile.TemporaryDirectory(prefix="labstream-bench-") as scratch:
        args.scratch = scratch
        rows = []
        for label, count, size in (
            ("small", args.small_files, args.small_size),
            ("large", args.large_files, args.large_size),
        ):
            data = make_dataset(Path(scratch) / label, count, size)
            rows.append(bench_dataset(label, data, count, args))
    print_table(rows)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
