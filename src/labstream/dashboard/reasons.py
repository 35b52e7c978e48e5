"""Failure reasons as a lab manager reads them: log lines and wire errors -> a short phrase.

Downloaders report a failure as the log line or the error text it came from
(`chunk rejected topic=t partition=3 offset=65 reason=run1/a.dat: chunk 1/3: cannot decrypt
(wrong key): sealed with key id ...`). The page names the file elsewhere, so `readable`
keeps what went wrong, in words: "cannot decrypt: wrong key". Unknown texts pass through
with only the log fields and the file-name prefix taken off.
"""

from __future__ import annotations

import re

__all__ = ["readable"]

_LOG_FIELDS = re.compile(r"^[\w ]*?(?:\b[a-z_]+=\S*\s+)+reason=")
_CHUNK_PREFIX = re.compile(r"^.*?: (chunk \d+/\d+)(?::| )\s*")
# (text in the reason, what to show); no phrase contains a text, so `readable` of a phrase
# is that phrase (the store keeps phrases, the page may pass them through again).
_KNOWN = (
    ("cannot decrypt (wrong key, or altered)", "cannot decrypt: wrong key or altered"),
    ("cannot decrypt (wrong key", "cannot decrypt: wrong key"),
    ("is encrypted and no key is configured", "cannot decrypt: no key configured"),
    ("is not encrypted; refused", "refused: not encrypted, but a key is configured"),
    ("decrypted size is wrong", "cannot decrypt: altered"),
    ("No space left on device", "disk full"),
    ("Permission denied", "permission denied"),
)
MAX_SHOWN = 200


def readable(reason: str) -> str:
    """A short, human reason for `reason` ("" stays "")."""
    text = reason.strip()
    found = _LOG_FIELDS.match(text)
    if found:
        text = text[found.end() :]
    for needle, phrase in _KNOWN:
        if needle in text:
            return phrase
    chunk = _CHUNK_PREFIX.match(text)
    if chunk and "fails its checksum" in text:
        return f"{chunk.group(1)} fails its checksum"
    if chunk:
        text = f"{chunk.group(1)}: {text[chunk.end() :]}"
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"
