"""Delivery receipts: verified (or failed) files -> receipts topic -> the sender's ledger.

Input: the outcome of a downloader or processor for one file version.
Output: a small JSON message on the receipts topic (by default `<data topic>.receipts`),
read back by the watcher, `labstream status` and `upload --wait-verified`, which act only
on receipts signed (Ed25519) by a key they trust.
"""

from __future__ import annotations

from labstream.receipts.collector import ReceiptCollector, read_receipts, wait_verified
from labstream.receipts.format import Receipt, receipts_topic
from labstream.receipts.publisher import ReceiptPublisher
from labstream.receipts.signing import SigningKey, TrustedKeys

__all__ = [
    "Receipt",
    "ReceiptCollector",
    "ReceiptPublisher",
    "SigningKey",
    "TrustedKeys",
    "read_receipts",
    "receipts_topic",
    "wait_verified",
]
