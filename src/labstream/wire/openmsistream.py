"""openmsistream's chunk message (DataFileChunk, msgpack), read and written.

openmsistream 1.8.x packs a list of 9 or 10 items with msgpack:
[filename, file SHA-512, chunk SHA-512, offset, chunk number (1-based), number of chunks,
subfolder ("a/b" or ""), filename_append, data, file mtime (optional)].
Its message key is "<subfolders joined by _>_<filename>_chunk_<i>_of_<n>".
See docs/wire-format.md for how it differs from labstream's format.
"""

from __future__ import annotations

import hashlib
import posixpath
from typing import Any

import msgpack

from labstream.errors import ChecksumError, UnsafePathError, WireError
from labstream.wire.chunk import Chunk
from labstream.wire.paths import check_relative_path

__all__ = ["decode_openmsistream", "encode_openmsistream", "looks_like_openmsistream", "openmsistream_key"]

_FIXARRAY_9_OR_10 = (0x99, 0x9A)
# No file can end beyond this: file sizes and offsets are signed 64-bit (os.lseek, st_size).
MAX_FILE_END = (1 << 63) - 1


def looks_like_openmsistream(value: bytes | memoryview) -> bool:
    return len(value) > 0 and value[0] in _FIXARRAY_9_OR_10


def openmsistream_key(relpath: str, index: int, n_chunks: int) -> bytes:
    folder, name = posixpath.split(relpath)
    prepend = f"{'_'.join(folder.split('/'))}_" if folder else "_"
    return f"{prepend}{name}_chunk_{index + 1}_of_{n_chunks}".encode()


def encode_openmsistream(chunk: Chunk, mtime: float = 0.0) -> bytes:
    """`chunk` (with a SHA-512 file digest) as openmsistream's DataFileChunk message."""
    folder, name = posixpath.split(check_relative_path(chunk.path))
    data = bytes(chunk.data)
    packed: bytes = msgpack.packb(
        [
            name,
            chunk.file_digest,
            hashlib.sha512(data).digest(),
            chunk.offset,
            chunk.index + 1,
            chunk.n_chunks,
            folder,
            "",
            data,
            mtime,
        ],
        use_bin_type=True,
    )
    return packed


def decode_openmsistream(value: bytes | memoryview) -> Chunk:
    """Parse an openmsistream chunk; every problem is a `WireError`."""
    try:
        items = msgpack.unpackb(bytes(value), raw=True)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise WireError(f"not an openmsistream chunk: {exc}") from exc
    if not isinstance(items, list) or len(items) not in (9, 10):
        raise WireError("not an openmsistream chunk (expected a list of 9 or 10 items)")
    name, file_hash, chunk_hash, offset, number, total, folder, append, data = items[:9]
    path = _path(_text(folder), _text(name), _text(append))
    if not all(isinstance(x, int) for x in (offset, number, total)) or not 1 <= number <= total:
        raise WireError(f"{path}: chunk {number} of {total} at offset {offset} is not a valid position")
    if offset < 0 or not all(isinstance(x, bytes) for x in (file_hash, chunk_hash, data)):
        raise WireError(f"{path}: malformed openmsistream chunk")
    if offset + len(data) > MAX_FILE_END:
        raise WireError(f"{path}: chunk {number}/{total} at offset {offset} ends beyond any file's size")
    if len(file_hash) != 64:
        raise WireError(f"{path}: file hash is not a SHA-512")
    if hashlib.sha512(data).digest() != chunk_hash:
        raise ChecksumError(
            f"{path}: chunk {number}/{total} fails its checksum (corrupted)",
            (path, file_hash, -1),
            number - 1,
        )
    return Chunk(
        path,
        -1,
        file_hash,
        number - 1,
        total,
        max(1, len(data)),
        data,
        explicit_offset=offset,
        hash_name="sha512",
    )


def _text(raw: Any) -> str:
    if not isinstance(raw, bytes):
        raise WireError("malformed openmsistream chunk (a name is not text)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsafePathError(f"file name is not valid UTF-8: {raw[:100]!r}") from exc


def _path(folder: str, name: str, append: str) -> str:
    if append:
        stem, dot, suffix = name.rpartition(".")
        name = f"{stem}{append}.{suffix}" if dot and stem else f"{name}{append}"
    return check_relative_path(f"{folder}/{name}" if folder else name)
