"""Optional end-to-end encryption of chunk payloads: AES-256-GCM (authenticated).

The only module importing `cryptography` (pip install 'labstream[encryption]'). A key is
32 random bytes, base64-encoded. A key file (`encryption_key_file` in [labstream], or
LABSTREAM_ENCRYPTION_KEY_FILE; or the LABSTREAM_ENCRYPTION_KEY variable) holds one key per
line, oldest first: new data is sealed with the LAST key, data sealed with any listed key can
still be opened (key rotation: `labstream keygen --rotate FILE` appends a key). A key's id is
the first 4 bytes of SHA-256("labstream key id" || key); it travels in the envelope.

Each payload is sealed with a fresh 96-bit nonce; the chunk's header, path, key id and
version time are authenticated too (docs/wire-format.md), so a chunk cannot be moved to
another file or position, nor an old version pass for a newer one, undetected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct
from pathlib import Path

from labstream.errors import ConfigError

__all__ = ["KEY_ID_SIZE", "OVERHEAD", "PayloadCipher", "key_id", "load_cipher", "new_key"]

NONCE_SIZE = 12
TAG_SIZE = 16
OVERHEAD = NONCE_SIZE + TAG_SIZE
KEY_ID_SIZE = 4


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def key_id(key: bytes) -> bytes:
    """The 4-byte id of `key` that travels in the envelope (reveals nothing of the key)."""
    return hashlib.sha256(b"labstream key id\0" + key).digest()[:KEY_ID_SIZE]


class PayloadCipher:
    """A key ring: seals with the newest (last) key, opens with whichever key sealed."""

    def __init__(self, *keys: bytes) -> None:
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError as exc:
            raise ConfigError(
                "encryption needs the cryptography package: pip install 'labstream[encryption]'"
            ) from exc
        if not keys:
            raise ConfigError("no encryption key given")
        self._keys: dict[bytes, AESGCM] = {}
        for key in keys:
            if len(key) != 32:
                raise ConfigError(f"an encryption key must be 32 bytes (base64), not {len(key)}")
            if key_id(key) in self._keys:
                raise ConfigError("the same encryption key (or key id) is listed twice")
            self._keys[key_id(key)] = AESGCM(key)
        self.key_id = key_id(keys[-1])
        # The old envelope (flag 0x01) has no version time, so an authentic old copy replayed
        # after a newer one can roll a file back; a reader can refuse it (refuse_old_envelope).
        self.accepts_old_envelope = True

    @staticmethod
    def associated(path: str, digest: bytes, file_size: int, index: int, n_chunks: int) -> bytes:
        """Associated data of the old envelope (flag 0x01)."""
        return b"".join(
            (path.encode("utf-8"), b"\0", digest, struct.pack(">qII", file_size, index, n_chunks))
        )

    def seal(self, associated: bytes, plaintext: bytes | memoryview) -> bytes:
        """nonce || ciphertext || tag, sealed with the newest key (id `self.key_id`)."""
        nonce = os.urandom(NONCE_SIZE)
        return nonce + self._keys[self.key_id].encrypt(nonce, bytes(plaintext), associated)

    def open(
        self, associated: bytes, sealed: bytes | memoryview, sealed_with: bytes | None = None
    ) -> bytes | None:
        """The plaintext, or None if it cannot be authenticated (wrong key, or altered).

        `sealed_with` is the key id from the envelope; without one (old envelope) every key
        is tried.
        """
        from cryptography.exceptions import InvalidTag

        sealed = bytes(sealed)
        if sealed_with is None:
            candidates = list(self._keys.values())
        elif sealed_with in self._keys:
            candidates = [self._keys[sealed_with]]
        else:
            return None
        for aead in candidates:
            try:
                plain: bytes = aead.decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], associated)
            except InvalidTag:
                continue
            return plain
        return None

    def knows(self, sealed_with: bytes) -> bool:
        return sealed_with in self._keys


def load_cipher(key_file: str | None = None) -> PayloadCipher | None:
    """The configured key ring, or None when no key is configured."""
    key_file = key_file or os.environ.get("LABSTREAM_ENCRYPTION_KEY_FILE")
    if key_file:
        try:
            text = Path(key_file).expanduser().read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read encryption key file {key_file}: {exc.strerror}") from exc
        where = f"key file {key_file}"
    elif os.environ.get("LABSTREAM_ENCRYPTION_KEY"):
        text, where = os.environ["LABSTREAM_ENCRYPTION_KEY"], "LABSTREAM_ENCRYPTION_KEY"
    else:
        return None
    return PayloadCipher(*parse_keys(text, where))


def parse_keys(text: str, where: str) -> list[bytes]:
    """One base64 key per line, oldest first; blank lines and `#` comments are skipped."""
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            keys.append(base64.b64decode(line, validate=True))
        except binascii.Error as exc:
            raise ConfigError(
                f"{where} line {number}: not a base64 key (make one with `labstream keygen FILE`)"
            ) from exc
    if not keys:
        raise ConfigError(f"{where}: no key in it (make one with `labstream keygen FILE`)")
    return keys
