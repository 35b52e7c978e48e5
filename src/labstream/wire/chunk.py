"""The chunk, and version 1 of its message (see docs/wire-format.md); version 2 is in v2.py."""

from __future__ import annotations

import dataclasses
import struct
import zlib
from dataclasses import dataclass

from labstream.errors import ChecksumError, DecryptionError, UnsafePathError, WireError
from labstream.wire.crypto import KEY_ID_SIZE, OVERHEAD, PayloadCipher
from labstream.wire.paths import check_relative_path

__all__ = [
    "HEADER_SIZE",
    "MAGIC",
    "VERSION",
    "Chunk",
    "associated_data",
    "check_geometry",
    "decode_labstream",
    "decode_path",
    "decrypt",
    "encode",
    "n_chunks_for",
    "seal",
]

MAGIC = b"LSCK"
VERSION = 1
# magic, version, flags, path length, file size, offset, index, n chunks,
# nominal chunk size, payload size, payload CRC-32, file SHA-256
_HEADER = struct.Struct(">4sBBHQQIIIII32s")
HEADER_SIZE = _HEADER.size
MAX_CHUNK_SIZE = 1 << 30
FLAG_ENCRYPTED = 0x01  # old envelope: payload = nonce + ciphertext + tag (wire/crypto.py)
FLAG_SEALED = 0x02  # envelope v2: payload = key id + version time + nonce + ciphertext + tag
_VERSION_TIME = struct.Struct(">Q")
# Payload bytes added by each envelope, by flags.
_OVERHEAD = {0: 0, FLAG_ENCRYPTED: OVERHEAD, FLAG_SEALED: KEY_ID_SIZE + _VERSION_TIME.size + OVERHEAD}
ENCRYPTION_OVERHEAD = _OVERHEAD[FLAG_SEALED]
MAX_VERSION_NS = (1 << 63) - 1  # what the ledger (SQLite INTEGER) can hold
# Wire v2 kinds of a live send (wire/v2.py): appended bytes at an explicit offset, a mark
# of the prefix so far, and the mark that closes the send.
LIVE_DATA, LIVE_MARK, LIVE_END = 3, 4, 5


@dataclass(frozen=True)
class Chunk:
    """One slice of one file, with everything needed to place and verify it.

    labstream's own format gives the file's size and SHA-256 and derives the offset from
    the index; chunks read from openmsistream carry an explicit offset, a SHA-512 and no
    file size (`file_size` -1).
    """

    path: str
    file_size: int
    file_digest: bytes
    index: int
    n_chunks: int
    chunk_size: int
    data: bytes | memoryview
    explicit_offset: int | None = None
    hash_name: str = "sha256"
    # The flag of the envelope `data` is still sealed in (FLAG_ENCRYPTED, FLAG_SEALED), or 0.
    envelope: int = 0
    # When the sender started sending this version (ns since the epoch; see docs/wire-format.md).
    # Authenticated only once `decrypt` has opened an envelope-v2 chunk; 0 otherwise.
    version_ns: int = 0
    # Wire version 2 (wire/v2.py): a random id per file version replaces the digest in every
    # chunk; only the last chunk carries the SHA-256 (`file_digest`, b"" before it). An
    # aborted trailer says this version changed while it was read and will never complete.
    wire_version: int = 1
    file_id: bytes = b""
    aborted: bool = False
    # Wire v2: the name of the instrument (watcher or upload) that sent this version, "" for
    # sends that carry none (older labstream, v1, openmsistream). See docs/wire-format.md.
    source: str = ""
    # Wire v2 live sends (docs/wire-format.md, "Live files"): the kind (KIND_LIVE_DATA, _MARK,
    # _END of wire/v2.py), 0 otherwise. A live data chunk's offset is explicit; a mark's
    # `explicit_offset` is the length of the prefix its `file_digest` covers.
    live: int = 0

    @property
    def encrypted(self) -> bool:
        """`data` is still sealed (see labstream.wire.crypto)."""
        return self.envelope != 0

    @property
    def offset(self) -> int:
        return self.index * self.chunk_size if self.explicit_offset is None else self.explicit_offset

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def key(self) -> tuple[str, bytes, int]:
        """What identifies one version of one file while it travels: (path, SHA-256, size),
        or in wire v2 (path, random file id, size)."""
        return (self.path, self.file_id if self.wire_version == 2 else self.file_digest, self.file_size)

    @property
    def plain_size(self) -> int:
        """How many plaintext bytes this chunk must carry (a live data chunk: as many as it
        says, checked against its chunk size when decoded)."""
        if self.aborted or self.live in (LIVE_MARK, LIVE_END):
            return 0
        if self.live:
            return len(self.data) if not self.encrypted else len(self.data) - ENCRYPTION_OVERHEAD
        return min(self.chunk_size, self.file_size - self.offset)


