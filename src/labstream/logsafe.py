"""Untrusted text made safe to log: one line, no terminal escapes, never unbounded.

Paths, reasons and names that come from messages are attacker-chosen. `shown(text)` keeps
printable characters (any script) and backslash-escapes everything else: newlines, C0/C1
controls (ESC of ANSI sequences), bidi and other format characters, line/paragraph
separators; a byte of a local file name that is not UTF-8 (Python's surrogate escape) as
the byte, `caf\\xe9.dat`. A backslash is doubled, so an escape in the output always means
an escape was made. Long text is cut to `limit` characters with a marker.
"""

from __future__ import annotations

__all__ = ["shown"]

DEFAULT_LIMIT = 300


def _escape(char: str) -> str:
    if char == "\\":
        return "\\\\"
    if char == " " or char.isprintable():
        return char
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte of a file name that is not UTF-8 (surrogateescape)
        code -= 0xDC00
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def shown(text: object, limit: int = DEFAULT_LIMIT) -> str:
    """`text` (str() of it) escaped onto one safe line, at most about `limit` characters."""
    raw = text if isinstance(text, str) else str(text)
    cut = len(raw) > limit
    safe = "".join(map(_escape, raw[:limit]))
    return f"{safe}...[{len(raw)} chars]" if cut else safe
