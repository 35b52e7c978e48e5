"""`--since` values: an ISO date/time (local time unless it says otherwise) or an age."""

from __future__ import annotations

import datetime
import re
import time

from labstream.errors import ConfigError

__all__ = ["format_ms", "parse_time"]

_AGE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(text: str, now: float | None = None) -> int:
    """Milliseconds since the epoch for `2024-05-01`, `2024-05-01T13:00`, `...+02:00`,
    or an age such as `90m`, `6h`, `2d` (before `now`, seconds since the epoch)."""
    match = _AGE_RE.match(text)
    if match:
        now = time.time() if now is None else now
        return int((now - float(match[1]) * _SECONDS[match[2].lower()]) * 1000)
    try:
        moment = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"time {text!r}: expected an ISO date/time (2024-05-01T13:00) or an age (90m, 6h, 2d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # the local time zone, as a user means it
    return int(moment.timestamp() * 1000)


def format_ms(ms: int | None) -> str:
    """A message time for people: local, to the second; '-' when there is none."""
    if ms is None or ms < 0:
        return "-"
    return datetime.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")
