"""A real Apache Kafka broker for the session, started by labstream's own code.

LABSTREAM_TEST_BOOTSTRAP=host:port reuses a running broker instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from labstream import broker

from ..turns import flock
from .watchproc import kill_leftovers

TEST_PORT = int(os.environ.get("LABSTREAM_TEST_PORT", "29092"))


@pytest.fixture(scope="session")
def bootstrap(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Iterator[str]:
    given = os.environ.get("LABSTREAM_TEST_BOOTSTRAP")
    if given:
        yield given
        return
    # Under xdist each worker runs this fixture: the first starts the broker, the last one
    # done stops it if this run started it. Their basetemps share a parent, this run's own.
    base = tmp_path_factory.getbasetemp()
    shared = base if worker_id == "master" else base.parent
    with flock(shared / "broker.lock"):
        users = _users(shared)
        if users == 0:
            (shared / "broker.started").write_text("0" if broker.status(TEST_PORT).running else "1")
        state = broker.start(TEST_PORT)
        (shared / "broker.users").write_text(str(users + 1))
    yield state.bootstrap
    with flock(shared / "broker.lock"):
        users = _users(shared) - 1
        (shared / "broker.users").write_text(str(users))
        if users == 0 and (shared / "broker.started").read_text() == "1":
            broker.stop(TEST_PORT)


def _users(shared: Path) -> int:
    """How many workers of this run use the session broker now."""
    try:
        return int((shared / "broker.users").read_text())
    except FileNotFoundError:
        return 0


@pytest.fixture(autouse=True)
def no_leftover_watchers() -> Iterator[None]:
    yield
    kill_leftovers()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs (the test runs as root, as CI does here), grown later by remount."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def config_file(bootstrap: str, tmp_path: Path) -> Path:
    path = tmp_path / "test.config"
    path.write_text(
        f"[cluster]\nbootstrap.servers = {bootstrap}\n\n[producer]\n\n"
        "[consumer]\nauto.offset.reset = earliest\n"
    )
    return path


@pytest.fixture
def topic() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def stop_cluster(ports: list[int]) -> None:
    """Stop every node at once (6.8 s measured). One after another, the last node waited for a
    quorum already gone until broker.stop's 30 s ran out and it was killed."""
    with ThreadPoolExecutor(len(ports)) as pool:
        list(pool.map(broker.stop, ports))


def labstream(
    *args: str | os.PathLike[str], timeout: float = 180.0, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess, as a user would."""
    done = subprocess.run(
        [sys.executable, "-m", "labstream", *map(str, args)], capture_output=True, text=True, timeout=timeout
    )
    if check and done.returncode != 0:
        raise AssertionError(f"labstream {args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done
