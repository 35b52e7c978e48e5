"""The receipt message: JSON, versioned, validated on the way in."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

from labstream.errors import WireError

__all__ = ["RECEIPT_VERSION", "Receipt", "receipts_topic"]

RECEIPT_VERSION = 1
OUTCOMES = ("verified", "failed")


def receipts_topic(data_topic: str) -> str:
    return f"{data_topic}.receipts"


@dataclass(frozen=True)
class Receipt:
    """Who verified (or failed) which exact version of a file, and when."""

    path: str
    sha256: str
    size: int
    outcome: str
    group: str
    host: str
    reason: str = ""
    at: float = 0.0

    def to_bytes(self) -> bytes:
        body = asdict(self)
        body["v"] = RECEIPT_VERSION
        body["at"] = self.at or time.time()
        return json.dumps(body, ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_bytes(cls, value: bytes) -> Receipt:
        try:
            body = json.loads(value)
            if not isinstance(body, dict) or body.get("v") != RECEIPT_VERSION:
                raise WireError(f"not a version {RECEIPT_VERSION} receipt")
            receipt = cls(
                str(body["path"]),
                str(body["sha256"]),
                int(body["size"]),
                str(body["outcome"]),
                str(body["group"]),
                str(body["host"]),
                str(body.get("reason", "")),
                float(body.get("at", 0.0)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise WireError(f"malformed receipt: {exc}") from exc
        # The digest is SHA-256 (64 hex digits), or SHA-512 (128) for openmsistream files.
        if receipt.outcome not in OUTCOMES or len(receipt.sha256) not in (64, 128):
            raise WireError(f"malformed receipt for {receipt.path!r}")
        return receipt
