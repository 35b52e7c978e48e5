"""Start, stop and inspect the single-node KRaft broker; start is idempotent."""

from __future__ import annotations

import base64
import errno
import logging
import os
import random
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from labstream.broker.jars import cache_root, kafka_libs, require_java
from labstream.errors import BrokerSetupError, KafkaError
from labstream.kafka import ping, wait_for_coordinator
from labstream.processes import pid_alive

__all__ = [
    "BrokerStatus",
    "cluster_id_for",
    "format_storage",
    "free_port",
    "start",
    "start_cluster",
    "state_dir",
    "status",
    "stop",
]

logger = logging.getLogger(__name__)
HEAP = ["-Xms256m", "-Xmx768m"]
START_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 30.0
# A node killed without a goodbye (kill -9, power loss) keeps its partition leaderships, its
# place in every ISR (acks=all waits for it) and the group coordinators it hosts until the
# active controller fences it: `broker.session.timeout.ms` (9 s by default) without a
# heartbeat. Every client pauses that long (measured 9.4 s upstream, 10.6 s downstream).
# 3 s with a heartbeat every 0.5 s still tolerates a 2.5 s GC or scheduling stall of a
# healthy node on a busy machine. A lab's own cluster needs the same two lines to recover
# within seconds (see the README, "Recovery").
FAILOVER_PROPERTIES = """\
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=500
"""
# Brokers started by this process, kept so their Popen objects are reaped by stop().
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class BrokerStatus:
    bootstrap: str
    running: bool
    pid: int | None
    log: Path


def state_dir(port: int) -> Path:
    return cache_root() / f"broker-{port}"


def status(port: int = 9092) -> BrokerStatus:
    folder = state_dir(port)
    pid = _read_pid(folder)
    return BrokerStatus(f"127.0.0.1:{port}", _answers(port, 2.0), pid, folder / "broker.log")


def start(port: int = 9092, timeout: float = START_TIMEOUT_SECONDS) -> BrokerStatus:
    """Run the broker unless one already answers on `port`; return once it answers and its
    coordinators are ready (so a first idempotent producer gets its id without warnings)."""
    if _answers(port, 2.0):
        return status(port)
    _require_free(port)
    process = _launch(port, [port])
    _wait_until_up(process, port, timeout, state_dir(port) / "broker.log")
    wait_for_coordinator({"bootstrap.servers": f"127.0.0.1:{port}"}, timeout)
    return status(port)


def start_cluster(
    ports: list[int], timeout: float = START_TIMEOUT_SECONDS, only: int | None = None
) -> list[BrokerStatus]:
    """A KRaft cluster of len(ports) nodes (each broker and controller), replication factor
    3 and min.insync.replicas 2 by default; `only` (re)starts just that node."""
    wanted = [p for p in ports if (only is None or p == only) and not _answers(p, 2.0)]
    for port in wanted:
        _require_free(port)
    launched = {p: _launch(p, ports) for p in wanted}
    for port, process in launched.items():
        _wait_until_up(process, port, timeout, state_dir(port) / "broker.log")
    return [status(p) for p in ports]


