from __future__ import annotations

import hashlib
import os

import pytest

from labstream.errors import ConfigError, DecryptionError, WireError
from labstream.wire import Chunk, decode, wire_format
from labstream.wire.chunk import decrypt, encode
from labstream.wire.crypto import PayloadCipher, load_cipher, new_key


def chunk(data: bytes = b"spectrum 1,2,3" * 10, index: int = 0) -> Chunk:
    return Chunk("run/a.csv", len(data), hashlib.sha256(data).digest(), index, 1, 4096, data)


def test_sealed_payload_round_trips_and_hides_the_data() -> None:
    cipher = PayloadCipher(os.urandom(32))
    value = encode(chunk(), cipher)
    assert b"spectrum" not in value
    opened = decrypt(decode(value), cipher)
    assert bytes(opened.data) == chunk().data and not opened.encrypted


def test_wrong_key_missing_key_and_tampering_are_clear_errors() -> None:
    value = encode(chunk(), PayloadCipher(os.urandom(32)))
    with pytest.raises(DecryptionError, match="cannot decrypt"):
        decrypt(decode(value), PayloadCipher(os.urandom(32)))
    with pytest.raises(DecryptionError, match="no key is configured"):
        decrypt(decode(value), None)
    cipher = PayloadCipher(os.urandom(32))
    tampered = bytearray(encode(chunk(), cipher))
    tampered[-1] ^= 1
    with pytest.raises(WireError):  # the CRC catches it first; the tag would too
        decrypt(decode(bytes(tampered)), cipher)


def test_a_chunk_cannot_be_moved_to_another_file() -> None:
    cipher = PayloadCipher(os.urandom(32))
    original = decode(encode(chunk(), cipher))
    moved = Chunk(
        "other.csv", original.file_size, original.file_digest, 0, 1, 4096, original.data, encrypted=True
    )
    with pytest.raises(DecryptionError):
        decrypt(moved, cipher)


def test_keys_from_file_and_environment(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABSTREAM_ENCRYPTION_KEY", raising=False)
    monkeypatch.delenv("LABSTREAM_ENCRYPTION_KEY_FILE", raising=False)
    assert load_cipher() is None
    monkeypatch.setenv("LABSTREAM_ENCRYPTION_KEY", new_key())
    assert load_cipher() is not None
    monkeypatch.setenv("LABSTREAM_ENCRYPTION_KEY", "not base64!")
    with pytest.raises(ConfigError, match="not a base64 key"):
        load_cipher()
    with pytest.raises(ConfigError, match="openmsistream cannot read it"):
        wire_format("openmsistream", PayloadCipher(os.urandom(32)))