def n_chunks_for(file_size: int, chunk_size: int) -> int:
    """Number of chunks for a file; an empty file still travels as one empty chunk."""
    return max(1, -(-file_size // chunk_size))


def encode(chunk: Chunk, cipher: PayloadCipher | None = None) -> bytes:
    """The message value for `chunk` (payload sealed if `cipher`). `WireError` if inconsistent."""
    if chunk.wire_version == 2:
        from labstream.wire.v2 import encode_v2

        return encode_v2(chunk, cipher)
    path_bytes = check_relative_path(chunk.path).encode("utf-8")
    flags, payload = seal(chunk, cipher)
    header = _header(chunk, flags, len(path_bytes), len(payload), zlib.crc32(payload))
    value = b"".join((header, path_bytes, payload))
    decode_labstream(memoryview(value)[: HEADER_SIZE + len(path_bytes)], check_payload=False)
    return value


def seal(chunk: Chunk, cipher: PayloadCipher | None) -> tuple[int, bytes | memoryview]:
    """(flags, payload): the payload as is, or sealed in envelope v2 if `cipher`."""
    if cipher is None:
        return 0, chunk.data
    if not 0 <= chunk.version_ns <= MAX_VERSION_NS:
        raise WireError(f"{chunk.path}: version time {chunk.version_ns} out of range")
    prefix = cipher.key_id + _VERSION_TIME.pack(chunk.version_ns)
    associated = _associated_v2(chunk, len(chunk.data) + ENCRYPTION_OVERHEAD, prefix)
    return FLAG_SEALED, prefix + cipher.seal(associated, chunk.data)


def decode_labstream(value: bytes | memoryview, *, check_payload: bool = True) -> Chunk:
    """Parse a message value. Raises `WireError` for anything malformed; never crashes."""
    view = memoryview(value)
    if len(view) < HEADER_SIZE:
        raise WireError(f"message of {len(view)} bytes is shorter than the {HEADER_SIZE}-byte header")
    (
        magic,
        version,
        flags,
        path_len,
        file_size,
        offset,
        index,
        n_chunks,
        chunk_size,
        payload_size,
        crc,
        sha,
    ) = _HEADER.unpack_from(view)
    if magic != MAGIC:
        raise WireError(f"not a labstream chunk (magic {bytes(magic)!r})")
    if version == 2:
        from labstream.wire.v2 import decode_v2

        return decode_v2(view)
    if version != VERSION:
        raise WireError(f"unsupported chunk format version {version} (this labstream reads 1 and 2)")
    if flags not in _OVERHEAD:
        raise WireError(f"unsupported chunk flags {flags:#04x}")
    path = decode_path(view[HEADER_SIZE : HEADER_SIZE + path_len], path_len)
    check_geometry(file_size, offset, index, n_chunks, chunk_size, payload_size - _OVERHEAD[flags])
    expected_len = HEADER_SIZE + path_len + (payload_size if check_payload else 0)
    if check_payload and len(view) != expected_len:
        raise WireError(f"{path}: message is {len(view)} bytes, header says {expected_len}")
    data = view[HEADER_SIZE + path_len :] if check_payload else b""
    if check_payload and zlib.crc32(data) != crc:
        raise ChecksumError(
            f"{path}: chunk {index + 1}/{n_chunks} fails its checksum (corrupted)",
            (path, bytes(sha), file_size),
            index,
        )
    return Chunk(path, file_size, bytes(sha), index, n_chunks, chunk_size, data, envelope=flags)


def associated_data(chunk: Chunk) -> bytes:
    """What the old envelope (flag 0x01) authenticates besides the payload: file and place."""
    return PayloadCipher.associated(
        chunk.path, chunk.file_digest, chunk.file_size, chunk.index, chunk.n_chunks
    )


def decrypt(chunk: Chunk, cipher: PayloadCipher | None) -> Chunk:
    """`chunk` with its payload opened and authenticated; `DecryptionError` if it cannot be.

    With a key configured, a chunk that is not sealed (plaintext, or openmsistream's format)
    is refused too: nothing unauthenticated gets through. An old-envelope chunk (flag 0x01)
    has no version time: it comes back with `version_ns` 0.
    """
    where = f"{chunk.path}: chunk {chunk.index + 1}/{chunk.n_chunks}"
    if cipher is None:
        if chunk.encrypted:
            raise DecryptionError(f"{where} is encrypted and no key is configured", chunk.key, chunk.index)
        return chunk
    if not chunk.encrypted:
        raise DecryptionError(
            f"{where} is not encrypted; refused because an encryption key is configured",
            chunk.key,
            chunk.index,
        )
    if chunk.envelope == FLAG_ENCRYPTED:
        if not cipher.accepts_old_envelope:
            raise DecryptionError(
                f"{where} is sealed in the old envelope (0x01), refused (refuse_old_envelope)",
                chunk.key,
                chunk.index,
            )
        plain, version_ns = cipher.open(associated_data(chunk), chunk.data), 0
    else:
        plain, version_ns = _open_v2(chunk, cipher, where)
    if plain is None:
        raise DecryptionError(f"{where}: cannot decrypt (wrong key, or altered)", chunk.key, chunk.index)
    if len(plain) != chunk.plain_size:
        raise DecryptionError(f"{where}: decrypted size is wrong", chunk.key, chunk.index)
    return dataclasses.replace(chunk, data=plain, envelope=0, version_ns=version_ns)


def _open_v2(chunk: Chunk, cipher: PayloadCipher, where: str) -> tuple[bytes | None, int]:
    prefix = bytes(chunk.data[: KEY_ID_SIZE + _VERSION_TIME.size])
    sealed_with = prefix[:KEY_ID_SIZE]
    if not cipher.knows(sealed_with):
        raise DecryptionError(
            f"{where}: cannot decrypt (wrong key): sealed with key id {sealed_with.hex()}, "
            "which is not among the configured keys",
            chunk.key,
            chunk.index,
        )
    associated = _associated_v2(chunk, len(chunk.data), prefix)
    plain = cipher.open(associated, chunk.data[len(prefix) :], sealed_with)
    (version_ns,) = _VERSION_TIME.unpack_from(prefix, KEY_ID_SIZE)
    if plain is not None and version_ns > MAX_VERSION_NS:
        raise DecryptionError(f"{where}: version time {version_ns} out of range", chunk.key, chunk.index)
    return plain, version_ns


def _associated_v2(chunk: Chunk, payload_size: int, prefix: bytes) -> bytes:
    """Envelope v2 authenticates every header field (the CRC-32 as 0), the path, and the
    key id and version time (`prefix`). In wire v2 the header holds the file id, the kind
    (data, last, aborted) and, in the last chunk, the SHA-256: all authenticated."""
    path_bytes = chunk.path.encode("utf-8")
    if chunk.wire_version == 2:
        from labstream.wire.v2 import header_v2

        source = chunk.source.encode("utf-8")
        header = header_v2(chunk, FLAG_SEALED, len(path_bytes), payload_size)
        return b"".join((header, path_bytes, source, prefix))
    header = _header(chunk, FLAG_SEALED, len(path_bytes), payload_size, 0)
    return b"".join((header, path_bytes, prefix))


def _header(chunk: Chunk, flags: int, path_size: int, payload_size: int, crc: int) -> bytes:
    return _HEADER.pack(
        MAGIC,
        VERSION,
        flags,
        path_size,
        chunk.file_size,
        chunk.offset,
        chunk.index,
        chunk.n_chunks,
        chunk.chunk_size,
        payload_size,
        crc,
        chunk.file_digest,
    )


def decode_path(raw: memoryview, path_len: int) -> str:
    if len(raw) != path_len:
        raise WireError("message truncated inside the file path")
    try:
        return check_relative_path(bytes(raw).decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UnsafePathError(f"file path is not valid UTF-8: {bytes(raw)[:100]!r}") from exc


def check_geometry(
    file_size: int, offset: int, index: int, n_chunks: int, chunk_size: int, payload_size: int
) -> None:
    if chunk_size == 0 or chunk_size & (chunk_size - 1) or chunk_size > MAX_CHUNK_SIZE:
        raise WireError(f"chunk size {chunk_size} is not a power of two up to {MAX_CHUNK_SIZE}")
    if n_chunks != n_chunks_for(file_size, chunk_size):
        raise WireError(f"{n_chunks} chunks cannot hold {file_size} bytes in chunks of {chunk_size}")
    if index >= n_chunks:
        raise WireError(f"chunk index {index} out of range for {n_chunks} chunks")
    if offset != index * chunk_size:
        raise WireError(f"chunk {index} claims offset {offset}, expected {index * chunk_size}")
    if payload_size != min(chunk_size, file_size - offset):
        raise WireError(
            f"chunk {index} claims {payload_size} bytes, expected {min(chunk_size, file_size - offset)}"
        )
