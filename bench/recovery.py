"""How fast labstream recovers: a SIGKILLed downloader, a broker outage, a 3-node failover.

Usage (a broker must answer at --bootstrap; the outage and cluster phases start their own
brokers on --port and --cluster-ports, which must be free):

    python bench/recovery.py [--bootstrap 127.0.0.1:9092 --port 31092
                              --cluster-ports 31492,31493,31494 --rounds 3 --skip-cluster]

Every figure is printed twice: with labstream's defaults ("after") and with static
membership off and librdkafka's own reconnect back-off ("before", the settings of issue 18).
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from labstream import broker

PROBLEM = re.compile(r" (WARNING|ERROR) ")


def config(folder: Path, bootstrap: str, before: bool) -> Path:
    path = folder / f"{'before' if before else 'after'}.config"
    text = f"[cluster]\nbootstrap.servers = {bootstrap}\n"
    if before:
        text += "reconnect.backoff.max.ms = 10000\nsocket.connection.setup.timeout.ms = 30000\n"
        text += "[consumer]\ngroup.instance.id = none\nheartbeat.interval.ms = 3000\n"
    path.write_text(text)
    return path


def cli(*args: object, log: Path | None = None) -> subprocess.Popen[bytes]:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
    return subprocess.Popen([sys.executable, "-m", "labstream", *map(str, args)], stdout=out, stderr=out)


def wait(condition: object, timeout: float = 120.0, every: float = 0.05) -> float:
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        if time.monotonic() - started > timeout:
            raise SystemExit(f"timed out after {timeout:g} s")
        time.sleep(every)
    return time.monotonic() - started


def upload(src: Path, cfg: Path, topic: str, name: str) -> None:
    src.mkdir(exist_ok=True)
    (src / name).write_bytes(os.urandom(50_000))
    if cli("upload", src, "--config", cfg, "--topic", topic).wait() != 0:
        raise SystemExit("upload failed")


def restart(folder: Path, bootstrap: str, before: bool, rounds: int) -> list[float]:
    """kill -9 of a downloader, restart at once: seconds from the restart to a new file."""
    cfg, topic = config(folder, bootstrap, before), f"bench-rec-{uuid.uuid4().hex[:8]}"
    src, out = folder / f"src-{topic}", folder / f"out-{topic}"
    upload(src, cfg, topic, "f0")
    args = ("download", out, "--config", cfg, "--topic", topic, "--group", f"{topic}-g")
    proc = cli(*args)
    figures = []
    for i in range(1, rounds + 1):
        wait(lambda i=i: (out / f"f{i - 1}").exists(), timeout=60)
        time.sleep(1.5)  # the auto-commit interval passes
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        upload(src, cfg, topic, f"f{i}")
        proc = cli(*args)
        figures.append(wait(lambda i=i: (out / f"f{i}").exists(), timeout=60))
    proc.send_signal(signal.SIGTERM)
    proc.wait()
    return figures


def outage(folder: Path, port: int, before: bool, seconds: float) -> tuple[float, float, int]:
    """The broker stops for `seconds`: (watcher resumed, downloader resumed, problem lines)."""
    bootstrap = broker.start(port).bootstrap
    cfg, topic = config(folder, bootstrap, before), f"bench-out-{uuid.uuid4().hex[:8]}"
    root, out, state = folder / f"root-{topic}", folder / f"out-{topic}", folder / f"state-{topic}"
    root.mkdir()
    wlog, dlog = folder / f"{topic}-watch.log", folder / f"{topic}-download.log"
    watch = ("watch", root, "--config", cfg, "--topic", topic, "--state", state, "--settle-seconds", "0.5")
    watcher = cli(*watch, "--update-seconds", "-1", log=wlog)
    downloader = cli("download", out, "--config", cfg, "--topic", topic, log=dlog)
    try:
        (root / "before.bin").write_bytes(os.urandom(100_000))
        wait(lambda: (out / "before.bin").exists(), timeout=120)
        marks = [len(p.read_text().splitlines()) for p in (wlog, dlog)]
        broker.stop(port)
        (root / "during.bin").write_bytes(os.urandom(100_000))
        time.sleep(seconds)
        broker.start(port)
        back = time.monotonic()
        wait(lambda: (out / "during.bin").exists(), timeout=120)
        downstream = time.monotonic() - back
        time.sleep(3)
        sent = _first_line_after(wlog, marks[0], "file sent")
        lines = sum(
            bool(PROBLEM.search(line))
            for path, mark in zip((wlog, dlog), marks, strict=True)
            for line in path.read_text().splitlines()[mark:]
        )
    finally:
        for proc in (watcher, downloader):
            proc.send_signal(signal.SIGTERM)
            proc.wait()
        broker.stop(port)
    return (sent - back if sent else float("nan")), downstream, lines


def _first_line_after(log: Path, mark: int, what: str) -> float | None:
    """The monotonic time of the first `what` line after `mark`, from the log's own clock."""
    for line in log.read_text().splitlines()[mark:]:
        if what in line:
            stamp = time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")) + int(line[20:23]) / 1000
            return stamp - time.time() + time.monotonic()
    return None


