"""Relative paths that travel in chunk messages, and the rules that make them safe.

A path is UTF-8, '/'-separated, relative, and names a file below the output folder
on every operating system: no absolute paths, no '..' or '.', no empty parts, no
drive letters, no backslashes, no over-long names, and no invisible or line-breaking
characters:

- every control character (Unicode category Cc: C0, DEL and C1 such as U+0085, U+009B);
- every format character (Cf: bidi controls U+202A-U+202E, U+2066-U+2069, U+200E/U+200F,
  U+061C, zero-width space, BOM, soft hyphen, tags, ...) except ZWNJ and ZWJ (U+200C,
  U+200D), which some scripts and emoji need in ordinary words;
- the line and paragraph separators U+2028/U+2029 (Zl, Zp) and lone surrogates (Cs);

so that a name shows what it is, in a file manager and in a log line. The first part may
not be labstream's state folder `.labstream` in any letter case, Unicode case folding or
with the trailing dots and spaces Windows strips (`.LabStream.`). `check_windows_name`
adds Windows' own rules; the downloader applies it where it writes on Windows.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from labstream.errors import UnsafePathError
from labstream.logsafe import shown as _shown

__all__ = [
    "MAX_PART_BYTES",
    "MAX_PATH_BYTES",
    "STATE_DIRNAME",
    "check_relative_path",
    "check_source",
    "check_windows_name",
    "folded",
]

MAX_PATH_BYTES = 4096
MAX_PART_BYTES = 255
STATE_DIRNAME = ".labstream"
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_ALLOWED_FORMAT = frozenset({"\u200c", "\u200d"})
_WINDOWS_CHARS = frozenset('<>:"|?*')
_WINDOWS_DEVICES = frozenset(
    {"con", "prn", "aux", "nul", "conin$", "conout$"}
    | {f"{port}{n}" for port in ("com", "lpt") for n in (*"123456789", "\u00b9", "\u00b2", "\u00b3")}
)


def _refused_char(char: str) -> bool:
    return unicodedata.category(char) in _REFUSED_CATEGORIES and char not in _ALLOWED_FORMAT


def folded(part: str) -> str:
    """How a case-insensitive filesystem that strips trailing dots and spaces sees `part`."""
    return unicodedata.normalize("NFKC", part).casefold().rstrip(". ")


def _unsafe(why: str, path: str) -> UnsafePathError:
    """The error for `path`, shown escaped and cut (it may be hostile); built only on refusal."""
    return UnsafePathError(f"{why}: {_shown(path, 200)}")


def check_relative_path(path: str) -> str:
    """Return `path` if it is a safe relative path, else raise `UnsafePathError`.

    A path accepted once is remembered (the newest 1024, at most 4 MiB): a file's path is
    checked where it is listed, sent, encoded and decoded, and a downloader sees it in every
    chunk. Refusals are not remembered: hostile names cost their check each time, fill
    nothing."""
    return _check_relative_path(path)


@functools.lru_cache(maxsize=1024)
def _check_relative_path(path: str) -> str:
    if not path:
        raise UnsafePathError("empty file path")
    # Printable ASCII holds no refused character: the per-character look-up is skipped.
    if not (path.isascii() and path.isprintable()) and any(_refused_char(c) for c in path):
        raise _unsafe("file path contains control or invisible characters", path)
    if len(path.encode("utf-8")) > MAX_PATH_BYTES:
        raise _unsafe(f"file path longer than {MAX_PATH_BYTES} bytes", path)
    if "\\" in path:
        raise _unsafe("file path contains a backslash", path)
    if path.startswith("/"):
        raise _unsafe("absolute file path refused", path)
    if _DRIVE_RE.match(path):
        raise _unsafe("file path with a drive letter refused", path)
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise _unsafe("file path with an empty, '.' or '..' part refused", path)
        if len(part.encode("utf-8")) > MAX_PART_BYTES:
            raise _unsafe(f"file name longer than {MAX_PART_BYTES} bytes", path)
    if folded(parts[0]) == STATE_DIRNAME:
        raise _unsafe("file path inside labstream's state folder refused", path)
    return path


def check_windows_name(path: str) -> str:
    """Return `path` if Windows can write it as named, else raise `UnsafePathError`.

    Refuses `<>:"|?*`, device names (CON, NUL.txt, COM1, ...) and parts ending in a dot or
    a space, which Windows would silently strip (two names landing on one file).
    """
    for part in path.split("/"):
        if any(c in _WINDOWS_CHARS for c in part):
            raise _unsafe('file path with one of <>:"|?* refused on Windows', path)
        if part[-1:] in (".", " "):
            raise _unsafe("file name ending in a dot or space refused on Windows", path)
        if part.split(".", 1)[0].rstrip(" ").casefold() in _WINDOWS_DEVICES:
            raise _unsafe("Windows device name refused", path)
    return path


MAX_SOURCE_BYTES = 255  # its length travels in one byte (docs/wire-format.md, version 2)


def check_source(name: str) -> str:
    """Return `name` if it can name a sending instrument, else raise `UnsafePathError`.

    A source is one safe path part (a downloader may file each source's files under a folder
    of that name) that every operating system can hold: the path rules, Windows' rules, and
    at most 255 bytes of UTF-8.
    """
    if not name or "/" in name or len(name.encode("utf-8")) > MAX_SOURCE_BYTES:
        raise _unsafe(f"a source name is 1 to {MAX_SOURCE_BYTES} bytes without '/'", name)
    try:
        check_windows_name(check_relative_path(name))
    except UnsafePathError as exc:
        raise _unsafe(f"source name refused ({str(exc).split(':', 1)[0]})", name) from exc
    return name
