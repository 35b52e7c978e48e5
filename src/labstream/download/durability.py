"""Getting bytes onto the disk before an offset moves past them, at the lowest cost.

Many small files finishing together are flushed with one `syncfs` (Linux) instead of one
`fsync` each; otherwise each file is fsync'd. Folders are fsync'd once after the renames.
A large file's writing to disk starts while it is still arriving (`start_writeback`, Linux
`sync_file_range`), so its final fsync has little left to wait for: for a 2 GiB file that
wait was a second of idle cores at the end of the download.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from labstream.errors import OutputError

__all__ = ["WRITEBACK_BYTES", "flush_files", "flush_folders", "start_writeback"]

SYNCFS_FROM_FILES = 8
WRITEBACK_BYTES = 8 << 20  # a file's written bytes are sent to the disk in runs of this size
_SYNC_FILE_RANGE_WRITE = 2  # start writing the range's dirty pages; do not wait


def _libc_function(name: str, *argtypes: type) -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = getattr(libc, name)
    except (OSError, AttributeError):
        return None
    if argtypes:
        function.argtypes = argtypes
    return function


_syncfs = _libc_function("syncfs")
_sync_file_range = _libc_function(
    "sync_file_range", ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint
)


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing `length` bytes of `fd` from `offset` to disk, without waiting (Linux;
    elsewhere nothing). Only a head start for the fsync that makes them durable: a failure
    is ignored here, and that fsync reports it."""
    if _sync_file_range is not None and length > 0:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def flush_files(paths: list[Path], folder: Path) -> None:
    """Make the contents of `paths` (all on the filesystem of `folder`) durable; a path
    that no longer exists is skipped."""
    try:
        if _syncfs is not None and len(paths) >= SYNCFS_FROM_FILES:
            fd = os.open(folder, os.O_RDONLY)
            try:
                if _syncfs(fd) != 0:
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
