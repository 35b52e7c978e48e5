"""Locks shared by the pytest-xdist workers of one run (files in the run's common temp folder).

`turn(folder, exclusive)` is a readers-writer lock around each test: every test takes a
shared turn; a test marked `serial` takes an exclusive one, so it starts once the tests in
flight have ended and no other test starts until it is done. An exclusive turn waits holding
the turnstile, so shared turns queue behind it instead of starving it.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["flock", "turn"]


@contextmanager
def flock(path: Path, shared: bool = False) -> Iterator[None]:
    """flock(2) on `path` (created if missing) for the `with` block."""
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def turn(folder: Path, exclusive: bool) -> Iterator[None]:
    turnstile, turns = folder / "turnstile.lock", folder / "turns.lock"
    if exclusive:
        with flock(turnstile), flock(turns):
            yield
        return
    with open(turns, "a+b") as handle:
        with flock(turnstile):
            fcntl.flock(handle, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
