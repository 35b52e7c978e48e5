"""Filesystem -> "this file is complete and ready to send" events. Only place importing watchdog.

Input: a folder tree where instruments write files, possibly slowly.
Output: calls to `on_ready(ReadyFile)` for files whose size, mtime and ctime have been
stable for the settle time and that no process holds open for writing, found by
watchdog events and by periodic rescans (the safety net for missed events and shares).
"""

from __future__ import annotations

from labstream.watch.filters import DEFAULT_EXCLUDES, Filters
from labstream.watch.watcher import DirectoryWatcher, ReadyFile

__all__ = ["DEFAULT_EXCLUDES", "DirectoryWatcher", "Filters", "ReadyFile"]
