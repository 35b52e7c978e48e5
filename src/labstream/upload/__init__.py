"""Ready files -> chunk messages -> Kafka topic, every chunk acknowledged.

Input: paths of complete files (and the relative paths they travel under).
Output: chunk messages produced with acks=all by an idempotent producer, and a
report that says which files were fully acknowledged.
"""

from __future__ import annotations

from labstream.upload.rate import RateLimiter, parse_rate
from labstream.upload.sender import FileSender, SentFile
from labstream.upload.source import SourceFile, collect, hash_file
from labstream.upload.uploader import (
    DEFAULT_CHUNK_SIZE,
    Uploader,
    UploadReport,
    check_chunk_size,
    raise_if_failed,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "FileSender",
    "RateLimiter",
    "SentFile",
    "SourceFile",
    "UploadReport",
    "Uploader",
    "check_chunk_size",
    "collect",
    "hash_file",
    "parse_rate",
    "raise_if_failed",
]