def _launch(port: int, cluster: list[int]) -> subprocess.Popen[bytes]:
    previous = _children.pop(port, None)
    if previous is not None:
        previous.poll()  # reap a node that was killed, before starting it again
    java = require_java()
    libs = kafka_libs()
    folder = state_dir(port)
    folder.mkdir(parents=True, exist_ok=True)
    properties = _write_properties(folder, port, cluster)
    classpath = f"{libs}{os.sep}*"
    if not (folder / "data" / "meta.properties").exists():
        format_storage(java, classpath, properties, folder, cluster_id_for(cluster))
    log4j2 = resources.files("labstream.broker") / "log4j2.properties"
    command = [
        java,
        *HEAP,
        f"-Dlog4j2.configurationFile={log4j2}",
        f"-Dlabstream.broker.log={folder / 'broker.log'}",
        "-cp",
        classpath,
        "kafka.Kafka",
        str(properties),
    ]
    # The broker logs to broker.log itself (size-capped, rotated); stdout only gets what the
    # JVM prints before logging starts (a crash, a bad option).
    with open(folder / "broker.out", "ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    (folder / "broker.pid").write_text(f"{process.pid}\n")
    _children[port] = process
    return process


def cluster_id_for(cluster: list[int]) -> str:
    """A random id for one node, the same id for every node of `cluster` (its ports)."""
    if len(cluster) == 1:
        return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    # Every node of a cluster must be formatted with the same id.
    stable = uuid.uuid5(uuid.NAMESPACE_URL, "labstream-cluster-" + "-".join(map(str, cluster)))
    return base64.urlsafe_b64encode(stable.bytes).decode().rstrip("=")


def stop(port: int = 9092) -> bool:
    """Stop the broker this program started on `port`; False if none was running."""
    folder = state_dir(port)
    pid = _read_pid(folder)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    child = _children.pop(port, None)
    if child is not None:
        child.wait()
    (folder / "broker.pid").unlink(missing_ok=True)
    return True


def _controller_port(port: int) -> int:
    """The node's controller port: chosen free once and recorded in its state folder.

    Folders formatted before the port was recorded keep the old port+10000 rule, since
    their quorum was formatted with it.
    """
    folder = state_dir(port)
    recorded = folder / "controller.port"
    try:
        return int(recorded.read_text().strip())
    except (OSError, ValueError):
        pass
    if (folder / "data" / "meta.properties").exists():
        chosen = port + 10000 if port + 10000 <= 65535 else port - 10000
    else:
        chosen = free_port(avoid=port)
    folder.mkdir(parents=True, exist_ok=True)
    recorded.write_text(f"{chosen}\n")
    return chosen


def free_port(avoid: int = 0) -> int:
    """A port free now and outside the range the OS hands out for outgoing connections, so a
    client's connection cannot be holding it when a broker (re)starts there."""
    low, high = _ephemeral_range()
    candidates = [p for p in range(20000, 65536) if not low <= p <= high and p != avoid]
    start = random.randrange(len(candidates))
    for port in candidates[start:] + candidates[:start]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise BrokerSetupError("no free port for the broker's controller outside the ephemeral range")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 49152, 65535  # the IANA range: Windows and macOS use it


def _require_free(port: int) -> None:
    """A clear error when another program holds `port` (the broker's own log would bury it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the broker itself does: a port left in TIME_WAIT by a stopped broker is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise BrokerSetupError(f"cannot use port {port}: {exc.strerror}") from exc
            raise BrokerSetupError(
                f"port {port} is in use by another program; choose another with --port"
            ) from exc


def _write_properties(folder: Path, port: int, cluster: list[int]) -> Path:
    cport = _controller_port(port)
    voters = ",".join(f"{i + 1}@127.0.0.1:{_controller_port(p)}" for i, p in enumerate(cluster))
    replicas = min(3, len(cluster))
    text = f"""\
process.roles=broker,controller
node.id={cluster.index(port) + 1}
controller.quorum.voters={voters}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={folder / "data"}
num.partitions=4
auto.create.topics.enable=true
default.replication.factor={replicas}
min.insync.replicas={max(1, replicas - 1)}
offsets.topic.replication.factor={replicas}
transaction.state.log.replication.factor={replicas}
transaction.state.log.min.isr={max(1, replicas - 1)}
share.coordinator.state.topic.replication.factor={replicas}
share.coordinator.state.topic.min.isr={max(1, replicas - 1)}
group.initial.rebalance.delay.ms=0
"""
    if len(cluster) > 1:
        text += FAILOVER_PROPERTIES
    path = folder / "server.properties"
    path.write_text(text)
    return path


def format_storage(
    java: str, classpath: str, properties: Path, folder: Path, cluster_id: str, extra: Sequence[str] = ()
) -> None:
    """Format a broker's storage (`extra`: more StorageTool arguments, e.g. --add-scram);
    `BrokerSetupError` with StorageTool's last lines if it fails."""
    command = [
        java,
        "-cp",
        classpath,
        "kafka.tools.StorageTool",
        "format",
        # One argument: a base64 id may start with "-", which "-t ID" would read as an option
        # (1 time in 64 for a random id: "argument --cluster-id/-t: expected one argument").
        f"--cluster-id={cluster_id}",
        "-c",
        str(properties),
        *extra,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise BrokerSetupError(
            f"formatting the broker storage in {folder} failed: "
            + " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        )


def _wait_until_up(process: subprocess.Popen[bytes], port: int, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = _tail(log.with_name("broker.out")) + _tail(log)
            raise BrokerSetupError(
                f"the Kafka broker exited with status {process.returncode}; "
                f"last lines of {log}: " + " | ".join(tail)
            )
        if _answers(port, 2.0):
            return
        time.sleep(0.5)
    process.kill()
    raise BrokerSetupError(f"the Kafka broker did not answer on port {port} within {timeout:g} s (see {log})")


def _tail(path: Path, lines: int = 5) -> list[str]:
    try:
        return path.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return []


def _answers(port: int, timeout: float) -> bool:
    try:
        ping({"bootstrap.servers": f"127.0.0.1:{port}"}, timeout)
    except KafkaError:  # nobody, or something that is not a Kafka broker we can use
        return False
    return True


def _read_pid(folder: Path) -> int | None:
    try:
        pid = int((folder / "broker.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None
