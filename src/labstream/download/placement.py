"""Where a received file goes: always inside the output folder, never over our own state.

Also the one place that says what an operating-system error while writing means:

- no space, quota (ENOSPC, EDQUOT): `OutputError`, retriable: wait, offsets held;
- permission denied, read-only (EACCES, EPERM, EROFS) on the output folder itself:
  `OutputAccessError`, the downloader stops with one line (exit 1); the same error on one
  file's name inside a writable output folder is that file's problem, see next;
- anything else (a file where a folder is needed or the reverse, a name too long, an
  invalid name, a loop of links, ...): `PlacementError`, a per-file failure.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

from labstream.errors import OutputAccessError, OutputError, PlacementError, UnsafePathError
from labstream.logsafe import shown
from labstream.wire import check_relative_path
from labstream.wire.paths import STATE_DIRNAME, check_windows_name

__all__ = ["STATE_DIRNAME", "TargetFolders", "check_writable", "output_error", "target_path"]

_WAIT_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
_ACCESS_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def output_error(exc: OSError, what: str, out_dir: Path) -> OutputError:
    """The labstream error for `exc`, raised while doing `what` (already escaped) in `out_dir`."""
    message = f"{what}: {exc.strerror or exc}"
    if exc.errno in _WAIT_ERRNOS:
        return OutputError(message)
    if exc.errno in _ACCESS_ERRNOS and not _writable(out_dir):
        return OutputAccessError(f"{message} (the output folder {out_dir} cannot be written)")
    return PlacementError(message)


def _writable(folder: Path) -> bool:
    state = folder / STATE_DIRNAME
    return os.access(folder, os.W_OK | os.X_OK) and (
        not state.exists() or os.access(state, os.W_OK | os.X_OK)
    )


def check_writable(out_dir: Path) -> None:
    """Create `out_dir` and its state folder; `OutputAccessError` (one line) if we cannot."""
    try:
        (out_dir / STATE_DIRNAME).mkdir(parents=True, exist_ok=True)
        probe = out_dir / STATE_DIRNAME / f"write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        if exc.errno in _WAIT_ERRNOS:
            raise OutputError(f"output folder {out_dir} is full: {exc.strerror or exc}") from exc
        raise OutputAccessError(f"cannot write the output folder {out_dir}: {exc.strerror or exc}") from exc


def target_path(out_dir: Path, relpath: str, *, create: bool = True) -> Path:
    """The final path of `relpath` in `out_dir`; refuses escapes; with `create`, makes the
    parent folders (an `OSError` then becomes the `output_error` for it)."""
    check_relative_path(relpath)
    if sys.platform == "win32":
        check_windows_name(relpath)
    parts = relpath.split("/")
    target = out_dir.joinpath(*parts)
    root = os.path.realpath(out_dir)
    # realpath follows symlinks in the folders that exist, so a link planted in the output
    # folder cannot redirect a write elsewhere; checked before any folder is created.
    parent = os.path.realpath(target.parent)
    if parent != root and not parent.startswith(root + os.sep):
        raise UnsafePathError(f"file path leads outside the output folder: {shown(relpath)}")
    if create:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise output_error(exc, f"cannot make the folder for {shown(relpath)}", out_dir) from exc
    return target


class TargetFolders:
    """`target_path` for one batch of files: each folder is resolved (realpath) and made
    once per batch, not once per file. `clear()` at the end of every batch, so a folder
    swapped for a link later is caught by the next batch's check as before."""

    def __init__(self, out_dir: Path) -> None:
        self._out_dir = out_dir
        self._checked: set[Path] = set()

    def path(self, relpath: str) -> Path:
        check_relative_path(relpath)
        if sys.platform == "win32":
            check_windows_name(relpath)
        target = self._out_dir.joinpath(*relpath.split("/"))
        if target.parent not in self._checked:
            target = target_path(self._out_dir, relpath)
            self._checked.add(target.parent)
        return target

    def clear(self) -> None:
        self._checked.clear()
