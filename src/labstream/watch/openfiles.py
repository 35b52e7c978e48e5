"""Is another process still writing a file? Asked of the OS where it can tell.

Linux: /proc/<pid>/fdinfo says which open files are open for writing (one scan per check,
for all candidates at once). Windows: a file another program holds open for writing cannot
be opened for writing again. Elsewhere: unknown, and the settle time alone decides.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["open_for_writing"]

_WRITE_MODES = (os.O_WRONLY, os.O_RDWR)


def open_for_writing(paths: list[Path]) -> set[Path]:
    """The subset of `paths` that some process (other than this one) has open for writing."""
    if not paths:
        return set()
    if sys.platform.startswith("linux") and Path("/proc/self/fdinfo").is_dir():
        return _linux(paths)
    if sys.platform == "win32":
        return {p for p in paths if _windows_locked(p)}
    return set()


def _linux(paths: list[Path]) -> set[Path]:
    wanted = {os.path.realpath(p): p for p in paths}
    busy: set[Path] = set()
    me = str(os.getpid())
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid == me:
            continue
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # gone, or not ours to look at
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if target in wanted and _opened_for_writing(pid, fd):
                busy.add(wanted[target])
    return busy


def _opened_for_writing(pid: str, fd: str) -> bool:
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}") as handle:
            for line in handle:
                if line.startswith("flags:"):
                    return (int(line.split()[1], 8) & 0o3) in _WRITE_MODES
    except (OSError, ValueError):
        return False
    return False


def _windows_locked(path: Path) -> bool:
    if not os.access(path, os.W_OK):
        return False  # read-only: nobody is writing it, and we could not open it to ask
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    except PermissionError:
        return True
    except OSError:
        return False
    os.close(fd)
    return False
