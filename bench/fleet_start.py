"""bench/fleet.py's fleet: downloaders, a dashboard and the instruments' watchers started (in
waves, each watcher waited for), sampled from /proc, and stopped; `--threads` runs the
watchers as threads of one host process."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleet_proc import Child, cli, proc_usage, wait_until

from labstream.errors import BrokerUnreachableError

FLEET = Path(__file__).with_name("fleet.py")
READY = "watching folder="  # a watcher's first scan is done
START_SECONDS = 60.0  # one watcher's start-up, at most (with at most --start-batch others)
START_ATTEMPTS = 3  # a watcher's starts, at most
HOST_STAGGER_SECONDS = 0.5  # --threads: between two watchers' starts


@dataclass
class Fleet:
    root: Path
    config: Path
    bootstrap: str
    topic: str
    args: argparse.Namespace
    folders: dict[str, Path] = field(default_factory=dict)
    outs: list[Path] = field(default_factory=list)
    children: list[Child] = field(default_factory=list)
    dashboard_url: str = ""
    args_of: dict[str, list[object]] = field(default_factory=dict)  # a watcher's arguments, by name
    restarts: dict[str, int] = field(default_factory=dict)  # watcher -> start-up restarts
    ready_seconds: list[float] = field(default_factory=list)  # each watcher: start -> first scan
    start_seconds: float = 0.0  # the first watcher's start -> the last one ready

    @property
    def heartbeats(self) -> str:
        return f"{self.topic}.heartbeats"

    def by_role(self, *roles: str) -> list[Child]:
        return [c for c in self.children if c.role in roles]

    def start(self) -> None:
        """Downloaders and dashboard start with the first watchers, and are waited for after."""
        self._start_downloaders()
        dashboard = self._start_dashboard()
        self._start_instruments()
        self._wait_dashboard(dashboard)
        wait_until(self._downloaders_assigned, 120, "the downloaders to be assigned partitions")

    def _common(self) -> list[object]:
        return ["--config", self.config, "--update-seconds", "-1", "--heartbeat-topic", self.heartbeats]

    def _start_downloaders(self) -> None:
        for g in range(self.args.downloaders):
            out = self.root / f"out-{g}"
            self.outs.append(out)
            log = self.root / f"download-{g}.log"
            args: list[object] = ["download", out, *self._common(), "--topic", self.topic]
            args += ["--group", f"{self.topic}-group", "--placement", "by-source"]
            self.children.append(Child(f"download-{g}", "download", cli(args, log), log))

    def _downloaders_assigned(self) -> bool:
        return all("assigned" in c.text() or c.proc.poll() is not None for c in self.by_role("download"))

    def _start_dashboard(self) -> Child:
        log = self.root / "dashboard.log"
        args: list[object] = ["dashboard", "--config", self.config, "--port", "0"]
        args += ["--state", self.root / "dashboard", "--heartbeat-topic", self.heartbeats]
        args += ["--receipts-topic", f"{self.topic}.receipts"]
        child = Child("dashboard", "dashboard", cli(args, log), log)
        self.children.append(child)
        return child

    def _wait_dashboard(self, child: Child) -> None:
        wait_until(lambda: "dashboard at " in child.text() or child.proc.poll() is not None, 120, "dashboard")
        found = re.search(r"dashboard at (\S+)", child.text())
        if found is None:
            raise SystemExit(f"the dashboard did not start:\n{child.text()}")
        self.dashboard_url = found.group(1).rstrip("/")

    def _instrument_args(self, i: int) -> list[object]:
        source = f"inst{i:03d}"
        folder = self.root / "instruments" / source
        folder.mkdir(parents=True)
        self.folders[source] = folder
        args: list[object] = [folder, "--topic", self.topic, "--source", source]
        args += ["--state", self.root / "state" / source, "--settle-seconds", self.args.settle_seconds]
        self.args_of[f"watch-{source}"] = args
        return args

    def _start_instruments(self) -> None:
        """At most --start-batch watchers start at a time (auto: 2 per core): as each one makes
        its first scan the next starts, so the start keeps pace with the machine however many
        there are. 50 Python processes started at once on two cores missed their 10 s broker
        check (measured); each watcher here has START_SECONDS of its own to become ready."""
        specs = [self._instrument_args(i) for i in range(self.args.instruments)]
        started = time.monotonic()
        if self.args.threads:
            self._start_host(specs)
            (host_child,) = self.by_role("watch-host")
            deadline = START_SECONDS + HOST_STAGGER_SECONDS * len(specs)  # grows with the fleet
            wait_until(
                lambda: self._host_ready(host_child, len(specs)), deadline, f"{len(specs)} watcher threads"
            )
        else:
            self._start_rolling(specs, self.args.start_batch or 2 * (os.cpu_count() or 1))
        self.start_seconds = time.monotonic() - started

    def _start_rolling(self, specs: list[list[object]], window: int) -> None:
        waiting = list(specs)
        starting: dict[str, float] = {}  # watcher -> when its current attempt began
        launched: dict[str, float] = {}  # watcher -> when it was first started
        while waiting or starting:
            while waiting and len(starting) < window:
                child = self._start_watcher(waiting.pop(0))
                self.children.append(child)
                starting[child.name] = launched[child.name] = time.monotonic()
            for child in [c for c in self.by_role("watch") if c.name in starting]:
                now = time.monotonic()
                if READY in child.text():
                    del starting[child.name]
                    self.ready_seconds.append(now - launched[child.name])
                elif child.proc.poll() is not None:
                    self._restart(child)
                    starting[child.name] = now
                elif now - starting[child.name] > START_SECONDS:
                    raise SystemExit(f"{child.name} not ready after {START_SECONDS:g} s:\n{child.text()}")
            time.sleep(0.1)

    def _restart(self, child: Child) -> None:
        """A watcher that gave up its 10 s start-up broker check is started again (up to
        START_ATTEMPTS times); anything else it exits with ends the run."""
        gave_up = "no Kafka broker answered" in child.text()
        attempts = self.restarts.get(child.name, 0)
        if not gave_up or attempts + 1 >= START_ATTEMPTS:
            raise SystemExit(f"{child.name} exited:\n{child.text()}")
        self.restarts[child.name] = attempts + 1
        child.proc = self._start_watcher(self.args_of[child.name]).proc

    def _host_ready(self, child: Child, need: int) -> bool:
        if child.proc.poll() is not None:
            raise SystemExit(f"the watcher host exited:\n{child.text()}")
        return child.text().count(READY) >= need

    def _start_watcher(self, spec: list[object]) -> Child:
        log = self.root / f"watch-{spec[4]}.log"
        return Child(f"watch-{spec[4]}", "watch", cli(["watch", *spec, *self._common()], log), log)

    @property
    def start_retries(self) -> int:
        return sum(self.restarts.values())

    def _start_host(self, specs: list[list[object]]) -> None:
        spec = self.root / "host.json"
        spec.write_text(json.dumps([[*map(str, s), *map(str, self._common())] for s in specs]))
        log = self.root / "watch-host.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, str(FLEET), "--host", str(spec)], stdout=out, stderr=subprocess.STDOUT
            )
        self.children.append(Child("watch-host", "watch-host", proc, log, members=len(specs)))

    def sample(self, attribute: str) -> None:
        """Record every live child's CPU seconds in `attribute`, and its peak RSS so far."""
        for child in self.children:
            if child.proc.poll() is None:
                cpu, peak = proc_usage(child.proc.pid)
                setattr(child, attribute, cpu)
                child.peak_rss_mib = max(child.peak_rss_mib, peak)

    def stop(self) -> None:
        """SIGTERM the watchers first (nothing more is sent), then the downloaders and dashboard."""
        for roles in (("watch", "watch-host"), ("download", "dashboard")):
            group = self.by_role(*roles)
            for child in group:
                if child.proc.poll() is None:
                    child.proc.send_signal(signal.SIGTERM)
            for child in group:
                try:
                    child.code = child.proc.wait(120)
                except subprocess.TimeoutExpired:
                    child.proc.kill()
                    child.code = child.proc.wait()


