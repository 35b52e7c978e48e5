"""Optional end-to-end encryption of chunk payloads: AES-256-GCM (authenticated).

The only module importing `cryptography` (pip install 'labstream[encryption]'). The key is
32 random bytes, base64-encoded, from a key file (`encryption_key_file` in [labstream], or
LABSTREAM_ENCRYPTION_KEY_FILE) or the LABSTREAM_ENCRYPTION_KEY variable. Each payload is
sealed with a fresh 96-bit nonce; the file's path, digest, size and the chunk's place are
authenticated too, so a chunk cannot be moved to another file or position undetected.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
from pathlib import Path

from labstream.errors import ConfigError

__all__ = ["OVERHEAD", "PayloadCipher", "load_cipher", "new_key"]

NONCE_SIZE = 12
TAG_SIZE = 16
OVERHEAD = NONCE_SIZE + TAG_SIZE


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


class PayloadCipher:
    def __init__(self, key: bytes) -> None:
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError as exc:
            raise ConfigError(
                "encryption needs the cryptography package: pip install 'labstream[encryption]'"
            ) from exc
        if len(key) != 32:
            raise ConfigError(f"the encryption key must be 32 bytes (base64), not {len(key)}")
        self._aead = AESGCM(key)

    @staticmethod
    def associated(path: str, digest: bytes, file_size: int, index: int, n_chunks: int) -> bytes:
        return b"".join(
            (path.encode("utf-8"), b"\0", digest, struct.pack(">qII", file_size, index, n_chunks))
        )

    def seal(self, associated: bytes, plaintext: bytes | memoryview) -> bytes:
        nonce = os.urandom(NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, bytes(plaintext), associated)

    def open(self, associated: bytes, sealed: bytes | memoryview) -> bytes | None:
        """The plaintext, or None if it cannot be authenticated (wrong key, or altered)."""
        from cryptography.exceptions import InvalidTag

        sealed = bytes(sealed)
        try:
            plain: bytes = self._aead.decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], associated)
        except InvalidTag:
            return None
        return plain


def load_cipher(key_file: str | None = None) -> PayloadCipher | None:
    """The configured cipher, or None when no key is configured."""
    key_file = key_file or os.environ.get("LABSTREAM_ENCRYPTION_KEY_FILE")
    if key_file:
        try:
            text = Path(key_file).expanduser().read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read encryption key file {key_file}: {exc.strerror}") from exc
        where = f"key file {key_file}"
    elif os.environ.get("LABSTREAM_ENCRYPTION_KEY"):
        text, where = os.environ["LABSTREAM_ENCRYPTION_KEY"].strip(), "LABSTREAM_ENCRYPTION_KEY"
    else:
        return None
    try:
        return PayloadCipher(base64.b64decode(text, validate=True))
    except binascii.Error as exc:
        raise ConfigError(f"{where}: not a base64 key (make one with `labstream keygen FILE`)") from exc
