"""Files to send: which ones, under which relative path, with which size and SHA-256."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from labstream.errors import SourceFileError
from labstream.wire import check_relative_path

__all__ = ["SourceFile", "collect", "hash_file", "relative_path"]

READ_SIZE = 1 << 20


@dataclass(frozen=True)
class SourceFile:
    """One file on disk and the relative path it travels under."""

    path: Path
    relpath: str


def relative_path(path: Path, root: Path) -> str:
    """The '/'-separated path of `path` below `root`, checked for safety."""
    rel = path.relative_to(root).as_posix()
    return check_relative_path(rel)


def collect(paths: Iterable[str | os.PathLike[str]]) -> Iterator[SourceFile]:
    """Files named directly travel by name; folders contribute their files, subfolders kept."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for found in sorted(p for p in path.rglob("*") if p.is_file()):
                yield SourceFile(found, relative_path(found, path))
        elif path.is_file():
            yield SourceFile(path, check_relative_path(path.name))
        else:
            raise SourceFileError(f"{path}: no such file or folder")


def hash_file(path: Path, hash_name: str = "sha256") -> tuple[int, bytes]:
    """Size and digest of a file, read in 1 MiB pieces (hashlib releases the GIL)."""
    digest = hashlib.new(hash_name)
    buffer = bytearray(READ_SIZE)
    view = memoryview(buffer)
    size = 0
    try:
        with open(path, "rb", buffering=0) as handle:
            while n := handle.readinto(buffer):
                digest.update(view[:n])
                size += n
    except OSError as exc:
        raise SourceFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return size, digest.digest()
