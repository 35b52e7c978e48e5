"""One instance per state folder: an OS file lock held for the life of the process.

`InstanceLock(path, what)` locks `path` (created if needed) without waiting and writes the
holder's pid into it. Within one process the lock is re-entrant (a processor holds it
around its downloader), so it only ever keeps other processes out. The OS releases the
lock when the holder ends however it ends (kill -9 included), so a stale lock file never
blocks a restart. POSIX uses `flock` (Linux, macOS); Windows `msvcrt.locking` on a byte far
past the pid, which stays readable.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from types import TracebackType

from labstream.errors import AlreadyRunningError, ConfigError

__all__ = ["InstanceLock"]

# Windows locks are mandatory: lock a byte well past the pid so others can still read it.
_WINDOWS_LOCK_OFFSET = 1 << 20
_held: dict[Path, int] = {}  # lock files this process holds -> how many holders
_held_lock = threading.Lock()


class InstanceLock:
    """Context manager; `AlreadyRunningError` naming the holder's pid if another has it."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self._what = what
        self._fd: int | None = None
        self._key: Path | None = None

    def __enter__(self) -> InstanceLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            key = self.path.resolve()
        except OSError as exc:
            raise ConfigError(f"cannot create {self.path.parent}: {exc.strerror or exc}") from exc
        with _held_lock:
            if key in _held:
                _held[key] += 1
                self._key = key
                return self
            self._fd = self._acquire()
            _held[key] = 1
            self._key = key
        return self

    def _acquire(self) -> int:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
        except OSError as exc:
            raise ConfigError(f"cannot open the lock file {self.path}: {exc.strerror or exc}") from exc
        if not _try_lock(fd):
            holder = _read_pid(fd)
            os.close(fd)
            raise AlreadyRunningError(
                f"another {self._what} (pid {holder}) already uses {self.path.parent}; "
                "stop it first, or use another folder"
            )
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with _held_lock:
            if self._key is None:
                return
            _held[self._key] -= 1
            if _held[self._key] == 0:
                del _held[self._key]
            self._key = None
            if self._fd is not None:
                _unlock(self._fd)
                os.close(self._fd)
                self._fd = None


def _read_pid(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 32).decode("ascii", "replace").strip()
    return text if text.isdigit() else "unknown"


if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
