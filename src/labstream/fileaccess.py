"""Reading files below a folder without ever reading outside it: links, special files, names.

Input: a path found below a tree (the watched folder, a folder given to `upload`), or a file
named on the command line. Output: either a reason it is not sent, or a file opened for
reading that is checked to be a regular file inside the tree.

- Links (symbolic links; on Windows junctions and other name-surrogate reparse points) are
  not followed unless `follow_links`; followed, a link must lead to a regular file inside
  the tree. Links to folders are never descended: a folder inside the tree is sent under
  its own path already, and one outside is not ours to send.
- Only regular files are read: FIFOs, sockets and devices are refused before they are
  opened, and again after (opened non-blocking, so a FIFO never hangs the reader).
- What was opened is what is checked: the descriptor's `fstat` must be a regular file and
  the same file (device, inode) that a link-free path inside the tree leads to after the
  open. A file swapped for a link between a look and the open is therefore refused, never
  read (`O_NOFOLLOW` refuses a final link at once where the OS has it).
- Names must travel: valid UTF-8 and a safe relative path (`labstream.wire.paths`); on
  Windows also no device name (CON, NUL.txt), which would open the device.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from io import FileIO
from pathlib import Path
from typing import Protocol

from labstream.errors import SourceFileError, UnsafePathError
from labstream.wire.paths import check_relative_path, check_windows_name

__all__ = [
    "Tree",
    "entry_refusal",
    "kind_of",
    "link_kind",
    "name_refusal",
    "open_regular",
    "refusal",
    "walk",
]

# Windows reparse tags with this bit stand for another name (symbolic links, junctions);
# others (OneDrive placeholders, deduplicated files) are the file itself and are read.
_NAME_SURROGATE = 0x20000000
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)


class StatLike(Protocol):
    """What the decisions read of an `os.stat_result` (fabricated ones in tests)."""

    @property
    def st_mode(self) -> int: ...


@dataclass(frozen=True)
class Tree:
    """A folder whose files may be read; `root` is made absolute with its links resolved."""

    root: Path
    follow_links: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(os.path.realpath(self.root)))

    def inside(self, real: str) -> bool:
        """Whether the link-free absolute path `real` lies below the root."""
        root = str(self.root)
        return real.startswith(root.rstrip(os.sep) + os.sep)


def link_kind(st: StatLike) -> str | None:
    """'a symbolic link', 'a junction or other link' (a Windows reparse point that stands
    for another name), or None for anything else."""
    if stat.S_ISLNK(st.st_mode):
        return "a symbolic link"
    attributes = getattr(st, "st_file_attributes", 0)
    if attributes & stat.FILE_ATTRIBUTE_REPARSE_POINT:
        tag = getattr(st, "st_reparse_tag", 0)
        if not tag or tag & _NAME_SURROGATE:  # an unknown tag counts as a link: refused
            return "a junction or other link (reparse point)"
    return None


def kind_of(st: StatLike) -> str | None:
    """What a non-regular file is ('a FIFO', 'a device', ...); None for a regular file."""
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return None
    for test, kind in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def refusal(
    entry: StatLike,
    *,
    follow_links: bool,
    target: StatLike | None = None,
    target_inside: bool = True,
) -> str | None:
    """Why the file whose own (not followed) stat is `entry` is not sent, or None.

    For a link, `target` is the stat of what it leads to (None: broken, or a loop) and
    `target_inside` whether that lies inside the tree; both matter only with `follow_links`.
    """
    link = link_kind(entry)
    if link is None:
        kind = kind_of(entry)
        return None if kind is None else f"{kind}, not a regular file"
    if not follow_links:
        return f"{link}, not followed (--follow-links sends links to files inside the folder)"
    if target is None:
        return f"{link} that is broken or part of a loop"
    if not target_inside:
        return f"{link} to outside the folder, refused"
    if stat.S_ISDIR(target.st_mode):
        return f"{link} to a folder, not followed (its files are sent under their own path)"
    kind = kind_of(target)
    return None if kind is None else f"{link} to {kind}, not a regular file"


def entry_refusal(path: Path, tree: Tree) -> str | None:
    """Why `path` (found below `tree`) is not sent, or None; looks, does not open.

    A path under a linked folder is refused too (watchdog may report one)."""
    try:
        entry = os.lstat(path)
        parent = os.path.realpath(path.parent)
    except OSError as exc:
        return f"cannot look at it: {exc.strerror or exc}"
    if parent != str(tree.root) and not tree.inside(parent):
        return "below a linked folder, not followed"
    if link_kind(entry) is None or not tree.follow_links:
        return refusal(entry, follow_links=tree.follow_links)
    real = os.path.realpath(path)
    try:
        target: os.stat_result | None = os.stat(real)
    except OSError:
        target = None
    return refusal(entry, follow_links=True, target=target, target_inside=tree.inside(real))


def walk(folder: Path) -> list[Path]:
    """Every file below `folder`, and every linked folder as an entry of its own: links to
    folders (junctions included) are never descended, so loops end and nothing outside is
    listed. Folders that cannot be listed are passed over (the next scan tries again)."""
    found: list[Path] = []
    for parent, dirs, names in os.walk(folder):
        here = Path(parent)
        linked = [d for d in dirs if _is_link(here / d)]
        dirs[:] = sorted(d for d in dirs if d not in linked)
        found.extend(here / name for name in sorted([*names, *linked]))
    return found


def _is_link(path: Path) -> bool:
    try:
        return link_kind(os.lstat(path)) is not None
    except OSError:
        return True  # gone or unreadable: not descended; judged as an entry


def name_refusal(relpath: str, *, windows: bool = sys.platform == "win32") -> str | None:
    """Why a file cannot travel under `relpath`, or None. Not UTF-8 (an old instrument, a
    copied USB stick): its bytes are kept as surrogate escapes, which no receiver could
    restore faithfully, so it is refused; it is named with `labstream.logsafe.shown`."""
    try:
        relpath.encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8"
    try:
        check_relative_path(relpath)
        if windows:  # CON, NUL.txt: opening such a name opens the device
            check_windows_name(relpath)
    except UnsafePathError as exc:
        return f"cannot be sent under this name: {str(exc).split(':', 1)[0]}"
    return None


def open_regular(path: Path, tree: Tree | None, name: str | None = None) -> FileIO:
    """`path` opened for reading, checked after the open (see the module docstring).

    `tree` None: a file named on the command line; links are followed (the user named
    it), but it must be a regular file. Else `path` lies below `tree.root` as given.
    Raises `SourceFileError` starting with `name` (default: the path) and the reason."""
    name = str(path) if name is None else name
    follow = tree is None or tree.follow_links
    try:
        fd = os.open(path, _OPEN_FLAGS | (0 if follow else _NOFOLLOW))
    except OSError as exc:
        raise SourceFileError(f"{name}: {_open_failure(path, exc)}") from exc
    try:
        opened = os.fstat(fd)
        kind = kind_of(opened)
        why = f"{kind}, not a regular file" if kind else None
        if why is None and tree is not None:
            why = _not_in_tree(path, opened, tree)
        if why is not None:
            raise SourceFileError(f"{name}: {why}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return FileIO(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise


def _open_failure(path: Path, exc: OSError) -> str:
    """An open refused by `O_NOFOLLOW` says so; anything else keeps the OS's reason."""
    try:
        link = link_kind(os.lstat(path))
    except OSError:
        link = None
    if link is not None:
        return f"{link}, not followed"
    return f"cannot read: {exc.strerror or exc}"


def _not_in_tree(path: Path, opened: os.stat_result, tree: Tree) -> str | None:
    """None if the open file is the one a path inside `tree` leads to after the open:
    without following links, the path itself with no link in any part."""
    real = os.path.realpath(path)
    if tree.follow_links and not tree.inside(real):
        return "a link to outside the folder, refused"
    if not tree.follow_links and real != os.path.abspath(path):
        return "a link, or below a linked folder, not followed"
    try:
        there = os.stat(real)
    except OSError:
        there = None
    if there is None or (there.st_dev, there.st_ino) != (opened.st_dev, opened.st_ino):
        return "replaced while it was opened, not read"
    return None