def cluster(folder: Path, ports: list[int], before: bool) -> float:
    """One of 3 brokers killed while files flow: the longest gap between files downstream."""
    broker.start_cluster(ports)
    bootstrap = ",".join(f"127.0.0.1:{p}" for p in ports)
    cfg, topic = config(folder, bootstrap, before), f"bench-clu-{uuid.uuid4().hex[:8]}"
    root, out, state = folder / f"root-{topic}", folder / f"out-{topic}", folder / f"state-{topic}"
    root.mkdir()
    watch = ("watch", root, "--config", cfg, "--topic", topic, "--state", state, "--settle-seconds", "0.2")
    watcher = cli(*watch, "--update-seconds", "-1", log=folder / f"{topic}-watch.log")
    downloader = cli("download", out, "--config", cfg, "--topic", topic, log=folder / f"{topic}-dl.log")
    arrivals: dict[str, float] = {}
    try:
        for i in range(150):
            (root / f"f{i:03d}").write_bytes(os.urandom(20_000))
            if i == 40:
                wait(lambda: len(list(out.glob("f*"))) >= 30 if out.exists() else False)
                os.kill(broker.status(ports[1]).pid or 0, signal.SIGKILL)
                killed = time.monotonic()
            for path in out.glob("f*") if out.exists() else []:
                arrivals.setdefault(path.name, time.monotonic())
            time.sleep(0.1)
        wait(lambda: len(list(out.glob("f*"))) >= 150, timeout=180)
    finally:
        for proc in (watcher, downloader):
            proc.send_signal(signal.SIGTERM)
            proc.wait()
        for port in ports:
            broker.stop(port)
    after = sorted(t for t in arrivals.values() if t >= killed)
    return max([after[0] - killed] + [b - a for a, b in itertools.pairwise(after)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--port", type=int, default=31092)
    parser.add_argument("--cluster-ports", default="31492,31493,31494")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--outage-seconds", type=float, default=12.0)
    parser.add_argument("--skip-cluster", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for before in (True, False):
            name = "before" if before else "after "
            kills = restart(folder, args.bootstrap, before, args.rounds)
            print(
                f"{name} restart after kill -9 -> first verified file: "
                + " ".join(f"{s:.1f}s" for s in kills)
            )
            watcher_s, downloader_s, lines = outage(folder, args.port, before, args.outage_seconds)
            print(
                f"{name} broker back after {args.outage_seconds:g}s -> watcher sent {watcher_s:.1f}s, "
                f"file downstream {downloader_s:.1f}s; problem log lines {lines}",
                flush=True,
            )
            if not args.skip_cluster:
                ports = [int(p) for p in args.cluster_ports.split(",")]
                pause = cluster(folder, ports, before)
                print(f"{name} 3 nodes, one kill -9 -> longest pause downstream {pause:.1f}s")


if __name__ == "__main__":
    main()
