"""How fast labstream recovers: a SIGKILLed downloader, a broker outage, a 3-node failover.

Usage (a broker must answer at --bootstrap; the outage and cluster phases start their own
brokers on --port and --cluster-ports, which must be free):

    python bench/recovery.py --bootstrap 127.0.0.1:9092 [--port 36092
        --cluster-ports 36192,36193,36194 --rounds 3 --variants before,after --skip-cluster]

Each variant is a set of client settings (VARIANTS); "after" is labstream's defaults,
"before" the settings issue 18 measured. For every variant and scenario one line gives the
figure and the target. `--variants after,cooperative,kip848-static,kip848` compares the group
protocols (restart and coordinator kill only when --skip-outage is given).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from confluent_kafka.admin import AdminClient

from labstream import broker

PROBLEM = re.compile(r" (WARNING|ERROR) ")
IGNORED = ("stopping cleanly", "receipts are not signed")
VARIANTS = {
    "before": "reconnect.backoff.max.ms = 10000\nsocket.connection.setup.timeout.ms = 30000\n"
    "topic.metadata.refresh.interval.ms = 300000\n"
    "[consumer]\ngroup.instance.id = none\nheartbeat.interval.ms = 3000\n",
    "after": "",
    "cooperative": "[consumer]\npartition.assignment.strategy = cooperative-sticky\n",
    "kip848-static": "[consumer]\ngroup.protocol = consumer\n",
    "kip848": "[consumer]\ngroup.protocol = consumer\ngroup.instance.id = none\n",
}
TARGETS = {"restart": 3.0, "resume": 3.0, "pause": 5.0, "lines": 40}


def config(folder: Path, bootstrap: str, variant: str) -> Path:
    path = folder / f"{variant}-{bootstrap.replace(':', '_').replace(',', '+')}.config"
    path.write_text(f"[cluster]\nbootstrap.servers = {bootstrap}\n{VARIANTS[variant]}")
    return path


def cli(*args: object, log: Path | None = None) -> subprocess.Popen[bytes]:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
    return subprocess.Popen([sys.executable, "-m", "labstream", *map(str, args)], stdout=out, stderr=out)


def wait(condition: Callable[[], object], timeout: float = 120.0, every: float = 0.05) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"timed out after {timeout:g} s")
        time.sleep(every)
    return time.monotonic() - started


def stop(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait()


def start_watcher(root: Path, cfg: Path, topic: str, state: Path, log: Path) -> subprocess.Popen[bytes]:
    """A watcher that has made its first scan: files written from now on are sent."""
    args = ("watch", root, "--config", cfg, "--topic", topic, "--state", state)
    proc = cli(*args, "--settle-seconds", "0.3", "--update-seconds", "-1", log=log)
    # Files already there at the first scan are ignored (new files only): wait for it.
    wait(lambda: "watching folder=" in log.read_text() if log.exists() else False, timeout=60)
    return proc


class Tally:
    """Files lost, corrupt or verified twice, over every scenario."""

    def __init__(self) -> None:
        self.sent = 0
        self.lost = self.corrupt = self.twice = 0

    def check(self, src: Path, out: Path, logs: list[Path]) -> None:
        verified = Counter(
            name for log in logs for name in re.findall(r"file verified file=(\S+)", log.read_text())
        )
        for path in (p for p in src.rglob("*") if p.is_file()):
            name = path.relative_to(src).as_posix()
            self.sent += 1
            copy = out / name
            if not copy.exists():
                self.lost += 1
            elif _digest(copy) != _digest(path):
                self.corrupt += 1
            self.twice += verified[name] > 1


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def upload(src: Path, cfg: Path, topic: str, name: str) -> None:
    src.mkdir(exist_ok=True)
    (src / name).write_bytes(os.urandom(50_000))
    if cli("upload", src, "--config", cfg, "--topic", topic).wait() != 0:
        raise SystemExit("upload failed")


def restart(folder: Path, bootstrap: str, variant: str, rounds: int, tally: Tally) -> list[float]:
    """kill -9 of a downloader, restart at once: seconds from the restart to a new file."""
    cfg, topic = config(folder, bootstrap, variant), f"bench-rec-{uuid.uuid4().hex[:8]}"
    src, out, log = folder / f"src-{topic}", folder / f"out-{topic}", folder / f"{topic}-dl.log"
    upload(src, cfg, topic, "f0")
    args = ("download", out, "--config", cfg, "--topic", topic, "--group", f"{topic}-g")
    proc = cli(*args, log=log)
    figures = []
    for i in range(1, rounds + 1):
        wait(lambda i=i: (out / f"f{i - 1}").exists(), timeout=90)
        time.sleep(1.5)  # the auto-commit interval passes
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        upload(src, cfg, topic, f"f{i}")
        proc = cli(*args, log=log)
        figures.append(wait(lambda i=i: (out / f"f{i}").exists(), timeout=90))
    stop(proc)
    tally.check(src, out, [log])
    return figures


def outage(folder: Path, port: int, variant: str, seconds: float, tally: Tally) -> tuple[float, float, int]:
    """The broker stops for `seconds`: (watcher resumed, downloader resumed, problem lines)."""
    bootstrap = broker.start(port).bootstrap
    cfg, topic = config(folder, bootstrap, variant), f"bench-out-{uuid.uuid4().hex[:8]}"
    root, out, state = folder / f"root-{topic}", folder / f"out-{topic}", folder / f"state-{topic}"
    root.mkdir()
    wlog, dlog = folder / f"{topic}-watch.log", folder / f"{topic}-download.log"
    watcher = start_watcher(root, cfg, topic, state, wlog)
    downloader = cli("download", out, "--config", cfg, "--topic", topic, "--group", f"{topic}-g", log=dlog)
    try:
        (root / "before.bin").write_bytes(os.urandom(100_000))
        wait(lambda: (out / "before.bin").exists())
        marks = [len(p.read_text().splitlines()) for p in (wlog, dlog)]
        broker.stop(port)
        (root / "during.bin").write_bytes(os.urandom(100_000))
        time.sleep(seconds)
        broker.start(port)
        back = time.monotonic()
        wait(lambda: (out / "during.bin").exists())
        downstream = time.monotonic() - back
        time.sleep(3)  # stale warnings after the recovery would show up here
        sent = _first_line_after(wlog, marks[0], "file sent")
    finally:
        stop(watcher, downloader)
        broker.stop(port)
    lines = sum(
        bool(PROBLEM.search(line)) and not any(i in line for i in IGNORED)
        for path, mark in zip((wlog, dlog), marks, strict=True)
        for line in path.read_text().splitlines()[mark:]
    )
    tally.check(root, out, [dlog])
    return (sent - back if sent else float("nan")), downstream, lines


def _first_line_after(log: Path, mark: int, what: str) -> float | None:
    """The monotonic time of the first `what` line after `mark`, from the log's own clock."""
    for line in log.read_text().splitlines()[mark:]:
        if what in line:
            stamp = time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")) + int(line[20:23]) / 1000
            return stamp - time.time() + time.monotonic()
    return None


