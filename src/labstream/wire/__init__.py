"""The chunk message: file bytes <-> Kafka message values. Pure code, no I/O.

Input: a file's identity (relative path, size, digest) and one slice of its bytes.
Output: a self-describing, versioned, checksummed message value (docs/wire-format.md),
and back again, with every inconsistency reported as a `WireError`. openmsistream's
msgpack chunks are read (detected automatically) and can be written.
"""

from __future__ import annotations

from labstream.wire.chunk import HEADER_SIZE, MAGIC, VERSION, Chunk, encode, n_chunks_for
from labstream.wire.codec import decode, peek_path
from labstream.wire.formats import WIRE_FORMATS, WireFormat, wire_format
from labstream.wire.openmsistream import encode_openmsistream, openmsistream_key
from labstream.wire.paths import check_relative_path

__all__ = [
    "HEADER_SIZE",
    "MAGIC",
    "VERSION",
    "WIRE_FORMATS",
    "Chunk",
    "WireFormat",
    "check_relative_path",
    "decode",
    "encode",
    "encode_openmsistream",
    "n_chunks_for",
    "openmsistream_key",
    "peek_path",
    "wire_format",
]
