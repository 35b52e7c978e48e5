"""Sizes and rates as people read them: binary units everywhere (KiB, MiB, GiB)."""

from __future__ import annotations

__all__ = ["human_bytes", "human_rate", "percent"]


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


def human_rate(bytes_per_second: float) -> str:
    return f"{human_bytes(bytes_per_second)}/s"


def percent(done: int, total: int) -> str:
    """ "42%" of a known total; "" when the total is unknown (<= 0)."""
    return f"{min(100, int(100 * done / total))}%" if total > 0 else ""
