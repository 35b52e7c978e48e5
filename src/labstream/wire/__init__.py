"""The chunk message: file bytes <-> Kafka message values. Pure code, no I/O.

Input: a file's identity (relative path, size, SHA-256) and one slice of its bytes.
Output: a self-describing, versioned, checksummed message value (docs/wire-format.md),
and back again, with every inconsistency reported as a `WireError`.
"""

from __future__ import annotations

from labstream.wire.chunk import HEADER_SIZE, MAGIC, VERSION, Chunk, decode, encode, n_chunks_for
from labstream.wire.paths import check_relative_path

__all__ = [
    "Chunk",
    "HEADER_SIZE",
    "MAGIC",
    "VERSION",
    "check_relative_path",
    "decode",
    "encode",
    "n_chunks_for",
]
