"""What messages may make a downloader spend: the bounds, with their defaults in one place.

- `max_file_size`: a file declaring more (or whose chunk layout needs more) is refused at its
  first chunk. 1 TiB: above any single file our instruments write (a day of a fast camera
  is a few hundred GiB), and far below what breaks a filesystem (2^62 offsets).
- `max_incomplete_files`: files in progress per consumer thread; the oldest is given up
  when one more arrives. 1000 partial files cost well under 1 MiB of memory and a few MiB of
  disk, and a real sender has a handful in flight.
- `max_incomplete_bytes`: bytes of all files in progress per thread, counted in 4 KiB disk
  blocks; the least recently fed others are given up first. Must be at least
  `max_file_size`, so a file of the largest allowed size can still arrive (setting only one
  of the two moves the other's default along).
- `incomplete_timeout`: seconds without a new chunk after which a file in progress is given
  up, so its hold on the committed offset ends. An hour: a sender that stalls longer has
  lost its connection; its file is sent again on reconnection.

A file given up fails: logged, a failed verdict (receipt), its partial bytes deleted.
A live send in progress (labstream.download.live) counts as one file in progress, and its
bytes not verified yet count in `max_incomplete_bytes`; given up, its verified prefix stays.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields

from labstream.errors import ConfigError

__all__ = ["LIMIT_KEYS", "Limits", "parse_size"]

MAX_FILE_SIZE_CAP = 1 << 62  # offsets stay far inside what lseek and filesystems take
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40}


@dataclass(frozen=True)
class Limits:
    max_file_size: int = 1 << 40
    max_incomplete_files: int = 1000
    max_incomplete_bytes: int = 1 << 40
    incomplete_timeout: float = 3600.0

    def __post_init__(self) -> None:
        for item in fields(self):
            if not getattr(self, item.name) > 0:
                raise ConfigError(f"{item.name} must be positive, not {getattr(self, item.name)}")
        if self.max_file_size > MAX_FILE_SIZE_CAP:
            raise ConfigError(f"max_file_size {self.max_file_size} is over {MAX_FILE_SIZE_CAP} (2^62)")
        if self.max_incomplete_bytes < self.max_file_size:
            raise ConfigError(
                f"max_incomplete_bytes ({self.max_incomplete_bytes}) must be at least "
                f"max_file_size ({self.max_file_size}), or the largest files could never arrive"
            )

    @classmethod
    def from_values(cls, values: Mapping[str, str | int | float | None]) -> Limits:
        """Limits from text or numbers (config file, command line); None keeps the default."""
        given: dict[str, int | float] = {}
        for name, value in values.items():
            if value is None:
                continue
            if name not in LIMIT_KEYS:
                raise ConfigError(f"unknown limit {name!r} (known: {', '.join(LIMIT_KEYS)})")
            given[name] = _parse(name, value)
        # Setting one of the two size bounds moves the other's default to stay consistent.
        if "max_file_size" in given and "max_incomplete_bytes" not in given:
            given["max_incomplete_bytes"] = max(cls.max_incomplete_bytes, given["max_file_size"])
        if "max_incomplete_bytes" in given and "max_file_size" not in given:
            given["max_file_size"] = min(cls.max_file_size, given["max_incomplete_bytes"])
        return cls(**given)  # type: ignore[arg-type]


LIMIT_KEYS = tuple(item.name for item in fields(Limits))


def _parse(name: str, value: str | int | float) -> int | float:
    if name == "incomplete_timeout":
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{name} = {value!r}: expected seconds") from None
    if name == "max_incomplete_files":
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{name} = {value!r}: expected a whole number") from None
    return parse_size(value, name)


def parse_size(value: str | int | float, name: str = "size") -> int:
    """Bytes from `123`, `64k`, `10GiB`, `1T` (binary units)."""
    if isinstance(value, int | float):
        return int(value)
    match = _SIZE_RE.match(value)
    if match is None:
        raise ConfigError(f"{name} = {value!r}: expected bytes, e.g. 1000000, 512MiB, 10G, 1TiB")
    return int(match[1]) << _UNITS[match[2].lower()]
