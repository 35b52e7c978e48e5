"""The one-instance lock: held across processes, gone when its holder dies (even kill -9)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from labstream.errors import AlreadyRunningError
from labstream.locks import InstanceLock

HOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from labstream.locks import InstanceLock
    with InstanceLock(Path(sys.argv[1]), "watcher"):
        print("locked", flush=True)
        time.sleep(600)
    """
)


def hold(path: Path) -> subprocess.Popen[str]:
    """Another process that takes the lock and keeps it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True, env=os.environ
    )
    assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
    return proc


def test_second_process_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    lock = tmp_path / "state" / "lock"
    holder = hold(lock)
    try:
        refused = rf"another watcher \(pid {holder.pid}\) already uses"
        with pytest.raises(AlreadyRunningError, match=refused), InstanceLock(lock, "watcher"):
            pass
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()


def test_lock_of_a_killed_holder_is_free_again(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    holder = hold(lock)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert holder.stdout is not None
    holder.stdout.close()
    assert lock.read_text() == f"{holder.pid}\n"  # the stale file stays and does not matter
    with InstanceLock(lock, "watcher"):
        assert lock.read_text() == f"{os.getpid()}\n"


def test_reentrant_in_one_process_and_released_after(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    with InstanceLock(lock, "processor"), InstanceLock(lock, "downloader"):
        pass
    holder = hold(lock)  # released: another process can take it
    holder.kill()
    holder.wait()
    assert holder.stdout is not None
    holder.stdout.close()
