from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import sqlite3
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from labstream.cli.keygen import keygen
from labstream.download import Assembler, Ledger, Outcome
from labstream.errors import ConfigError, DecryptionError, WireError
from labstream.kafka import Record
from labstream.wire import Chunk, decode, encode_openmsistream, n_chunks_for, wire_format
from labstream.wire.chunk import FLAG_ENCRYPTED, HEADER_SIZE, associated_data, decrypt, encode
from labstream.wire.crypto import PayloadCipher, key_id, load_cipher, new_key

CHUNK = 1024


def chunk(data: bytes = b"spectrum 1,2,3" * 10, index: int = 0, version_ns: int = 7) -> Chunk:
    return Chunk(
        "run/a.csv", len(data), hashlib.sha256(data).digest(), index, 1, 4096, data, version_ns=version_ns
    )


def recrc(value: bytes, path_len: int) -> bytes:
    """`value` with its payload CRC-32 made right again (as an attacker would)."""
    payload = value[HEADER_SIZE + path_len :]
    return value[:40] + struct.pack(">I", zlib.crc32(payload)) + value[44:]


def old_envelope(c: Chunk, cipher: PayloadCipher) -> bytes:
    """`c` as labstream <= 0.x sealed it: flag 0x01, no key id, no version time."""
    payload = cipher.seal(associated_data(c), c.data)
    path = c.path.encode()
    header = struct.pack(
        ">4sBBHQQIIIII32s",
        b"LSCK",
        1,
        FLAG_ENCRYPTED,
        len(path),
        c.file_size,
        c.offset,
        c.index,
        c.n_chunks,
        c.chunk_size,
        len(payload),
        zlib.crc32(payload),
        c.file_digest,
    )
    return header + path + payload


def test_sealed_payload_round_trips_with_its_version_time_and_hides_the_data() -> None:
    cipher = PayloadCipher(os.urandom(32))
    value = encode(chunk(version_ns=123456789), cipher)
    assert b"spectrum" not in value
    opened = decrypt(decode(value), cipher)
    assert bytes(opened.data) == chunk().data and not opened.encrypted
    assert opened.version_ns == 123456789


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
    with pytest.raises(DecryptionError):
        decrypt(dataclasses.replace(original, path="other.csv"), cipher)


def test_version_time_and_every_header_field_are_authenticated() -> None:
    cipher = PayloadCipher(os.urandom(32))
    value = encode(chunk(version_ns=1000), cipher)
    path_len = len(b"run/a.csv")
    start = HEADER_SIZE + path_len
    newer = value[: start + 4] + struct.pack(">Q", 2000) + value[start + 12 :]
    with pytest.raises(DecryptionError, match="cannot decrypt"):
        decrypt(decode(recrc(newer, path_len)), cipher)
    # A chunk size the old envelope did not authenticate: still a valid geometry for 1 chunk.
    bigger = value[:32] + struct.pack(">I", 8192) + value[36:]
    with pytest.raises(DecryptionError, match="cannot decrypt"):
        decrypt(decode(bigger), cipher)


def test_with_a_key_plaintext_and_openmsistream_chunks_are_refused() -> None:
    cipher = PayloadCipher(os.urandom(32))
    with pytest.raises(DecryptionError, match="not encrypted; refused"):
        decrypt(decode(encode(chunk())), cipher)
    data = b"x" * 100
    oms = Chunk("a.bin", len(data), hashlib.sha512(data).digest(), 0, 1, 4096, data, hash_name="sha512")
    with pytest.raises(DecryptionError, match="not encrypted; refused"):
        decrypt(decode(encode_openmsistream(oms)), cipher)


def test_old_envelope_still_opens_with_version_time_zero() -> None:
    old_key, new = os.urandom(32), os.urandom(32)
    value = old_envelope(chunk(), PayloadCipher(old_key))
    opened = decrypt(decode(value), PayloadCipher(old_key, new))
    assert bytes(opened.data) == chunk().data and opened.version_ns == 0
    with pytest.raises(DecryptionError, match="cannot decrypt"):
        decrypt(decode(value), PayloadCipher(new))


def test_a_reader_told_to_refuses_the_old_envelope_and_still_opens_envelope_v2() -> None:
    key = os.urandom(32)
    reader = PayloadCipher(key)
    reader.accepts_old_envelope = False
    with pytest.raises(DecryptionError, match=r"old envelope \(0x01\), refused"):
        decrypt(decode(old_envelope(chunk(), PayloadCipher(key))), reader)
    sealed = encode(dataclasses.replace(chunk(), version_ns=5), PayloadCipher(key))
    assert bytes(decrypt(decode(sealed), reader).data) == chunk().data


