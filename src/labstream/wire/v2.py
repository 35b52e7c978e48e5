"""Version 2 of the chunk message: a random file id per version, the SHA-256 in the last chunk.

A v2 sender hashes while it produces, so each byte of a file is read once: the file digest
is known only when the last chunk is read, and travels in that chunk (kind LAST). Every chunk
carries a random 16-byte file id instead, fresh for each send, that binds the chunks of one
version together. A file that changed while it was read gets an ABORTED trailer instead of
its last chunk and is never presented. No per-chunk CRC: Kafka's record-batch CRC-32C covers
the network and the broker's disk, the file SHA-256 the whole way, and with a key each
chunk's GCM tag (docs/wire-format.md, "Why these choices").
"""

from __future__ import annotations

import os
import struct

from labstream.errors import WireError
from labstream.wire.chunk import (
    _OVERHEAD,
    FLAG_SEALED,
    LIVE_DATA,
    LIVE_END,
    LIVE_MARK,
    MAGIC,
    MAX_CHUNK_SIZE,
    Chunk,
    check_geometry,
    decode_path,
    n_chunks_for,
    seal,
)
from labstream.wire.crypto import PayloadCipher
from labstream.wire.paths import check_relative_path, check_source

__all__ = [
    "FILE_ID_SIZE",
    "HEADER_V2_SIZE",
    "KIND_ABORTED",
    "KIND_DATA",
    "KIND_LAST",
    "KIND_LIVE_DATA",
    "KIND_LIVE_END",
    "KIND_LIVE_MARK",
    "aborted_trailer",
    "decode_v2",
    "encode_v2",
    "header_v2",
    "live_data",
    "live_mark",
    "new_file_id",
]

VERSION_2 = 2
FILE_ID_SIZE = 16
# magic, version, flags, kind, source length (0: no source), path length, file size, index,
# n chunks, nominal chunk size, payload size, file id, file SHA-256 (zeros but in the last
# chunk). The source name follows the path.
_HEADER = struct.Struct(">4sBBBBHQIIII16s32s")
HEADER_V2_SIZE = _HEADER.size
KIND_DATA, KIND_LAST, KIND_ABORTED = 0, 1, 2
KIND_LIVE_DATA, KIND_LIVE_MARK, KIND_LIVE_END = LIVE_DATA, LIVE_MARK, LIVE_END
_LIVE_KINDS = (LIVE_DATA, LIVE_MARK, LIVE_END)
MAX_LIVE_OFFSET = 1 << 62  # as labstream.download.limits: offsets every filesystem takes
_NO_DIGEST = bytes(32)


def new_file_id() -> bytes:
    """A fresh random id for one send of one file version (not guessable before it is seen)."""
    return os.urandom(FILE_ID_SIZE)


def aborted_trailer(
    path: str, file_size: int, chunk_size: int, file_id: bytes, version_ns: int, source: str = ""
) -> Chunk:
    """The message that tells readers this send of `path` will never complete."""
    n = n_chunks_for(file_size, chunk_size)
    return Chunk(
        path,
        file_size,
        b"",
        0,
        n,
        chunk_size,
        b"",
        version_ns=version_ns,
        wire_version=2,
        file_id=file_id,
        aborted=True,
        source=source,
    )


def live_data(
    path: str,
    offset: int,
    data: bytes | memoryview,
    seq: int,
    chunk_size: int,
    file_id: bytes,
    version_ns: int,
    source: str = "",
) -> Chunk:
    """Bytes appended to a live file at `offset`; `seq` counts the send's messages."""
    return Chunk(
        path,
        -1,
        b"",
        seq,
        0,
        chunk_size,
        data,
        explicit_offset=offset,
        version_ns=version_ns,
        wire_version=2,
        file_id=file_id,
        source=source,
        live=LIVE_DATA,
    )


def live_mark(
    path: str,
    length: int,
    digest: bytes,
    seq: int,
    chunk_size: int,
    file_id: bytes,
    version_ns: int,
    source: str = "",
    *,
    end: bool = False,
) -> Chunk:
    """The SHA-256 `digest` of the first `length` bytes of a live send; `end`: the whole file."""
    return Chunk(
        path,
        -1,
        digest,
        seq,
        0,
        chunk_size,
        b"",
        explicit_offset=length,
        version_ns=version_ns,
        wire_version=2,
        file_id=file_id,
        source=source,
        live=LIVE_END if end else LIVE_MARK,
    )


def _kind(chunk: Chunk) -> int:
    if chunk.live:
        return chunk.live
    if chunk.aborted:
        return KIND_ABORTED
    return KIND_LAST if chunk.index == chunk.n_chunks - 1 else KIND_DATA


def header_v2(chunk: Chunk, flags: int, path_size: int, payload_size: int) -> bytes:
    kind = _kind(chunk)
    digest = chunk.file_digest if kind in (KIND_LAST, LIVE_MARK, LIVE_END) else _NO_DIGEST
    size = chunk.offset if chunk.live else chunk.file_size  # a live chunk's offset or length
    return _HEADER.pack(
        MAGIC,
        VERSION_2,
        flags,
        kind,
        len(chunk.source.encode("utf-8")),
        path_size,
        size,
        chunk.index,
        chunk.n_chunks,
        chunk.chunk_size,
        payload_size,
        chunk.file_id,
        digest,
    )


