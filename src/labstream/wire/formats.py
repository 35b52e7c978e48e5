"""The formats labstream can produce: its own v2 (default) and v1, and openmsistream's."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass

from labstream.errors import ConfigError
from labstream.wire.chunk import Chunk, encode
from labstream.wire.crypto import PayloadCipher
from labstream.wire.openmsistream import encode_openmsistream, openmsistream_key

__all__ = ["WIRE_FORMATS", "WireFormat", "wire_format"]


@dataclass(frozen=True)
class WireFormat:
    """How a sender names, hashes and packs chunks for one consumer ecosystem."""

    name: str
    hash_name: str
    key: Callable[[str, int, int], bytes]
    encode: Callable[[Chunk], bytes]
    # 2: labstream's wire v2, hashed while produced (digest in the last chunk); 1: the file
    # is hashed first and every chunk carries its digest (labstream v1, openmsistream).
    chunk_version: int = 1


def _path_key(path: str, _index: int, _n_chunks: int) -> bytes:
    return path.encode("utf-8")


WIRE_FORMATS = {
    "labstream": WireFormat("labstream", "sha256", _path_key, encode, chunk_version=2),
    # Wire v1, for downloaders older than v2 (every labstream reads both).
    "labstream-v1": WireFormat("labstream-v1", "sha256", _path_key, encode),
    # openmsistream's downloaders need its key layout and SHA-512 digests.
    "openmsistream": WireFormat("openmsistream", "sha512", openmsistream_key, encode_openmsistream),
}


def wire_format(name: str, cipher: PayloadCipher | None = None) -> WireFormat:
    """The format called `name`; with `cipher`, payloads are encrypted (labstream's only)."""
    try:
        chosen = WIRE_FORMATS[name]
    except KeyError:
        raise ConfigError(f"unknown wire format {name!r} (known: {', '.join(WIRE_FORMATS)})") from None
    if cipher is None:
        return chosen
    if name not in ("labstream", "labstream-v1"):
        raise ConfigError("encryption needs labstream's wire format; openmsistream cannot read it")
    return dataclasses.replace(chosen, encode=functools.partial(encode, cipher=cipher))