def coordinator_port(bootstrap: str, group: str, ports: list[int]) -> int:
    """The port of the broker that coordinates `group` (node ids are 1.. in port order)."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    found = admin.describe_consumer_groups([group], request_timeout=10)[group].result(15)
    return ports[found.coordinator.id - 1]


def cluster(folder: Path, ports: list[int], variant: str, tally: Tally) -> tuple[float, float]:
    """The group's coordinator (one of 3 brokers) killed while files flow: the longest gap
    between files (watcher sent, downloader verified) from the kill on."""
    bootstrap = ",".join(f"127.0.0.1:{p}" for p in ports)
    cfg, topic = config(folder, bootstrap, variant), f"bench-clu-{uuid.uuid4().hex[:8]}"
    root, out, state = folder / f"root-{topic}", folder / f"out-{topic}", folder / f"state-{topic}"
    root.mkdir()
    wlog, dlog = folder / f"{topic}-watch.log", folder / f"{topic}-dl.log"
    watcher = start_watcher(root, cfg, topic, state, wlog)
    group = f"{topic}-g"
    downloader = cli("download", out, "--config", cfg, "--topic", topic, "--group", group, log=dlog)
    arrivals: dict[str, float] = {}
    killed, victim = float("inf"), ports[0]
    total = 120
    try:
        for i in range(total):
            (root / f"f{i:03d}").write_bytes(os.urandom(20_000))
            if i == 30:
                wait(lambda: len(list(out.glob("f*"))) >= 20 if out.exists() else False)
                victim = coordinator_port(bootstrap, group, ports)
                os.kill(broker.status(victim).pid or 0, signal.SIGKILL)
                killed = time.monotonic()
            note_arrivals(out, arrivals)
            time.sleep(0.1)
        wait(lambda: note_arrivals(out, arrivals) >= total, timeout=180)
    finally:
        stop(watcher, downloader)
        broker.start_cluster(ports, only=victim)
    tally.check(root, out, [dlog])
    return _longest_gap(killed, _stamps(wlog, "file sent")), _longest_gap(killed, arrivals.values())


def note_arrivals(out: Path, arrivals: dict[str, float]) -> int:
    for path in out.glob("f*") if out.exists() else []:
        arrivals.setdefault(path.name, time.monotonic())
    return len(arrivals)


def _longest_gap(since: float, times: Iterable[float]) -> float:
    after = [since, *sorted(t for t in times if t >= since)]
    return max(b - a for a, b in itertools.pairwise(after))


def _stamps(log: Path, what: str) -> list[float]:
    offset = time.monotonic() - time.time()
    return [
        time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")) + int(line[20:23]) / 1000 + offset
        for line in log.read_text().splitlines()
        if what in line
    ]


def verdict(figure: float, target: float) -> str:
    return f"target <= {target:g} {'ok' if figure <= target else 'MISSED'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--port", type=int, default=36092)
    parser.add_argument("--cluster-ports", default="36192,36193,36194")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--outage-seconds", type=float, default=12.0)
    parser.add_argument("--variants", default="before,after")
    parser.add_argument("--skip-cluster", action="store_true")
    parser.add_argument("--skip-outage", action="store_true")
    args = parser.parse_args()
    ports = [int(p) for p in args.cluster_ports.split(",")]
    tally = Tally()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if not args.skip_cluster:
            broker.start_cluster(ports)
        try:
            for variant in args.variants.split(","):
                run_variant(folder, variant, args, ports, tally)
        finally:
            if not args.skip_cluster:
                for port in ports:
                    broker.stop(port)
    print(
        f"all     files {tally.sent}: lost {tally.lost}, corrupt {tally.corrupt}, "
        f"verified twice {tally.twice}  {verdict(tally.lost + tally.corrupt + tally.twice, 0)}"
        f"  ({time.monotonic() - started:.0f} s in all)"
    )


def run_variant(folder: Path, variant: str, args: argparse.Namespace, ports: list[int], tally: Tally) -> None:
    name = f"{variant:<13}"
    kills = restart(folder, args.bootstrap, variant, args.rounds, tally)
    print(
        f"{name} kill -9 downloader, restart -> first verified file: "
        + " ".join(f"{s:.1f}s" for s in kills)
        + f"  {verdict(max(kills), TARGETS['restart'])}",
        flush=True,
    )
    if not args.skip_outage:
        watcher_s, downloader_s, lines = outage(folder, args.port, variant, args.outage_seconds, tally)
        print(
            f"{name} broker back after {args.outage_seconds:g}s -> watcher sent {watcher_s:.1f}s, "
            f"file downstream {downloader_s:.1f}s  "
            + verdict(max(watcher_s, downloader_s), TARGETS["resume"]),
            flush=True,
        )
        print(
            f"{name} problem log lines in that outage (both logs): {lines}  "
            + verdict(lines, TARGETS["lines"])
        )
    if not args.skip_cluster:
        upstream, downstream = cluster(folder, ports, variant, tally)
        print(
            f"{name} 3 nodes, group coordinator kill -9 -> longest pause: watcher {upstream:.1f}s, "
            f"downstream {downstream:.1f}s  {verdict(max(upstream, downstream), TARGETS['pause'])}",
            flush=True,
        )


if __name__ == "__main__":
    main()