def encode_v2(chunk: Chunk, cipher: PayloadCipher | None = None) -> bytes:
    """The v2 message value for `chunk`; `WireError` if it is inconsistent."""
    if len(chunk.file_id) != FILE_ID_SIZE:
        raise WireError(f"{chunk.path}: a v2 chunk needs a {FILE_ID_SIZE}-byte file id")
    if _kind(chunk) in (KIND_LAST, LIVE_MARK, LIVE_END) and len(chunk.file_digest) != len(_NO_DIGEST):
        raise WireError(f"{chunk.path}: the last v2 chunk or a live mark needs a SHA-256")
    path_bytes = check_relative_path(chunk.path).encode("utf-8")
    source = check_source(chunk.source).encode("utf-8") if chunk.source else b""
    flags, payload = seal(chunk, cipher)
    header = header_v2(chunk, flags, len(path_bytes), len(payload))
    value = b"".join((header, path_bytes, source, payload))
    decode_v2(memoryview(value))
    return value


def decode_v2(view: memoryview) -> Chunk:
    """Parse a v2 message value (magic already seen). `WireError` for anything malformed."""
    if len(view) < HEADER_V2_SIZE:
        raise WireError(f"message of {len(view)} bytes is shorter than the {HEADER_V2_SIZE}-byte v2 header")
    (
        _,
        _,
        flags,
        kind,
        source_len,
        path_len,
        file_size,
        index,
        n_chunks,
        chunk_size,
        payload_size,
        file_id,
        sha,
    ) = _HEADER.unpack_from(view)
    if flags not in (0, FLAG_SEALED):
        raise WireError(f"unsupported v2 chunk flags {flags:#04x}")
    if kind not in (KIND_DATA, KIND_LAST, KIND_ABORTED, *_LIVE_KINDS):
        raise WireError(f"unsupported v2 chunk kind {kind}")
    path = decode_path(view[HEADER_V2_SIZE : HEADER_V2_SIZE + path_len], path_len)
    names_end = HEADER_V2_SIZE + path_len + source_len
    source = _decode_source(view[HEADER_V2_SIZE + path_len : names_end], source_len)
    plain = payload_size - _OVERHEAD[flags]
    if kind in _LIVE_KINDS:
        _check_live(path, kind, file_size, n_chunks, chunk_size, plain)
        if len(view) != names_end + payload_size:
            raise WireError(f"{path}: message is {len(view)} bytes, header says {names_end + payload_size}")
        marked = kind != LIVE_DATA
        return Chunk(
            path,
            -1,
            bytes(sha) if marked else b"",
            index,
            0,
            chunk_size,
            view[names_end:],
            explicit_offset=file_size,
            envelope=flags,
            wire_version=VERSION_2,
            file_id=bytes(file_id),
            source=source,
            live=kind,
        )
    if kind == KIND_ABORTED:
        check_geometry(file_size, 0, 0, n_chunks, chunk_size, min(chunk_size, file_size))
        if index != 0 or plain != 0:
            raise WireError(f"{path}: an aborted trailer is chunk 0 and carries no data")
    else:
        check_geometry(file_size, index * chunk_size, index, n_chunks, chunk_size, plain)
        if (kind == KIND_LAST) != (index == n_chunks - 1):
            raise WireError(f"{path}: chunk {index + 1}/{n_chunks} has the wrong kind {kind}")
    if kind != KIND_LAST and sha != _NO_DIGEST:
        raise WireError(f"{path}: chunk {index + 1}/{n_chunks} carries a digest; only the last may")
    expected_len = names_end + payload_size
    if len(view) != expected_len:
        raise WireError(f"{path}: message is {len(view)} bytes, header says {expected_len}")
    return Chunk(
        path,
        file_size,
        bytes(sha) if kind == KIND_LAST else b"",
        index,
        n_chunks,
        chunk_size,
        view[names_end:],
        envelope=flags,
        wire_version=VERSION_2,
        file_id=bytes(file_id),
        aborted=kind == KIND_ABORTED,
        source=source,
    )


def _check_live(path: str, kind: int, at: int, n_chunks: int, chunk_size: int, plain: int) -> None:
    """A live message: no chunk count; data of 1 to chunk size bytes below 2^62; a mark
    carries no data."""
    if chunk_size == 0 or chunk_size & (chunk_size - 1) or chunk_size > MAX_CHUNK_SIZE:
        raise WireError(f"{path}: chunk size {chunk_size} is not a power of two up to {MAX_CHUNK_SIZE}")
    if n_chunks != 0:
        raise WireError(f"{path}: a live message has no chunk count ({n_chunks} given)")
    if kind == LIVE_DATA and not 0 < plain <= chunk_size:
        raise WireError(f"{path}: live data of {plain} bytes (1 to {chunk_size} allowed)")
    if kind != LIVE_DATA and plain != 0:
        raise WireError(f"{path}: a live mark carries no data ({plain} bytes given)")
    if at + max(plain, 0) > MAX_LIVE_OFFSET:
        raise WireError(f"{path}: live offset {at} is beyond what any file may hold")


def _decode_source(raw: memoryview, source_len: int) -> str:
    if len(raw) != source_len:
        raise WireError("message truncated inside the source name")
    if not source_len:
        return ""
    try:
        return check_source(bytes(raw).decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise WireError(f"source name is not valid UTF-8: {bytes(raw)[:100]!r}") from exc
