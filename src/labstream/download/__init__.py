"""Kafka topic -> chunk messages -> reassembled, verified files in an output folder.

Input: chunk messages (docs/wire-format.md) in any order, interleaved between files.
Output: each file written to a temporary file, checked against its size and SHA-256,
then renamed into place atomically; failures kept aside, never presented as complete.
Offsets are committed only past chunks whose file is complete and durable.
"""

from __future__ import annotations

from labstream.download.assembler import Assembler, DoneFile, Outcome
from labstream.download.downloader import Downloader, DownloadReport
from labstream.download.ledger import DONE_STATUSES, FileState, Ledger

__all__ = [
    "DONE_STATUSES",
    "Assembler",
    "DoneFile",
    "DownloadReport",
    "Downloader",
    "FileState",
    "Ledger",
    "Outcome",
]
