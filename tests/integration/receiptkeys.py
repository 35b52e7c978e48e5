"""Receipt keys for the integration tests, made by the real `labstream keygen --receipts`."""

from __future__ import annotations

from pathlib import Path

from .conftest import labstream


def make_keys(folder: Path, *names: str) -> Path:
    """`folder` with a signing key per name and its `.pub` file (the folder is what to trust)."""
    folder.mkdir()
    for name in names or ("archive", "mirror"):
        labstream("keygen", "--receipts", folder / name)
    return folder


def trusting(keys: Path) -> tuple[str, str]:
    return ("--receipts-trusted-keys", str(keys))


def signing(keys: Path, name: str = "archive") -> tuple[str, str]:
    return ("--receipts-key", str(keys / name))
