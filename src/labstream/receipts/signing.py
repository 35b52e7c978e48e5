"""Ed25519 keys for receipts: a downloader signs, the instrument side trusts listed public keys.

The only module of `receipts` importing `cryptography` (a core dependency).
A signing key is a PKCS#8 PEM file (mode 0600); its public key a SubjectPublicKeyInfo PEM
file next to it, `NAME.pub`. A key id is the first 8 bytes (16 hex digits) of the SHA-256 of
the raw 32-byte public key: receipts name the key that signed them, and a verifier counts
one group per key id, whatever group name a receipt claims.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from labstream.errors import ConfigError
from labstream.heartbeat.format import Trust

__all__ = [
    "SigningKey",
    "TrustedKeys",
    "heartbeat_signer",
    "heartbeat_verifier",
    "key_id_of",
    "write_keypair",
]

KEYGEN_HINT = "make a pair with `labstream keygen --receipts NAME` (writes NAME and NAME.pub)"
_MAX_KEY_FILE = 16 * 1024


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:
        raise ConfigError(
            "signed receipts need the cryptography package: pip install 'labstream[encryption]'"
        ) from exc
    return serialization, ed25519


def key_id_of(raw_public: bytes) -> str:
    return hashlib.sha256(raw_public).hexdigest()[:16]


def _raw(public_key: Any) -> bytes:
    serialization, _ = _crypto()
    raw: bytes = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw


def _read(path: Path, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > _MAX_KEY_FILE:
        raise ConfigError(f"{what} {path}: too large for a key file")
    return data


class SigningKey:
    """A group's private receipt key; `sign` is thread-safe."""

    def __init__(self, private_key: Any) -> None:
        self._key = private_key
        self.public_raw = _raw(private_key.public_key())
        self.key_id = key_id_of(self.public_raw)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SigningKey:
        serialization, ed25519 = _crypto()
        data = _read(Path(path), "receipt signing key")
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"receipt signing key {path}: not a PEM private key ({KEYGEN_HINT})") from exc
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise ConfigError(f"receipt signing key {path}: not an Ed25519 key ({KEYGEN_HINT})")
        return cls(key)

    def sign(self, message: bytes) -> bytes:
        signature: bytes = self._key.sign(message)
        return signature


class TrustedKeys:
    """Public keys whose receipts count: key id -> Ed25519 public key."""

    def __init__(self, keys: dict[str, Any] | None = None) -> None:
        self._keys = dict(keys or {})

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    @classmethod
    def load(cls, spec: str | None) -> TrustedKeys:
        """From a comma-separated list of `.pub` files and/or folders holding `*.pub` files."""
        keys: dict[str, Any] = {}
        for item in (part.strip() for part in (spec or "").split(",")):
            if not item:
                continue
            path = Path(item).expanduser()
            if path.is_dir():
                files = sorted(path.glob("*.pub"))
                if not files:
                    raise ConfigError(f"trusted receipt keys: no *.pub file in {path}")
            else:
                files = [path]
            for file in files:
                key = _load_public(file)
                keys[key_id_of(_raw(key))] = key
        return cls(keys)

    def verify(self, key_id: str, message: bytes, signature: bytes) -> bool:
        """True only if `key_id` is trusted and `signature` is its signature of `message`."""
        key = self._keys.get(key_id)
        return key is not None and _good(key, message, signature)


def _good(key: Any, message: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        key.verify(signature, message)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _public_from_raw(raw: bytes) -> Any:
    _, ed25519 = _crypto()
    return ed25519.Ed25519PublicKey.from_public_bytes(raw)


def _load_public(path: Path) -> Any:
    serialization, ed25519 = _crypto()
    data = _read(path, "trusted receipt key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"trusted receipt key {path}: not a PEM public key ({KEYGEN_HINT})") from exc
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise ConfigError(f"trusted receipt key {path}: not an Ed25519 public key")
    return key


def write_keypair(path: Path) -> tuple[Path, str]:
    """Write a new signing key to `path` (0600) and its public key to `path.pub`.

    Returns (public key path, key id). Refuses, with a ConfigError, to overwrite either file.
    """
    serialization, ed25519 = _crypto()
    key = ed25519.Ed25519PrivateKey.generate()
    public = Path(f"{path}.pub")
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if public.exists():
        raise ConfigError(f"{public} already exists; not overwriting a key")
    exclusive_write(path, private_pem, 0o600)
    try:
        exclusive_write(public, public_pem, 0o644)
    except ConfigError:
        path.unlink()
        raise
    return public, key_id_of(_raw(key.public_key()))


def exclusive_write(path: Path, data: bytes, mode: int) -> None:
    """Create `path` with `mode` and write `data`; a ConfigError if it exists or cannot be made."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as exc:
        raise ConfigError(f"{path} already exists; not overwriting a key") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def heartbeat_signer(key: SigningKey) -> Callable[[bytes], dict[str, Any]]:
    """Signs heartbeats with an Ed25519 key (an instrument's own, or a group's receipt key):
    the "sig" object they carry. It names the key by id and carries the public key too, so
    a reader that does not trust the key can still tell a good signature from a forgery."""
    public = base64.b64encode(key.public_raw).decode()

    def sign(payload: bytes) -> dict[str, Any]:
        signature = base64.b64encode(key.sign(payload)).decode()
        return {"alg": "ed25519", "key": key.key_id, "pub": public, "sig": signature}

    return sign


def heartbeat_verifier(trusted: TrustedKeys) -> Callable[[bytes, Mapping[str, Any]], Trust]:
    """SIGNED for a heartbeat signed by one of `trusted` (see `heartbeat_signer`);
    UNTRUSTED_KEY for a good signature by the public key it carries, which is not trusted;
    UNCHECKED for a key neither trusted nor carried; BAD_SIGNATURE for anything else."""

    def verify(payload: bytes, sig: Mapping[str, Any]) -> Trust:
        key_id, signature = sig.get("key"), _decoded(sig.get("sig"), 64)
        if sig.get("alg") != "ed25519" or not isinstance(key_id, str) or signature is None:
            return Trust.BAD_SIGNATURE
        if key_id in trusted:
            return Trust.SIGNED if trusted.verify(key_id, payload, signature) else Trust.BAD_SIGNATURE
        if "pub" not in sig:
            return Trust.UNCHECKED  # an older signer naming a key we were not given
        public = _decoded(sig.get("pub"), 32)
        if public is None or key_id_of(public) != key_id:
            return Trust.BAD_SIGNATURE
        try:
            key = _public_from_raw(public)
        except ValueError:
            return Trust.BAD_SIGNATURE
        return Trust.UNTRUSTED_KEY if _good(key, payload, signature) else Trust.BAD_SIGNATURE

    return verify


def _decoded(text: object, size: int) -> bytes | None:
    """`text` as base64 of exactly `size` bytes, else None."""
    if not isinstance(text, str) or len(text) > 4 * size:
        return None
    try:
        data = base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        return None
    return data if len(data) == size else None
