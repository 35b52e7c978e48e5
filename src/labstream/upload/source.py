"""Files to send: which ones, under which relative path, with which size and SHA-256."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from io import FileIO
from pathlib import Path

from labstream.errors import SourceFileError
from labstream.fileaccess import Tree, entry_refusal, kind_of, open_regular, walk
from labstream.logsafe import shown
from labstream.wire import check_relative_path

__all__ = ["OnSkip", "SourceFile", "collect", "hash_file", "open_source", "relative_path"]

logger = logging.getLogger(__name__)
READ_SIZE = 1 << 20
OnSkip = Callable[[str, str], None]  # (path shown escaped, reason): not sent, by design


@dataclass(frozen=True)
class SourceFile:
    """One file on disk and the relative path it travels under."""

    path: Path
    relpath: str
    # The folder it was found in: read only inside it (labstream.fileaccess). None: named
    # on the command line, links followed, a regular file all the same.
    tree: Tree | None = None


def relative_path(path: Path, root: Path) -> str:
    """The '/'-separated path of `path` below `root`, checked for safety."""
    rel = path.relative_to(root).as_posix()
    return check_relative_path(rel)


def collect(
    paths: Iterable[str | os.PathLike[str]],
    *,
    follow_links: bool = False,
    on_skip: OnSkip | None = None,
) -> Iterator[SourceFile]:
    """Files named directly travel by name; folders contribute their files, subfolders kept.

    Below a folder, links (unless `follow_links`, and then only to files inside it) and
    special files are skipped with one call of `on_skip` each (default: a warning line). A
    name that cannot travel is still listed: the sender refuses that file alone. A path
    named directly that is not a file or folder is refused (`SourceFileError`)."""
    skip = on_skip or _log_skip
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from _below(Tree(path, follow_links), skip)
        elif path.is_file():
            yield SourceFile(path, path.name)
        else:
            raise SourceFileError(f"{shown(path)}: {_not_a_file(path)}")


def _below(tree: Tree, skip: OnSkip) -> Iterator[SourceFile]:
    for found in walk(tree.root):
        relpath = found.relative_to(tree.root).as_posix()
        why = entry_refusal(found, tree)
        if why is None:
            yield SourceFile(found, relpath, tree)
        else:
            skip(shown(relpath), why)


def _log_skip(name: str, why: str) -> None:
    logger.warning("skipped file=%s reason=%s", name, why)


def _not_a_file(path: Path) -> str:
    """Why a path named on the command line is not sent: missing, or what it is instead."""
    try:
        st = os.stat(path)
    except OSError as exc:
        if os.path.lexists(path):
            return f"a link that is broken or part of a loop ({exc.strerror or exc})"
        return "no such file or folder"
    return f"{kind_of(st)}, not a regular file; nothing was sent"


def open_source(source: SourceFile) -> FileIO:
    """`source` opened for reading, only if it is what it should be (labstream.fileaccess)."""
    return open_regular(source.path, source.tree, shown(source.relpath))


def hash_file(path: Path | SourceFile, hash_name: str = "sha256") -> tuple[int, bytes]:
    """Size and digest of a file, read in 1 MiB pieces (hashlib releases the GIL)."""
    source = path if isinstance(path, SourceFile) else SourceFile(path, str(path))
    digest = hashlib.new(hash_name)
    buffer = bytearray(READ_SIZE)
    view = memoryview(buffer)
    size = 0
    try:
        with open_source(source) as handle:
            while n := handle.readinto(buffer):
                digest.update(view[:n])
                size += n
    except OSError as exc:
        raise SourceFileError(f"{source.relpath}: cannot read: {exc.strerror or exc}") from exc
    return size, digest.digest()