# --- --threads: the watchers as threads of one process -----------------------------------------


def host(spec: Path) -> None:
    """Run every watcher of `spec` with `run_watch` in a thread; SIGTERM stops them all."""
    from labstream.cli.watch import watch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threads = [
        threading.Thread(target=_host_one, args=(watch, argv, stop), name=f"watch-{argv[4]}")
        for argv in json.loads(spec.read_text())
    ]
    for thread in threads:  # staggered, as the processes are: start-up is the busy part
        thread.start()
        stop.wait(HOST_STAGGER_SECONDS)
    for thread in threads:
        thread.join()


def _host_one(command: Any, argv: list[str], stop: threading.Event) -> None:
    from labstream.cli.globals import load
    from labstream.runners import run_watch
    from labstream.runners.console import QUIET
    from labstream.settings import watch_settings

    context = command.make_context("watch", list(argv))
    given = dict(context.params)
    directory, config_name = given.pop("directory"), given.pop("config_name")
    settings = watch_settings(load(config_name), {"file_directory": directory, **given})
    for attempt in range(3):  # the 10 s start-up broker check, on an overloaded machine
        try:
            run_watch(settings, stop, console=QUIET)
            return
        except BrokerUnreachableError:
            logging.getLogger("bench.fleet").warning("watcher start retried attempt=%d", attempt + 1)
    run_watch(settings, stop, console=QUIET)
