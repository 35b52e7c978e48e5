"""Where a received file goes: always inside the output folder, never over our own state."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from labstream.errors import UnsafePathError
from labstream.wire import check_relative_path

__all__ = ["STATE_DIRNAME", "target_path"]

STATE_DIRNAME = ".labstream"


def target_path(out_dir: Path, relpath: str) -> Path:
    """The final path of `relpath` in `out_dir`; creates parent folders; refuses escapes."""
    check_relative_path(relpath)
    parts = relpath.split("/")
    if parts[0] == STATE_DIRNAME:
        raise UnsafePathError(f"file path inside labstream's state folder refused: {relpath!a}")
    if sys.platform == "win32" and any(":" in part for part in parts):
        raise UnsafePathError(f"file path with ':' refused on Windows: {relpath!a}")
    target = out_dir.joinpath(*parts)
    root = os.path.realpath(out_dir)
    # realpath follows symlinks in the folders that exist, so a link planted in the output
    # folder cannot redirect a write elsewhere; checked before any folder is created.
    parent = os.path.realpath(target.parent)
    if parent != root and not parent.startswith(root + os.sep):
        raise UnsafePathError(f"file path leads outside the output folder: {relpath!a}")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target
