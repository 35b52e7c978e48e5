"""Clock skew, without writing anything: from the newest message timestamps we can read.

Kafka has no request that returns the broker's time. A message stamped by the broker
(LogAppendTime) or by another labstream process (CreateTime: receipts, heartbeats) that
lies in our future proves our clock is behind that clock by at least the difference. A
clock that is ahead cannot be seen this way: the result is a lower bound, and says so.
"""

from __future__ import annotations

from collections.abc import Sequence

from labstream.doctor.check import Check
from labstream.doctor.sample import Sample

__all__ = ["MAX_SKEW_SECONDS", "check_clock"]

# Version times of encrypted sends and `--since` are clock-based; 30 s is far above NTP's
# error and far below what would reorder a lab's file versions.
MAX_SKEW_SECONDS = 30.0


def check_clock(samples: Sequence[Sample]) -> Check:
    stamped = [s for s in samples if s.newest_ms is not None]
    if not stamped:
        return Check.info("clock", "unknown skew: no message timestamp to compare with (nothing read)")
    ahead = max(stamped, key=lambda s: (s.newest_ms or 0) - s.read_at_ms)
    lead = ((ahead.newest_ms or 0) - ahead.read_at_ms) / 1000
    whose = "the broker's clock (LogAppendTime)" if ahead.newest_log_append else "its sender's clock"
    if lead > MAX_SKEW_SECONDS:
        return Check.fail(
            "clock",
            f"this clock is behind by at least {lead:.1f} s: the newest message of {ahead.topic} "
            f"is stamped in our future by {whose}",
            "synchronise the clocks with NTP (timedatectl set-ntp true; w32tm /resync)",
        )
    return Check.ok(
        "clock",
        f"no skew seen (newest timestamps of {', '.join(s.topic for s in stamped)}; "
        "a lower bound: a clock running ahead is not visible this way)",
    )
