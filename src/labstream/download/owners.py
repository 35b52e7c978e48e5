"""Which name a received file takes: never one that another instrument's file holds.

Every stored path belongs to the (source, sent path) that first took it, recorded in the
download ledger. A later file from the same source and path replaces it (a new version);
a file from another source never does: it is kept beside it as `NAME.from-SOURCE.EXT`
(placement "beside", the default) or, with placement "by-source", every file of a named
source goes below a folder of that name (`SOURCE/run1/x.dat`) and only the rare clash with
a file of another source there is kept beside. A file found in the output folder that no
ledger row claims (copied in, or a ledger lost) belongs to "no source" at its own path, so
only a send without a source (older labstream, openmsistream) may replace it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

from labstream.download.ledger import Ledger
from labstream.errors import UnsafePathError
from labstream.logsafe import shown
from labstream.wire.paths import MAX_PART_BYTES, STATE_DIRNAME, check_relative_path, folded

__all__ = ["BESIDE", "BY_SOURCE", "Claim", "Owners", "beside_name"]

logger = logging.getLogger(__name__)
BESIDE, BY_SOURCE = "beside", "by-source"
MAX_ALTERNATIVES = 100
Claim = tuple[str, str]  # (source, the path it was sent as)


def beside_name(path: str, source: str, n: int = 1) -> str:
    """`run1/x.dat` from `pc2` -> `run1/x.from-pc2.dat` (`...from-pc2-2.dat` for n = 2)."""
    folder, _, name = path.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    if not stem:  # no extension, or a dot file such as ".hidden"
        stem, dot, ext = name, "", ""
    tag = f".from-{source or 'unnamed'}" + (f"-{n}" if n > 1 else "")
    room = MAX_PART_BYTES - len(f"{tag}{dot}{ext}".encode())
    stem = stem.encode("utf-8")[: max(1, room)].decode("utf-8", "ignore") or "file"
    return f"{folder}/{stem}{tag}{dot}{ext}" if folder else f"{stem}{tag}{dot}{ext}"


class Owners:
    """Resolves (source, path) to the stored path; shared by a downloader's threads.

    Claims made for files waiting for their commit are held here until `committed` records
    them (or `release` drops them). On a case-insensitive output folder (Windows, macOS)
    names are compared folded, so `Run1/A.dat` and `run1/a.dat` are one name there.
    """

    def __init__(self, out_dir: Path, ledger: Ledger, placement: str = BESIDE) -> None:
        self._out_dir = out_dir
        self._ledger = ledger
        self._by_source = placement == BY_SOURCE
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[str, Claim]] = {}  # name key -> (stored, claim)
        self._fold = _case_insensitive(out_dir)

    def resolve(self, source: str, path: str) -> tuple[str, Claim | None]:
        """(stored path, the claim it had to avoid or None). A new claim is remembered."""
        preferred = self.preferred(source, path)
        mine: Claim = (source, path)
        avoided: Claim | None = None
        with self._lock:
            for n in range(MAX_ALTERNATIVES + 1):
                stored = preferred if n == 0 else beside_name(preferred, source, n)
                owner = self._owner(stored)
                if owner == mine:
                    return stored, avoided
                if owner is None:
                    self._pending[self._key(stored)] = (stored, mine)
                    if avoided is not None:
                        _tell(path, source, avoided, stored)
                    return stored, avoided
                avoided = avoided or owner
        raise UnsafePathError(f"no free name for {shown(path)} from source {shown(source)}")

    def committed(self, stored: list[str]) -> None:
        """Record the claims of these files, now in place."""
        with self._lock:  # recorded before the lock is let go: always pending or recorded
            claims = []
            for name in stored:
                held = self._pending.pop(self._key(name), None)
                if held is not None:
                    claims.append((held[0], *held[1]))
            if claims:
                self._ledger.claim_many(claims)

    def preferred(self, source: str, path: str) -> str:
        """The name a file from `source` sent as `path` takes unless another's file holds it."""
        return f"{source}/{path}" if self._by_source and source else path

    def release(self, stored: str, claim: Claim) -> None:
        """A file that will not be put in place gives its pending claim up."""
        with self._lock:
            if self._pending.get(self._key(stored), ("", None))[1] == claim:
                del self._pending[self._key(stored)]

    def _key(self, stored: str) -> str:
        return "/".join(folded(part) for part in stored.split("/")) if self._fold else stored

    def _owner(self, stored: str) -> Claim | None:
        pending = self._pending.get(self._key(stored))
        if pending is not None:
            return pending[1]
        owner = self._ledger.owner(stored)
        if owner is not None:
            return owner[0], owner[1] or stored
        try:
            check_relative_path(stored)
            found = os.path.exists(os.path.join(self._out_dir, *stored.split("/")))
        except (UnsafePathError, OSError):
            return None  # a name the filesystem refuses: refused when it is placed
        return ("", stored) if found else None  # in the folder, claimed by nobody: no source


def _case_insensitive(folder: Path) -> bool:
    """Whether `folder`'s filesystem takes `X` and `x` for one name (probed once)."""
    state = folder / STATE_DIRNAME
    try:
        state.mkdir(parents=True, exist_ok=True)
        probe = state / f"case-probe-{os.getpid()}-{threading.get_ident()}"
        probe.write_bytes(b"")
        try:
            return (state / probe.name.upper()).exists()
        finally:
            probe.unlink()
    except OSError:
        return sys.platform in ("win32", "darwin")  # their defaults


def _tell(path: str, source: str, avoided: Claim, stored: str) -> None:
    logger.warning(
        "name conflict: another instrument's file holds this path; both are kept "
        "file=%s source=%s held_by=%s stored_as=%s",
        shown(path),
        shown(source or "-"),
        shown(avoided[0] or "(no source)"),
        shown(stored),
    )
