"""Getting bytes onto the disk before an offset moves past them, at the lowest cost.

Many small files finishing together are flushed with one `syncfs` (Linux) instead of one
`fsync` each; otherwise each file is fsync'd. Folders are fsync'd once after the renames.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from labstream.errors import OutputError

__all__ = ["flush_files", "flush_folders"]

SYNCFS_FROM_FILES = 8


def _load_syncfs() -> object | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.syncfs
    except (OSError, AttributeError):
        return None


_syncfs = _load_syncfs()


def flush_files(paths: list[Path], folder: Path) -> None:
    """Make the contents of `paths` (all on the filesystem of `folder`) durable; a path
    that no longer exists is skipped."""
    try:
        if _syncfs is not None and len(paths) >= SYNCFS_FROM_FILES:
            fd = os.open(folder, os.O_RDONLY)
            try:
                if _syncfs(fd) != 0:  # type: ignore[operator]
                    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
            finally:
                os.close(fd)
            return
        for path in paths:
            try:
                with open(path, "rb+") as handle:
                    os.fsync(handle.fileno())
            except FileNotFoundError:
                continue  # renamed into place by an earlier attempt, flushed then
    except OSError as exc:
        raise OutputError(f"cannot flush received files to disk in {folder}: {exc.strerror or exc}") from exc


def flush_folders(folders: Iterable[Path]) -> None:
    """fsync each folder once so the renames into it survive a power cut (POSIX only)."""
    if os.name != "posix":
        return
    for folder in set(folders):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
