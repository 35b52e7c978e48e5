"""Which `[labstream]` keys exist: the settings table's, plus the config pointers."""

from __future__ import annotations

from labstream.config import POINTER_KEYS
from labstream.settings.table import FILE_KEYS

__all__ = ["known_program_keys"]


def known_program_keys() -> frozenset[str]:
    """Every key some command reads from `[labstream]` (settings.table) and the pointers."""
    return frozenset({*FILE_KEYS, *POINTER_KEYS})
