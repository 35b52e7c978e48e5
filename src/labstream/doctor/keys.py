"""Which `[labstream]` keys exist: one function, so the key table can move behind it."""

from __future__ import annotations

from labstream.config import POINTER_KEYS

__all__ = ["known_program_keys"]


def known_program_keys() -> frozenset[str]:
    """Every key some command reads from `[labstream]` today: watch's table, the download
    limits, the receipt keys and the config pointers."""
    from labstream.cli.watch import PROGRAM_KEYS  # the table lives with the command for now
    from labstream.download.limits import LIMIT_KEYS
    from labstream.receipts.keys import SIGNING_KEY, TRUSTED_KEYS

    return frozenset({*PROGRAM_KEYS, *LIMIT_KEYS, SIGNING_KEY, TRUSTED_KEYS, *POINTER_KEYS})