def test_refuse_old_envelope_is_a_download_setting_that_needs_a_key(tmp_path: Path) -> None:
    from labstream.config import load_config
    from labstream.errors import ConfigError
    from labstream.settings import download_settings

    key_file = tmp_path / "lab.key"
    key_file.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    config = tmp_path / "c.config"
    config.write_text("[cluster]\nbootstrap.servers = x:1\n[labstream]\nrefuse_old_envelope = yes\n")
    given = {"out_dir": tmp_path / "out", "topic": "t"}
    with pytest.raises(ConfigError, match="needs an encryption key"):
        download_settings(load_config(str(config)), given)
    settings = download_settings(load_config(str(config)), {**given, "encryption_key_file": str(key_file)})
    assert settings.cipher is not None and not settings.cipher.accepts_old_envelope


def test_rotation_seals_with_the_newest_key_and_reads_the_older(tmp_path: Path) -> None:
    key_file = tmp_path / "lab.key"
    assert CliRunner().invoke(keygen, [str(key_file)]).exit_code == 0
    before = load_cipher(str(key_file))
    assert before is not None
    sealed_old = encode(chunk(b"old data"), before)
    refused = CliRunner().invoke(keygen, [str(key_file)])
    assert refused.exit_code != 0 and key_file.read_text().count("\n") == 1  # never overwritten
    assert CliRunner().invoke(keygen, ["--rotate", str(key_file)]).exit_code == 0
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    after = load_cipher(str(key_file))
    assert after is not None and after.key_id != before.key_id
    sealed_new = encode(chunk(b"new data"), after)
    assert decode(sealed_new).data[:4] == after.key_id  # the id travels in the envelope
    assert bytes(decrypt(decode(sealed_old), after).data) == b"old data"
    assert bytes(decrypt(decode(sealed_new), after).data) == b"new data"
    with pytest.raises(DecryptionError, match="not among the configured keys"):
        decrypt(decode(sealed_new), before)
    newest_only = PayloadCipher(base64.b64decode(key_file.read_text().split()[-1]))
    with pytest.raises(DecryptionError, match="not among the configured keys"):
        decrypt(decode(sealed_old), newest_only)


def test_keys_from_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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
    ring = tmp_path / "ring.key"
    first, second = new_key(), new_key()
    ring.write_text(f"# lab keys, oldest first\n{first}\n\n{second}\n")
    cipher = load_cipher(str(ring))
    assert cipher is not None and cipher.key_id == key_id(base64.b64decode(second))
    ring.write_text(f"{first}\n{first}\n")
    with pytest.raises(ConfigError, match="listed twice"):
        load_cipher(str(ring))
    ring.write_text("\n# nothing\n")
    with pytest.raises(ConfigError, match="no key in it"):
        load_cipher(str(ring))


# --- the downloader's side: refusing plaintext and older versions -----------------------


@pytest.fixture
def cipher() -> PayloadCipher:
    return PayloadCipher(os.urandom(32))


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture
def verdicts() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def assembler(out: Path, cipher: PayloadCipher, verdicts: list[tuple[str, str]]) -> Iterator[Assembler]:
    with Ledger(out / ".labstream" / "ledger.sqlite") as ledger:
        assembler = Assembler(out, ledger, lambda v: verdicts.append((v.path, v.outcome)), cipher)
        yield assembler
        assembler.close()


def messages(
    path: str, content: bytes, cipher: PayloadCipher | None, version_ns: int, start: int = 0
) -> list[Record]:
    digest, n = hashlib.sha256(content).digest(), n_chunks_for(len(content), CHUNK)
    chunks = [
        Chunk(
            path,
            len(content),
            digest,
            i,
            n,
            CHUNK,
            content[i * CHUNK : (i + 1) * CHUNK],
            version_ns=version_ns,
        )
        for i in range(n)
    ]
    return [Record("t", 0, start + i, path.encode(), encode(c, cipher)) for i, c in enumerate(chunks)]


def feed(assembler: Assembler, records: list[Record]) -> list[Outcome]:
    outcomes = [assembler.add(r) for r in records]
    assembler.commit()
    return outcomes


def test_plaintext_chunk_is_a_failed_file_and_never_replaces_an_encrypted_one(
    assembler: Assembler, cipher: PayloadCipher, out: Path, verdicts: list[tuple[str, str]]
) -> None:
    secret = os.urandom(3 * CHUNK)
    assert feed(assembler, messages("a.bin", secret, cipher, 10))[-1] is Outcome.COMPLETE
    forged = messages("a.bin", b"forged", None, 0, start=10)
    assert feed(assembler, forged) == [Outcome.FAILED]
    assert (out / "a.bin").read_bytes() == secret
    assert feed(assembler, messages("new.bin", b"plain", None, 0, start=20)) == [Outcome.FAILED]
    assert not (out / "new.bin").exists()
    assert verdicts == [("a.bin", "verified"), ("a.bin", "failed"), ("new.bin", "failed")]


