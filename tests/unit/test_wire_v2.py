"""Wire v2: random file id per send, SHA-256 in the last chunk, aborted trailers."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labstream.errors import DecryptionError, WireError
from labstream.wire import Chunk, decode, encode, n_chunks_for
from labstream.wire.chunk import decrypt
from labstream.wire.crypto import PayloadCipher
from labstream.wire.v2 import HEADER_V2_SIZE, aborted_trailer, new_file_id

from .test_wire import SAFE_PATH


def v2_chunks_of(path: str, content: bytes, chunk_size: int, file_id: bytes | None = None) -> list[Chunk]:
    file_id = file_id or new_file_id()
    n = n_chunks_for(len(content), chunk_size)
    digest = hashlib.sha256(content).digest()
    return [
        Chunk(
            path,
            len(content),
            digest if i == n - 1 else b"",
            i,
            n,
            chunk_size,
            content[i * chunk_size : (i + 1) * chunk_size],
            wire_version=2,
            file_id=file_id,
            version_ns=1,
        )
        for i in range(n)
    ]


@st.composite
def v2_chunks(draw: st.DrawFn) -> Chunk:
    chunk_size = 1 << draw(st.integers(0, 16))
    content = draw(st.binary(max_size=3 * chunk_size + 5))
    chunks = v2_chunks_of(draw(SAFE_PATH), content, chunk_size, draw(st.binary(min_size=16, max_size=16)))
    if draw(st.booleans()) and draw(st.booleans()):
        first = chunks[0]
        return aborted_trailer(first.path, first.file_size, chunk_size, first.file_id, 1)
    return draw(st.sampled_from(chunks))


@given(v2_chunks())
def test_v2_round_trip_keeps_every_field(chunk: Chunk) -> None:
    decoded = decode(encode(chunk))
    for field in (
        "path",
        "file_size",
        "file_digest",
        "index",
        "n_chunks",
        "chunk_size",
        "file_id",
        "aborted",
    ):
        assert getattr(decoded, field) == getattr(chunk, field), field
    assert decoded.wire_version == 2
    assert decoded.key == (chunk.path, chunk.file_id, chunk.file_size)
    assert bytes(decoded.data) == bytes(chunk.data)


@given(st.binary(max_size=400))
def test_v2_random_bytes_raise_wire_error_only(value: bytes) -> None:
    with contextlib.suppress(WireError):
        decode(b"LSCK\x02" + value)


@settings(max_examples=60)
@given(v2_chunks(), st.data())
def test_v2_every_truncation_is_a_clear_error(chunk: Chunk, data: st.DataObject) -> None:
    value = encode(chunk)
    with pytest.raises(WireError):
        decode(value[: data.draw(st.integers(0, len(value) - 1))])


@settings(max_examples=300)
@given(v2_chunks(), st.data())
def test_v2_flipped_bytes_never_crash_and_stay_self_consistent(chunk: Chunk, data: st.DataObject) -> None:
    """No CRC in v2: a flipped payload byte is caught by the file SHA-256 (and Kafka's own
    record CRC-32C in transit). What the decoder promises: only WireError, and whatever it
    returns fits its own layout, so it can never be written outside the file's bounds."""
    value = bytearray(encode(chunk))
    value[data.draw(st.integers(0, len(value) - 1))] ^= data.draw(st.integers(1, 255))
    try:
        decoded = decode(bytes(value))
    except WireError:
        return
    assert decoded.offset == (0 if decoded.aborted else decoded.index * decoded.chunk_size)
    assert len(decoded.data) == decoded.plain_size
    assert decoded.offset + len(decoded.data) <= max(decoded.file_size, 0)
    assert bool(decoded.file_digest) == (not decoded.aborted and decoded.index == decoded.n_chunks - 1)


def _header(kind: int, index: int, n: int, sha: bytes, payload: bytes, flags: int = 0) -> bytes:
    size = 3 if n == 1 else 4 + 3
    header = struct.pack(
        ">4sBBBBHQIIII16s32s", b"LSCK", 2, flags, kind, 0, 5, size, index, n, 4, len(payload), b"i" * 16, sha
    )
    return header + b"f.bin" + payload


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (_header(0, 0, 2, b"\1" * 32, b"abcd"), "carries a digest"),
        (_header(0, 0, 1, bytes(32), b"abc"), "wrong kind"),
        (_header(1, 0, 2, b"\1" * 32, b"abcd"), "wrong kind"),
        (_header(2, 0, 1, bytes(32), b"abc"), "carries no data"),
        (_header(2, 0, 1, b"\1" * 32, b""), "carries a digest"),
        (_header(6, 0, 1, bytes(32), b"abc"), "kind 6"),
        (_header(3, 0, 1, bytes(32), b"abc"), "no chunk count"),  # live data names no count
        (_header(1, 0, 1, b"\1" * 32, b"abc", flags=1), "flags"),
        (_header(1, 0, 1, b"\1" * 32, b"abc") + b"x", "header says"),
    ],
)
def test_v2_lies_are_refused(value: bytes, message: str) -> None:
    with pytest.raises(WireError, match=message):
        decode(value)


