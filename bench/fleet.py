"""Fleet benchmark: N instruments and G downloaders on one topic of P partitions.

Usage (a broker must answer at --bootstrap, default $LABSTREAM_TEST_BOOTSTRAP or 127.0.0.1:29092):

    python bench/fleet.py [--instruments 5 --seconds 60 --interval 5 --min-size 10KiB
        --max-size 10MiB --partitions 8 --downloaders 2 --settle-seconds 2 --out fleet.json
        --threads --find-max-rate]

Each instrument is a real `labstream watch` process (with --threads: every watcher runs
`run_watch`, the same code, in a thread of one host process) on its own folder with its own
--source. One writer thread plays all the instruments: each writes a file every --interval
seconds (first one at a random phase), sizes log-uniform between --min-size and --max-size,
written in place and then closed (--write-mode rename: written as NAME.tmp, which the
watcher ignores, then renamed). The moment after close (or rename) is the file's "closed" time.
G `labstream download` processes in one group, each with its own output folder and
`--placement by-source`, read the topic, created beforehand with P partitions. A
`labstream dashboard` on the same config reads the fleet's heartbeats and receipts.
At most --start-batch watchers (default 2 per core) start at a time, the next as soon as one
made its first scan; each has 60 s (a watcher that gave up its 10 s start-up broker check is
started again, reported). So a fleet of any size starts at the pace the machine allows.

The code: fleet_proc (processes, /proc, the topic), fleet_writer (the instruments' files),
fleet_start (starting, sampling, stopping the fleet; --threads), fleet_figures (what arrived,
latencies, rates, usage); this module runs, reports and searches the rate.

Reported: how long the watchers took to start, files/s and MB/s offered and delivered end to
end (and their ratio), the close-to-verified latency p50/p95/p99 (the verified receipt's
`at` minus the closed time, receipts matched by source and path; one clock, one machine),
CPU (% of one core while the fleet works, from /proc) and peak RSS (VmHWM) per instrument
and per downloader, the dashboard's page and /api/fleet times with the fleet running, and
exactly-once: every written file in exactly one output folder with the same SHA-256, no
extra files, one verified receipt per file and no failed one. Targets (issue 29): p95 <=
settle + 2 s, every file exactly once, watcher peak RSS <= 60 MiB.

--find-max-rate runs the fleet again with the interval divided by 1.5 each time, until the
p95 latency exceeds settle + 2 s or a file is not delivered exactly once, and reports the
last interval that held.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from fleet_figures import (
    MB,
    arrived,
    dashboard_times,
    exactly_once,
    latencies,
    rates,
    receipts,
    sent_times,
    usage,
)
from fleet_proc import create_topic, delete_topics
from fleet_start import Fleet, host
from fleet_writer import Writer, Written

from labstream.download.limits import parse_size
from labstream.receipts import Receipt

MiB = 2**20
RSS_TARGET_MIB = 60.0


# --- one run -----------------------------------------------------------------------------------


def run_fleet(args: argparse.Namespace, interval: float) -> dict[str, Any]:
    args = argparse.Namespace(**{**vars(args), "interval": interval})
    root = Path(tempfile.mkdtemp(prefix="fleet-", dir=args.scratch))
    topic = f"fleet-{uuid.uuid4().hex[:10]}"
    config = root / "fleet.config"
    config.write_text(
        f"[cluster]\nbootstrap.servers = {args.bootstrap}\n\n[consumer]\nauto.offset.reset = earliest\n"
    )
    create_topic(args.bootstrap, topic, args.partitions)
    fleet = Fleet(root, config, args.bootstrap, topic, args)
    try:
        return _measure(fleet, args)
    finally:
        fleet.stop()
        delete_topics(args.bootstrap, [topic, f"{topic}.receipts", fleet.heartbeats])
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}")


def _measure(fleet: Fleet, args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    fleet.start()
    print(
        f"fleet up in {time.monotonic() - started:.0f} s (watchers {fleet.start_seconds:.0f} s, "
        f"{fleet.start_retries} restarted): {args.instruments} instruments, "
        f"{args.downloaders} downloaders, topic {fleet.topic} ({args.partitions} partitions)",
        flush=True,
    )
    writer = Writer(fleet.folders, args, args.seed)
    fleet.sample("cpu_idle")
    time.sleep(args.idle_seconds)  # the fleet running with nothing to send: its fixed cost
    fleet.sample("cpu_start")
    loads = [os.getloadavg()[0]]  # the machine is shared: how busy it was is part of the figure
    window_start = time.monotonic()
    thread = threading.Thread(target=writer.run, args=(args.seconds,), name="fleet-writer")
    thread.start()
    pending: list[Written] = []
    dashboard: dict[str, Any] = {}
    while thread.is_alive():
        thread.join(10)
        fleet.sample("cpu_end")
        loads.append(os.getloadavg()[0])
        if not dashboard and time.monotonic() - window_start > args.seconds * 0.8:
            dashboard = dashboard_times(fleet.dashboard_url)  # the fleet at full work
        done = sum(1 for w in list(writer.written) if arrived(fleet.outs, w))
        print(
            f"  {time.monotonic() - window_start:5.0f} s: written {len(writer.written)}, "
            f"arrived {done}, load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    pending = list(writer.written)
    deadline = time.monotonic() + args.drain_seconds
    while pending and time.monotonic() < deadline:
        pending = [w for w in pending if not arrived(fleet.outs, w)]
        time.sleep(0.5)
    window = time.monotonic() - window_start
    fleet.sample("cpu_end")
    dashboard = dashboard or dashboard_times(fleet.dashboard_url)
    fleet.stop()  # a downloader publishes its last receipts before it exits
    got = receipts(fleet.bootstrap, fleet.topic)
    dashboard["load_average_1min_median"] = round(statistics.median(loads), 1)
    return report(fleet, args, writer, got, window, dashboard)


def report(
    fleet: Fleet,
    args: argparse.Namespace,
    writer: Writer,
    got: list[Receipt],
    window: float,
    dash: dict[str, Any],
) -> dict[str, Any]:
    once = exactly_once(fleet.outs, writer.written, got)
    late = latencies(writer.written, got, sent_times(fleet.by_role("watch")))
    megabytes = sum(w.size for w in writer.written) / MB
    watchers = usage(fleet.by_role("watch", "watch-host"), window, megabytes, args.idle_seconds)
    result = {
        "run": {k: v for k, v in vars(args).items() if k not in ("host",)} | {"interval": args.interval},
        "window_seconds": round(window, 1),
        "writer_late_seconds_max": round(writer.late_seconds, 3),
        "watcher_start": start_figures(fleet),
        "load_average_1min_median": dash.pop("load_average_1min_median", None),
        "throughput": rates(writer.written, got),
        "latency_seconds": late,
        "exactly_once": once,
        "per_instrument": watchers,
        "per_downloader": usage(fleet.by_role("download"), window, megabytes, args.idle_seconds),
        "dashboard": dash | usage(fleet.by_role("dashboard"), window, megabytes, args.idle_seconds),
    }
    target = args.settle_seconds + 2
    result["targets"] = {
        "p95_latency_le_settle_plus_2": late["p95"] <= target,
        "every_file_exactly_once": once["ok"],
        "watcher_peak_rss_le_60_mib": watchers["peak_rss_mib_max"] <= RSS_TARGET_MIB,
    }
    result["targets_met"] = all(result["targets"].values())
    return result


def start_figures(fleet: Fleet) -> dict[str, Any]:
    """How long the watchers took to start: all of them, and each one to its first scan."""
    ready = fleet.ready_seconds
    return {
        "seconds": round(fleet.start_seconds, 1),
        "ready_seconds_p50": round(statistics.median(ready), 1) if ready else None,
        "ready_seconds_max": round(max(ready), 1) if ready else None,
        "restarts": fleet.start_retries,
    }


def show(result: dict[str, Any]) -> None:
    run, t, lat, once = result["run"], result["throughput"], result["latency_seconds"], result["exactly_once"]
    inst, dl, dash = result["per_instrument"], result["per_downloader"], result["dashboard"]
    start = result["watcher_start"]
    rows = [
        (
            "fleet",
            f"{run['instruments']} instruments x 1 file / {run['interval']:g} s, "
            f"{run['partitions']} partitions, {run['downloaders']} downloaders, {run['seconds']:g} s; "
            f"load average {result['load_average_1min_median']}",
        ),
        (
            "watchers start",
            f"{start['seconds']:g} s for all, each {start['ready_seconds_p50'] or '-'} s to its "
            f"first scan (max {start['ready_seconds_max'] or '-'}), {start['restarts']} restarted",
        ),
        ("offered", f"{t['offered_files_per_s']:.2f} files/s, {t['offered_MB_per_s']:.2f} MB/s"),
        (
            "delivered",
            f"{t['delivered_files_per_s']:.2f} files/s ({t['delivered_vs_offered_files']:.2f}x), "
            f"{t['delivered_MB_per_s']:.2f} MB/s ({t['delivered_vs_offered_MB']:.2f}x)",
        ),
        (
            "close->verified",
            f"p50 {lat['p50']:.2f} s, p95 {lat['p95']:.2f} s, p99 {lat['p99']:.2f} s, "
            f"max {lat['max']:.2f} s (target p95 <= {run['settle_seconds'] + 2:g} s)",
        ),
        *(
            (f"  {half.replace('_', ' ')}", f"p50 {lat[half]['p50']:.2f} s, p95 {lat[half]['p95']:.2f} s")
            for half in ("close_to_sent", "sent_to_verified")
            if half in lat
        ),
        (
            "exactly once",
            f"{once['written']} written, {once['missing']} missing, "
            f"{once['in_two_folders'] + once['files_verified_twice']} twice, {once['extra_files']} extra, "
            f"{once['corrupt']} corrupt, {once['failed_receipts']} failed",
        ),
        (
            "per instrument",
            f"CPU {inst['cpu_pct_median']:.1f}% (max {inst['cpu_pct_max']:.1f}%), "
            f"peak RSS {inst['peak_rss_mib_median']:.0f} MiB (max {inst['peak_rss_mib_max']:.0f}); "
            f"idle {inst['idle_cpu_pct_median']:.1f}%; all watchers {inst['cpu_ms_per_MB_above_idle']:.1f} "
            "CPU ms per MB above idle",
        ),
        (
            "per downloader",
            f"CPU {dl['cpu_pct_median']:.1f}% (max {dl['cpu_pct_max']:.1f}%), "
            f"peak RSS {dl['peak_rss_mib_median']:.0f} MiB (max {dl['peak_rss_mib_max']:.0f}); "
            f"idle {dl['idle_cpu_pct_median']:.1f}%; all downloaders {dl['cpu_ms_per_MB_above_idle']:.1f} "
            "CPU ms per MB above idle",
        ),
        (
            "dashboard",
            f"GET / {dash['page_ms_median']:.0f} ms (max {dash['page_ms_max']:.0f}), "
            f"/api/fleet {dash['api_fleet_ms_median']:.0f} ms (max {dash['api_fleet_ms_max']:.0f}), "
            f"RSS {dash['peak_rss_mib_max']:.0f} MiB; sees {dash['instruments_seen']} instruments, "
            f"{dash['consumers_seen']} consumers",
        ),
        ("targets", ", ".join(f"{k}={'ok' if v else 'FAILED'}" for k, v in result["targets"].items())),
    ]
    for name, text in rows:
        print(f"{name:16} {text}")


def find_max_rate(args: argparse.Namespace) -> dict[str, Any]:
    interval, held, runs = args.interval, None, []
    while interval >= args.min_interval:
        print(f"--- interval {interval:.3g} s", flush=True)
        result = run_fleet(args, interval)
        show(result)
        runs.append(result)
        targets = result["targets"]  # memory is reported, but the rate search is about delivery
        if not (targets["p95_latency_le_settle_plus_2"] and targets["every_file_exactly_once"]):
            break
        held = interval
        interval /= 1.5
    return {
        "runs": runs,
        "max_rate": None
        if held is None
        else {
            "interval_seconds": round(held, 3),
            "files_per_s_per_instrument": round(1 / held, 3),
            "fleet_files_per_s": round(args.instruments / held, 2),
        },
    }


# --- the command -------------------------------------------------------------------------------


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_bootstrap = os.environ.get("LABSTREAM_TEST_BOOTSTRAP", "127.0.0.1:29092")
    parser.add_argument("--instruments", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the instruments write")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between files per instrument")
    parser.add_argument("--min-size", type=parse_size, default=10 * 1024)
    parser.add_argument("--max-size", type=parse_size, default=10 * MiB)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--downloaders", type=int, default=2)
    parser.add_argument("--bootstrap", default=default_bootstrap)
    parser.add_argument("--settle-seconds", type=float, default=2.0)
    parser.add_argument("--write-mode", choices=("inplace", "rename"), default="inplace")
    parser.add_argument("--threads", action="store_true", help="watchers as threads of one process")
    parser.add_argument(
        "--start-batch", type=int, default=0, help="watchers starting at a time [0: 2 per core]"
    )
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="idle CPU measured first")
    parser.add_argument("--drain-seconds", type=float, default=120.0, help="wait for the last files")
    parser.add_argument("--find-max-rate", action="store_true")
    parser.add_argument("--min-interval", type=float, default=0.2, help="--find-max-rate stops here")
    parser.add_argument("--seed", type=int, default=29)
    parser.add_argument("--scratch", default=None, help="folder for the run's files [system temp]")
    parser.add_argument("--keep", action="store_true", help="keep the run's folders")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here")
    parser.add_argument("--host", type=Path, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # SIGTERM unwinds like Ctrl+C, so the fleet is stopped and the run's topics deleted.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.host is not None:
        host(args.host)
        return 0
    if args.find_max_rate:
        result = find_max_rate(args)
    else:
        result = run_fleet(args, args.interval)
        show(result)
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    ok = result["targets_met"] if not args.find_max_rate else result["max_rate"] is not None
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
