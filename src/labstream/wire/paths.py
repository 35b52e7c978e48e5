"""Relative paths that travel in chunk messages, and the rules that make them safe.

A path is UTF-8, '/'-separated, relative, and names a file below the output folder
on every operating system: no absolute paths, no '..' or '.', no empty parts, no
drive letters, no backslashes, no NUL or control characters, no over-long names.
"""

from __future__ import annotations

import re

from labstream.errors import UnsafePathError

__all__ = ["MAX_PART_BYTES", "MAX_PATH_BYTES", "check_relative_path"]

MAX_PATH_BYTES = 4096
MAX_PART_BYTES = 255
_DRIVE_RE = re.compile(r"^[A-Za-z]:")


def check_relative_path(path: str) -> str:
    """Return `path` if it is a safe relative path, else raise `UnsafePathError`."""
    if not path:
        raise UnsafePathError("empty file path")
    shown = ascii(path[:200])
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise UnsafePathError(f"file path longer than {MAX_PATH_BYTES} bytes: {shown}")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise UnsafePathError(f"file path contains control characters: {shown}")
    if "\\" in path:
        raise UnsafePathError(f"file path contains a backslash: {shown}")
    if path.startswith("/"):
        raise UnsafePathError(f"absolute file path refused: {shown}")
    if _DRIVE_RE.match(path):
        raise UnsafePathError(f"file path with a drive letter refused: {shown}")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise UnsafePathError(f"file path with an empty, '.' or '..' part refused: {shown}")
        if len(part.encode("utf-8", "surrogatepass")) > MAX_PART_BYTES:
            raise UnsafePathError(f"file name longer than {MAX_PART_BYTES} bytes: {shown}")
    return path