def test_forged_chunk_inside_an_encrypted_file_does_not_stop_it(
    assembler: Assembler, cipher: PayloadCipher, out: Path
) -> None:
    content = os.urandom(3 * CHUNK)
    authentic = messages("a.bin", content, cipher, 10)
    forged = messages("a.bin", content, None, 10, start=50)  # same path, digest and size
    outcomes = feed(assembler, [authentic[0], forged[1], authentic[1], authentic[2]])
    assert outcomes == [Outcome.INCOMPLETE, Outcome.REJECTED, Outcome.INCOMPLETE, Outcome.COMPLETE]
    assert (out / "a.bin").read_bytes() == content


def test_replayed_older_version_never_replaces_a_newer_one(
    assembler: Assembler, cipher: PayloadCipher, out: Path
) -> None:
    old, new = os.urandom(2 * CHUNK), os.urandom(2 * CHUNK)
    old_messages = messages("run/x.dat", old, cipher, 1_000)
    feed(assembler, messages("run/x.dat", new, cipher, 2_000))
    assert feed(assembler, old_messages) == [Outcome.FAILED, Outcome.DUPLICATE]
    assert (out / "run" / "x.dat").read_bytes() == new
    (out / "run" / "x.dat").unlink()  # not even when the newer copy is gone
    assert feed(assembler, old_messages)[0] is Outcome.FAILED
    assert not (out / "run" / "x.dat").exists()
    assert feed(assembler, messages("run/x.dat", old, cipher, 3_000))[-1] is Outcome.COMPLETE


def test_older_version_completing_in_the_same_batch_loses(
    assembler: Assembler, cipher: PayloadCipher, out: Path
) -> None:
    old, new = os.urandom(CHUNK), os.urandom(CHUNK)
    both = messages("x.dat", new, cipher, 2_000) + messages("x.dat", old, cipher, 1_000, start=5)
    assert feed(assembler, both) == [Outcome.COMPLETE, Outcome.FAILED]
    assert (out / "x.dat").read_bytes() == new


def test_old_envelope_is_version_zero_refused_once_a_newer_version_is_held(
    assembler: Assembler, cipher: PayloadCipher, out: Path
) -> None:
    content = b"legacy"
    legacy = chunk(content)
    legacy = dataclasses.replace(legacy, path="l.txt")
    record = Record("t", 0, 0, b"l.txt", old_envelope(legacy, cipher))
    assert feed(assembler, [record]) == [Outcome.COMPLETE]
    assert (out / "l.txt").read_bytes() == content
    feed(assembler, messages("l.txt", b"current", cipher, 5, start=1))
    replay = old_envelope(dataclasses.replace(chunk(b"other"), path="l.txt"), cipher)
    assert feed(assembler, [Record("t", 0, 9, b"l.txt", replay)]) == [Outcome.FAILED]
    assert (out / "l.txt").read_bytes() == b"current"


def test_chunks_of_one_version_must_share_its_version_time(
    assembler: Assembler, cipher: PayloadCipher, out: Path, verdicts: list[tuple[str, str]]
) -> None:
    content = os.urandom(3 * CHUNK)
    first, other = messages("m.bin", content, cipher, 10), messages("m.bin", content, cipher, 20)
    # A chunk of another send (a replay, or a stray) is not placed and does not stop this one.
    assert feed(assembler, [first[0], other[1], other[2]]) == [Outcome.INCOMPLETE] + [Outcome.REJECTED] * 2
    assert not (out / "m.bin").exists() and verdicts == []
    assert feed(assembler, first[1:]) == [Outcome.INCOMPLETE, Outcome.COMPLETE]
    assert (out / "m.bin").read_bytes() == content


def test_interrupted_send_then_a_full_resend_completes(
    assembler: Assembler, cipher: PayloadCipher, out: Path
) -> None:
    content = os.urandom(4 * CHUNK)
    crashed = messages("r.bin", content, cipher, 10)[:2]
    resent = messages("r.bin", content, cipher, 20, start=2)
    outcomes = feed(assembler, crashed + resent)
    assert outcomes[-1] is Outcome.COMPLETE and Outcome.FAILED not in outcomes
    assert (out / "r.bin").read_bytes() == content


def test_ledger_written_before_version_times_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE files (path TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL, "
        "status TEXT NOT NULL, reason TEXT, finished_at REAL NOT NULL, PRIMARY KEY (path, sha256, size))"
    )
    db.execute("INSERT INTO files VALUES ('a', 'ab', 1, 'verified', '', 0)")
    db.commit()
    db.close()
    with Ledger(path) as ledger:
        assert ledger.newest_version("a") == 0 and ledger.status("a", b"\xab", 1) == "verified"
        ledger.record("a", b"\xcd", 2, "verified", version_ns=50)
        ledger.record("a", b"\xcd", 2, "processed")  # a processor's row keeps the version time
        ledger.record("a", b"\xef", 3, "failed", version_ns=99)  # never written: not held
        assert ledger.newest_version("a") == 50
    with Ledger(path) as ledger:
        assert ledger.newest_version("a") == 50
