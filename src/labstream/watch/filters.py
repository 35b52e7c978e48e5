"""Which files to send: --include / --exclude glob patterns on the relative path or name."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatch

__all__ = ["DEFAULT_EXCLUDES", "Filters"]

# Files that editors, browsers and operating systems write and remove on their own.
DEFAULT_EXCLUDES = (
    "*.tmp",
    "*.temp",
    "*.part",
    "*.partial",
    "*.crdownload",
    "*.swp",
    "~$*",
    ".~lock.*",
    "Thumbs.db",
    "desktop.ini",
    ".DS_Store",
)


@dataclass(frozen=True)
class Filters:
    """A file is sent if it matches an include pattern (or there are none) and no exclude."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDES

    def accepts(self, relpath: str) -> bool:
        name = relpath.rsplit("/", 1)[-1]
        if self.include and not any(fnmatch(relpath, p) or fnmatch(name, p) for p in self.include):
            return False
        return not any(fnmatch(relpath, p) or fnmatch(name, p) for p in self.exclude)