def test_v2_header_size_and_ids_are_random() -> None:
    assert HEADER_V2_SIZE == 82
    assert new_file_id() != new_file_id()


def test_v1_stays_readable() -> None:
    chunk = Chunk("a.txt", 3, hashlib.sha256(b"abc").digest(), 0, 1, 4, b"abc")
    decoded = decode(encode(chunk))
    assert decoded.wire_version == 1 and decoded.key == ("a.txt", chunk.file_digest, 3)


@pytest.fixture
def cipher() -> PayloadCipher:
    return PayloadCipher(os.urandom(32))


def test_v2_sealed_chunks_authenticate_digest_id_and_kind(cipher: PayloadCipher) -> None:
    last = v2_chunks_of("f.bin", b"x" * 10, 4)[-1]
    value = encode(last, cipher)
    opened = decrypt(decode(value), cipher)
    assert bytes(opened.data) == b"xx" and opened.file_digest == last.file_digest
    digest_at = 4 + 1 + 1 + 1 + 1 + 2 + 8 + 4 * 4 + 16
    for position in (6, digest_at - 16, digest_at):  # kind, file id, SHA-256
        forged = bytearray(value)
        forged[position] ^= 1
        with contextlib.suppress(WireError), pytest.raises(DecryptionError):
            decrypt(decode(bytes(forged)), cipher)


def test_v2_aborted_trailer_is_sealed_too(cipher: PayloadCipher) -> None:
    trailer = aborted_trailer("f.bin", 10, 4, new_file_id(), 7)
    opened = decrypt(decode(encode(trailer, cipher)), cipher)
    assert opened.aborted and opened.version_ns == 7
    plain = decode(encode(trailer))
    with pytest.raises(DecryptionError, match="not encrypted"):
        decrypt(plain, cipher)
    other = dataclasses.replace(trailer, file_id=new_file_id())
    sealed = bytearray(encode(trailer, cipher))
    sealed[HEADER_V2_SIZE - 48 : HEADER_V2_SIZE - 32] = other.file_id  # moved to another file
    with pytest.raises(DecryptionError):
        decrypt(decode(bytes(sealed)), cipher)


def test_the_source_travels_in_byte_7_after_the_path_and_a_send_without_one_reads_as_before() -> None:
    (chunk,) = v2_chunks_of("run1/x.dat", b"data", 1024)
    plain = encode(chunk)
    named = encode(dataclasses.replace(chunk, source="pc-sem"))
    assert plain[7] == 0 and named[7] == len("pc-sem")
    assert named[HEADER_V2_SIZE + len("run1/x.dat") :].startswith(b"pc-sem")
    assert decode(plain).source == "" and decode(named).source == "pc-sem"
    assert bytes(decode(named).data) == b"data"


@pytest.mark.parametrize("source", ["a/b", "..", "CON", "x" * 256, "bad\u202ename", ".labstream"])
def test_a_source_no_filesystem_could_name_a_folder_after_is_refused_both_ways(source: str) -> None:
    (chunk,) = v2_chunks_of("x.dat", b"d", 1024)
    with pytest.raises(WireError):
        encode(dataclasses.replace(chunk, source=source))
    if len(source.encode()) > 255:
        return  # its length cannot even be written in the byte that carries it
    good = bytearray(encode(dataclasses.replace(chunk, source="s" * len(source.encode()[:255]))))
    raw = source.encode()[:255]
    start = HEADER_V2_SIZE + len("x.dat")
    good[7] = len(raw)
    good[start : start + len(raw)] = raw  # the same length: only the name differs
    with pytest.raises(WireError):
        decode(bytes(good))


def test_with_a_key_the_source_is_authenticated() -> None:
    cipher = PayloadCipher(os.urandom(32))
    (chunk,) = v2_chunks_of("x.dat", b"secret", 1024)
    sealed = bytearray(encode(dataclasses.replace(chunk, source="pc-xrd", version_ns=1), cipher))
    assert decrypt(decode(bytes(sealed)), cipher).source == "pc-xrd"
    start = HEADER_V2_SIZE + len("x.dat")
    sealed[start : start + 6] = b"pc-sem"  # another instrument's name, same length
    moved = decode(bytes(sealed))
    assert moved.source == "pc-sem"
    with pytest.raises(DecryptionError, match="cannot decrypt"):
        decrypt(moved, cipher)
