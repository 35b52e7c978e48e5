from __future__ import annotations

import contextlib
import hashlib
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labstream.errors import ChecksumError, UnsafePathError, WireError
from labstream.wire import HEADER_SIZE, Chunk, decode, encode, n_chunks_for
from labstream.wire.paths import folded

SAFE_PART = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Cf", "Zl", "Zp"), blacklist_characters="/\\:\x00"),
    min_size=1,
    max_size=20,
).filter(lambda s: s not in (".", ".."))
SAFE_PATH = (
    st.lists(SAFE_PART, min_size=1, max_size=4)
    .filter(lambda parts: folded(parts[0]) != ".labstream")
    .map("/".join)
)


@st.composite
def chunks(draw: st.DrawFn) -> Chunk:
    chunk_size = 1 << draw(st.integers(0, 16))
    content = draw(st.binary(max_size=3 * chunk_size + 5))
    n = n_chunks_for(len(content), chunk_size)
    index = draw(st.integers(0, n - 1))
    data = content[index * chunk_size : (index + 1) * chunk_size]
    return Chunk(draw(SAFE_PATH), len(content), hashlib.sha256(content).digest(), index, n, chunk_size, data)


@given(chunks())
def test_round_trip_keeps_every_field(chunk: Chunk) -> None:
    decoded = decode(encode(chunk))
    assert decoded.path == chunk.path
    assert (decoded.file_size, decoded.file_digest) == (chunk.file_size, chunk.file_digest)
    assert (decoded.index, decoded.n_chunks, decoded.chunk_size) == (
        chunk.index,
        chunk.n_chunks,
        chunk.chunk_size,
    )
    assert decoded.offset == chunk.offset
    assert bytes(decoded.data) == bytes(chunk.data)


@given(st.binary(max_size=400))
def test_random_bytes_raise_wire_error_only(value: bytes) -> None:
    with contextlib.suppress(WireError):
        decode(value)


@settings(max_examples=60)
@given(chunks(), st.data())
def test_every_truncation_is_a_clear_error(chunk: Chunk, data: st.DataObject) -> None:
    value = encode(chunk)
    cut = data.draw(st.integers(0, len(value) - 1))
    with pytest.raises(WireError):
        decode(value[:cut])


@settings(max_examples=200)
@given(chunks(), st.data())
def test_flipped_bytes_never_crash_and_never_misplace_data(chunk: Chunk, data: st.DataObject) -> None:
    value = bytearray(encode(chunk))
    position = data.draw(st.integers(0, len(value) - 1))
    value[position] ^= data.draw(st.integers(1, 255))
    try:
        decoded = decode(bytes(value))
    except WireError:
        return
    # What may change undetected: the path (another safe name), the file SHA-256 (the
    # whole-file check on download catches it) or the nominal chunk size of a file that
    # fits one chunk either way. Never the bytes, nor where they go, nor the file size.
    assert bytes(decoded.data) == bytes(chunk.data)
    assert (decoded.offset, decoded.file_size, decoded.index) == (chunk.offset, chunk.file_size, chunk.index)
    if decoded.path == chunk.path and decoded.file_digest == chunk.file_digest:
        assert decoded.n_chunks == chunk.n_chunks == 1 and decoded.chunk_size != chunk.chunk_size


def _raw(
    path: bytes,
    size: int = 3,
    offset: int = 0,
    index: int = 0,
    n: int = 1,
    chunk_size: int = 4,
    payload: bytes = b"abc",
    crc: int | None = None,
) -> bytes:
    header = struct.pack(
        ">4sBBHQQIIIII32s",
        b"LSCK",
        1,
        0,
        len(path),
        size,
        offset,
        index,
        n,
        chunk_size,
        len(payload),
        zlib.crc32(payload) if crc is None else crc,
        b"\0" * 32,
    )
    return header + path + payload


def test_raw_builder_matches_the_real_encoder() -> None:
    assert decode(_raw(b"a.txt")).path == "a.txt"
    assert HEADER_SIZE == 76


@pytest.mark.parametrize(
    "path",
    [
        b"/etc/passwd",
        b"../escape",
        b"a/../../b",
        b"C:/Windows/x",
        b"c:evil",
        b"a\\b",
        b"a/./b",
        b"a//b",
        b"nul\x00byte",
        b"",
        b"trailing/",
        b"\xff\xfe",
        b"x" * 300,
    ],
)
def test_hostile_paths_are_refused(path: bytes) -> None:
    with pytest.raises(UnsafePathError):
        decode(_raw(path))


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"size": 100}, "chunks cannot hold"),
        ({"offset": 4}, "offset"),
        ({"index": 1}, "out of range"),
        ({"chunk_size": 3}, "power of two"),
        ({"payload": b"abcd", "size": 3}, "claims 4 bytes"),
        ({"n": 0}, "chunks cannot hold"),
    ],
)
def test_lying_geometry_is_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(WireError, match=message):
        decode(_raw(b"f.bin", **fields))  # type: ignore[arg-type]


def test_corrupted_payload_names_the_file_and_chunk() -> None:
    with pytest.raises(ChecksumError, match=r"f\.bin: chunk 1/1") as info:
        decode(_raw(b"f.bin", crc=12345))
    assert info.value.key[0] == "f.bin"


def test_trailing_garbage_is_refused() -> None:
    with pytest.raises(WireError, match="header says"):
        decode(_raw(b"f.bin") + b"x")


def test_unknown_version_and_magic_are_named() -> None:
    value = bytearray(_raw(b"f.bin"))
    value[4] = 9
    with pytest.raises(WireError, match="version 9"):
        decode(bytes(value))
    with pytest.raises(WireError, match="not a labstream or openmsistream chunk"):
        decode(b"XXXX" + bytes(value[4:]))


def test_empty_file_is_one_empty_chunk() -> None:
    chunk = Chunk("empty", 0, hashlib.sha256(b"").digest(), 0, 1, 1024, b"")
    assert n_chunks_for(0, 1024) == 1
    assert decode(encode(chunk)).data == b""


def test_encode_refuses_an_unsafe_path() -> None:
    with pytest.raises(UnsafePathError):
        encode(Chunk("../x", 1, b"\0" * 32, 0, 1, 1, b"a"))
