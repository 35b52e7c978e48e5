"""The receipt message: JSON, versioned, validated strictly on the way in, Ed25519-signed.

Version 2 adds `key_id` and `sig` (base64 Ed25519 signature) to version 1's fields; a
version 1 receipt, or a version 2 one without a signature, still parses and counts as
unauthenticated. Version 3 names the send: `source` (the sending instrument), `file_id`
(the wire-v2 send's id, hex) and `stored_as` (where the downloader put the file when that is
not `path`); its `sha256` may be "" in a failed receipt of a send whose digest never arrived.
Outcome "live" (same version) reports a live send's verified prefix: `size` and `sha256` are
the prefix's; it is progress, never a verdict (readers hand it only to `on_live` handlers).
The signature covers `signing_message(topic)`: a domain tag, the receipts topic it was
published to (so a receipt cannot be replayed onto another topic) and every field, each as
a 4-byte big-endian length and its UTF-8 bytes; `size` in decimal and `at` as the shortest
repr of the float (docs/wire-format.md, "Receipts"). A receipt is authentic only after
`Receipt.authenticate(trusted, topic)` checked the signature against a trusted key.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import struct
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from labstream.errors import WireError
from labstream.outcomes import ReceiptOutcome
from labstream.wire.paths import check_relative_path, check_source

if TYPE_CHECKING:
    from labstream.receipts.signing import SigningKey, TrustedKeys

__all__ = ["MAX_RECEIPT_BYTES", "RECEIPT_VERSION", "Receipt", "receipts_topic"]

RECEIPT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
OUTCOMES = tuple(outcome.value for outcome in ReceiptOutcome)
MAX_RECEIPT_BYTES = 64 * 1024  # checked before parsing: a receipt is a few hundred bytes
MAX_NAME = 255
MAX_REASON = 4096
MAX_SIZE = 2**63 - 1
_DOMAIN = b"labstream-receipt-v2"
_DOMAIN_V3 = b"labstream-receipt-v3"
_DIGEST_RE = re.compile(r"[0-9a-f]{64}|[0-9a-f]{128}")  # SHA-256, or SHA-512 (openmsistream)
_KEY_ID_RE = re.compile(r"[0-9a-f]{16}")
_FILE_ID_RE = re.compile(r"[0-9a-f]{32}")


def receipts_topic(data_topic: str) -> str:
    return f"{data_topic}.receipts"


@dataclass(frozen=True)
class Receipt:
    """Who verified (or failed) which exact version of a file, and when.

    `authenticated` is never read from the wire: only `authenticate` sets it.
    """

    path: str
    sha256: str  # hex digest in the file's own algorithm (SHA-256, or SHA-512)
    size: int
    outcome: ReceiptOutcome
    group: str
    host: str
    reason: str = ""
    at: float = 0.0
    key_id: str = ""
    signature: str = ""
    authenticated: bool = field(default=False, compare=False)
    source: str = ""  # the sending instrument ("": a send that names none)
    file_id: str = ""  # hex id of the wire-v2 send ("": v1 or openmsistream)
    stored_as: str = ""  # where the file was put, when not at `path` (another source had it)
    version: int = RECEIPT_VERSION  # as read; the signature covers the fields of this version

    @classmethod
    def outgoing(
        cls,
        path: str,
        digest: str,
        size: int,
        outcome: ReceiptOutcome,
        group: str,
        host: str,
        reason: str = "",
        *,
        source: str = "",
        file_id: str = "",
        stored_as: str = "",
    ) -> Receipt:
        """A receipt to publish now, its free text made printable and short enough to parse."""
        return cls(
            path,
            digest,
            size,
            outcome,
            group,
            _printable(host)[:MAX_NAME],
            _printable(reason)[:MAX_REASON],
            time.time(),
            source=source,
            file_id=file_id,
            stored_as=stored_as if stored_as != path else "",
        )

    def names_send(self, source: str, file_id: str) -> bool:
        """Whether this receipt is about the send (`source`, `file_id`); a receipt that names
        no send (older downloaders, v1 and openmsistream sends) is matched by its digest."""
        if self.file_id:
            return self.file_id == file_id and self.source == source
        return self.may_be_from(source)

    def may_be_from(self, source: str) -> bool:
        """Whether this receipt may be about a send of instrument `source`: it names that
        source, or none (older downloaders, sends that named none)."""
        return not self.source or self.source == source

    def signing_message(self, topic: str) -> bytes:
        fields: tuple[str, ...] = (
            topic,
            self.key_id,
            self.group,
            self.host,
            self.outcome,
            self.path,
            self.sha256,
            str(self.size),
            repr(float(self.at)),
            self.reason,
        )
        domain = _DOMAIN
        if self.version >= 3:
            domain, fields = _DOMAIN_V3, (*fields, self.source, self.file_id, self.stored_as)
        parts = [domain]
        for text in fields:
            data = text.encode("utf-8")
            parts += [struct.pack(">I", len(data)), data]
        return b"".join(parts)

    def signed(self, key: SigningKey, topic: str) -> Receipt:
        """This receipt with a time (if none), the key id and its signature for `topic`."""
        stamped = replace(self, at=self.at or time.time(), key_id=key.key_id, signature="")
        signature = key.sign(stamped.signing_message(topic))
        return replace(stamped, signature=base64.b64encode(signature).decode("ascii"))

    def authenticate(self, trusted: TrustedKeys, topic: str) -> Receipt:
        """A copy marked authenticated if a trusted key signed it for `topic`."""
        if not self.key_id or not self.signature or not _is_signature(self.signature):
            return replace(self, authenticated=False)
        signature = base64.b64decode(self.signature)
        ok = trusted.verify(self.key_id, self.signing_message(topic), signature)
        return replace(self, authenticated=ok)

    def to_bytes(self) -> bytes:
        body: dict[str, Any] = {
            "v": self.version,
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "outcome": self.outcome,
            "group": self.group,
            "host": self.host,
            "reason": self.reason,
            "at": self.at or time.time(),
        }
        if self.version >= 3:
            body.update(source=self.source, file_id=self.file_id, stored_as=self.stored_as)
        if self.signature:
            body.update(key_id=self.key_id, sig=self.signature)
        return json.dumps(body, ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_bytes(cls, value: bytes) -> Receipt:
        """Parse and validate; anything malformed is a WireError, never another exception."""
        if len(value) > MAX_RECEIPT_BYTES:
            raise WireError(f"receipt of {len(value)} bytes exceeds {MAX_RECEIPT_BYTES}")
        try:
            body = json.loads(value.decode("utf-8"), parse_constant=_no_constant)
            return _from_body(body)
        except WireError:
            raise
        except Exception as exc:  # RecursionError on deep nesting, ValueError, ... : all malformed
            raise WireError(f"malformed receipt: {type(exc).__name__}: {str(exc)[:200]}") from exc


def _no_constant(name: str) -> None:
    raise WireError(f"malformed receipt: {name} is not a number")


def _from_body(body: object) -> Receipt:
    if not isinstance(body, dict) or body.get("v") not in READABLE_VERSIONS or type(body["v"]) is not int:
        raise WireError(f"not a version {' or '.join(map(str, READABLE_VERSIONS))} receipt")
    version = int(body["v"])
    path = check_relative_path(_text(body, "path", 4096, required=True, printable=False))
    digest = _text(body, "sha256", 128, required=version < 3)
    source, file_id, stored_as = (_text(body, key, 4096) for key in ("source", "file_id", "stored_as"))
    if not _DIGEST_RE.fullmatch(digest) and not (digest == "" and file_id):
        raise WireError("malformed receipt: sha256 is not 64 or 128 lowercase hex digits")
    if file_id and not _FILE_ID_RE.fullmatch(file_id):
        raise WireError("malformed receipt: file_id is not 32 lowercase hex digits")
    if source:
        check_source(source)
    if stored_as:
        check_relative_path(stored_as)
    size = body.get("size")
    if type(size) is not int or not 0 <= size <= MAX_SIZE:
        raise WireError("malformed receipt: size is not an integer file size")
    outcome_text = _text(body, "outcome", 16, required=True)
    if outcome_text not in OUTCOMES:
        raise WireError("malformed receipt: outcome is not verified, failed or live")
    outcome = ReceiptOutcome(outcome_text)
    at = body.get("at", 0.0)
    if type(at) not in (int, float) or not math.isfinite(at) or at < 0:
        raise WireError("malformed receipt: at is not a finite time")
    key_id, signature = _text(body, "key_id", 16), _text(body, "sig", 128)
    if key_id and not _KEY_ID_RE.fullmatch(key_id):
        raise WireError("malformed receipt: key_id is not 16 hex digits")
    if signature and not _is_signature(signature):
        raise WireError("malformed receipt: sig is not a base64 Ed25519 signature")
    return Receipt(
        path,
        digest,
        size,
        outcome,
        _text(body, "group", MAX_NAME, required=True),
        _text(body, "host", MAX_NAME),
        _text(body, "reason", MAX_REASON),
        float(at),
        key_id,
        signature,
        source=source,
        file_id=file_id,
        stored_as=stored_as,
        version=version,
    )


def _text(
    body: dict[str, Any], key: str, limit: int, *, required: bool = False, printable: bool = True
) -> str:
    value = body.get(key, None if required else "")
    if not isinstance(value, str) or (required and not value) or len(value) > limit:
        raise WireError(f"malformed receipt: {key} is not a string of at most {limit} characters")
    if printable and not value.isprintable():  # would forge log lines or terminal output
        raise WireError(f"malformed receipt: {key} contains unprintable characters")
    try:
        value.encode("utf-8")  # a lone surrogate from a JSON escape
    except UnicodeEncodeError as exc:
        raise WireError(f"malformed receipt: {key} is not valid Unicode") from exc
    return value


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _is_signature(text: str) -> bool:
    try:
        return len(base64.b64decode(text, validate=True)) == 64
    except (binascii.Error, ValueError):
        return False
