"""One entry point for incoming messages: the format is detected from the first bytes."""

from __future__ import annotations

from labstream.errors import WireError
from labstream.wire.chunk import MAGIC, Chunk, decode_labstream
from labstream.wire.openmsistream import decode_openmsistream, looks_like_openmsistream

__all__ = ["decode", "peek_path"]


def decode(value: bytes | memoryview) -> Chunk:
    """A chunk in labstream's format or openmsistream's; `WireError` for anything else."""
    view = memoryview(value)
    if view[:4] == MAGIC:
        return decode_labstream(view)
    if looks_like_openmsistream(view):
        return decode_openmsistream(view)
    if len(view) < 4:
        return decode_labstream(view)  # reports the truncation
    raise WireError(f"not a labstream or openmsistream chunk (starts with {bytes(view[:4])!r})")


def peek_path(value: bytes | memoryview) -> str | None:
    """The relative path a chunk names, read from its header alone (no payload checksum);
    None when the message is not a readable chunk (`decode` then reports why)."""
    view = memoryview(value)
    try:
        if view[:4] == MAGIC:
            return decode_labstream(view, check_payload=False).path
        if looks_like_openmsistream(view):
            return decode_openmsistream(view).path
    except WireError:
        return None
    return None
