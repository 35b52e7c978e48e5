from __future__ import annotations

import contextlib
import hashlib

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from labstream.errors import ChecksumError, UnsafePathError, WireError
from labstream.wire import Chunk, decode, encode_openmsistream, openmsistream_key


def omsi(
    name: bytes = b"f.bin",
    folder: bytes = b"run 1/sub",
    data: bytes = b"payload",
    number: int = 1,
    total: int = 1,
    offset: int = 0,
    chunk_hash: bytes | None = None,
    append: bytes = b"",
) -> bytes:
    """A message exactly as openmsistream 1.8.8's DataFileChunkSerializer packs it."""
    return msgpack.packb(
        [
            name,
            hashlib.sha512(data).digest(),
            chunk_hash or hashlib.sha512(data).digest(),
            offset,
            number,
            total,
            folder,
            append,
            data,
            0.0,
        ],
        use_bin_type=True,
    )


def test_openmsistream_chunks_are_detected_and_read() -> None:
    chunk = decode(omsi(number=2, total=3, offset=7))
    assert (chunk.path, chunk.index, chunk.n_chunks, chunk.offset) == ("run 1/sub/f.bin", 1, 3, 7)
    assert chunk.hash_name == "sha512" and chunk.file_size == -1 and bytes(chunk.data) == b"payload"
    assert decode(omsi(folder=b"", append=b"_v2")).path == "f_v2.bin"


def test_written_openmsistream_chunks_read_back() -> None:
    data = b"x" * 100
    chunk = Chunk("a b/c.dat", 100, hashlib.sha512(data).digest(), 0, 1, 128, data, hash_name="sha512")
    back = decode(encode_openmsistream(chunk))
    assert (back.path, back.file_digest, bytes(back.data)) == ("a b/c.dat", chunk.file_digest, data)
    assert openmsistream_key("a b/c.dat", 0, 1) == b"a b_c.dat_chunk_1_of_1"
    assert openmsistream_key("c.dat", 4, 9) == b"_c.dat_chunk_5_of_9"


@pytest.mark.parametrize("folder", [b"/etc", b"../..", b"a/../../b", b"C:/x", b"a\\b"])
def test_hostile_openmsistream_folders_are_refused(folder: bytes) -> None:
    with pytest.raises(UnsafePathError):
        decode(omsi(folder=folder))


def test_corrupted_openmsistream_chunk_names_the_file() -> None:
    with pytest.raises(ChecksumError, match=r"run 1/sub/f\.bin: chunk 1/1 fails its checksum"):
        decode(omsi(chunk_hash=b"\0" * 64))


@pytest.mark.parametrize("fields", [{"number": 0}, {"number": 3, "total": 2}, {"offset": -1}])
def test_impossible_positions_are_refused(fields: dict[str, int]) -> None:
    with pytest.raises(WireError):
        decode(omsi(**fields))  # type: ignore[arg-type]


@pytest.mark.parametrize("offset", [2**64 - 1, 2**63 - 1, 2**63 - 7])
def test_an_offset_no_file_can_have_is_refused_at_decode_time(offset: int) -> None:
    with pytest.raises(
        WireError, match=r"^run 1/sub/f\.bin: chunk 1/1 at offset \d+ ends beyond any file's size$"
    ):
        decode(omsi(offset=offset))  # 7 bytes of payload: the last one ends past 2^63 - 1


def test_the_last_offset_a_file_can_have_is_read() -> None:
    assert decode(omsi(offset=2**63 - 8)).offset == 2**63 - 8


@given(st.sampled_from([b"\x99", b"\x9a"]), st.binary(max_size=300))
def test_garbage_that_looks_like_msgpack_is_a_wire_error(prefix: bytes, rest: bytes) -> None:
    with contextlib.suppress(WireError):
        decode(prefix + rest)
