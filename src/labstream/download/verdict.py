"""A downloader's verdict on one file version: what receipts are made of."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["OnVerdict", "Verdict"]


@dataclass(frozen=True)
class Verdict:
    """`outcome` is "verified" or "failed" (with a `reason`)."""

    path: str
    digest: bytes
    size: int
    outcome: str
    reason: str = ""

    @property
    def verified(self) -> bool:
        return self.outcome == "verified"


OnVerdict = Callable[[Verdict], None]
