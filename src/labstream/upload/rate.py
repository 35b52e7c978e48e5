"""A bandwidth limit for senders: a token bucket shared by every sender thread.

`--max-rate 20MiB/s` keeps an instrument's own network usable while it uploads. The bucket
holds at most `burst_seconds` of tokens; a sender that takes more than there are goes into
debt and sleeps it off, so the long-run rate is exact whatever the chunk size.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

from labstream.errors import ConfigError

__all__ = ["RateLimiter", "parse_rate"]

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "kib": 1 << 10,
    "mb": 1000**2,
    "mib": 1 << 20,
    "gb": 1000**3,
    "gib": 1 << 30,
}
_RATE = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([a-z]*)\s*(?:/\s*s)?\s*", re.IGNORECASE)


def parse_rate(text: str) -> float:
    """Bytes per second from `20MiB/s`, `500KB/s`, `1e6`-free plain numbers (`1048576`)."""
    match = _RATE.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ConfigError(f"not a rate: {text!r} (examples: 20MiB/s, 500KB/s, 1GiB/s)")
    rate = float(match.group(1)) * _UNITS[unit]
    if rate <= 0:
        raise ConfigError(f"a rate must be above zero, not {text!r}")
    return rate


class RateLimiter:
    """Lets `bytes_per_second` through on average; `take` blocks while over the rate.

    `stop` cuts a wait short (the caller then checks it). `clock` and `sleep` are for tests.
    """

    def __init__(
        self,
        bytes_per_second: float,
        *,
        burst_seconds: float = 0.1,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        if bytes_per_second <= 0:
            raise ConfigError("a rate must be above zero")
        self.rate = float(bytes_per_second)
        self._capacity = self.rate * burst_seconds
        self._tokens = self._capacity
        self._clock = clock
        self._last = clock()
        self._stop = stop or threading.Event()
        self._sleep = sleep or self._stop.wait
        self._lock = threading.Lock()

    def take(self, nbytes: int) -> None:
        """Account for `nbytes` about to be sent; returns once they fit the rate."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= nbytes
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
