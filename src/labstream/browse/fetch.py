"""Fetch given files from a topic once, through the downloader's own assembler.

Only chunks that name a wanted path reach the `Assembler`, so every check of a download
applies (size, SHA-256, decryption, limits, path rules, atomic placement, ledger). The topic
is read up to the end captured at the start, so when a file was sent several times the
newest complete send is the one left in place (a path's sends share a partition, in order).
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field
from pathlib import Path

from labstream.download import Assembler, Ledger
from labstream.download.ledger import FileState
from labstream.download.limits import Limits
from labstream.download.placement import check_writable, target_path
from labstream.errors import ChecksumError, UnsafePathError, WireError
from labstream.kafka import read_topic
from labstream.kafka.settings import LibrdkafkaConfig
from labstream.locks import InstanceLock
from labstream.outcomes import OnVerdict, Verdict
from labstream.state import OutputState
from labstream.wire import check_relative_path, decode
from labstream.wire.crypto import PayloadCipher

__all__ = ["FetchResult", "FetchState", "fetch_files"]

COMMIT_EVERY = 64  # records between commits: verified files are placed as the read goes
# A file version in one of these states was verified here before (and maybe processed since).
_HELD = (FileState.VERIFIED, FileState.PROCESSED, FileState.PROCESS_FAILED)


class FetchState(enum.Enum):
    VERIFIED = "verified"  # reassembled, verified and placed by this run
    PRESENT = "already present"  # verified by an earlier run, still in place
    FAILED = "failed"  # chunks found, but the file failed (checksum, key, limits, ...)
    INCOMPLETE = "incomplete"  # chunks found, but not all of them up to the end
    MISSING = "missing"  # no chunk of it in the topic (from --since)

    @property
    def ok(self) -> bool:
        return self in (FetchState.VERIFIED, FetchState.PRESENT)


@dataclass
class FetchResult:
    state: FetchState = FetchState.MISSING
    reason: str = ""
    keys: set[tuple[str, bytes, int]] = field(default_factory=set)
    source: str = ""  # the instrument whose send the verdict was on
    stored_as: str = ""  # where it was put, when not at its path (another source has it)


def fetch_files(
    librdkafka: LibrdkafkaConfig,
    topic: str,
    paths: list[str],
    out_dir: Path,
    *,
    since_ms: int | None = None,
    cipher: PayloadCipher | None = None,
    limits: Limits | None = None,
    stop: threading.Event | None = None,
) -> dict[str, FetchResult]:
    """The wanted `paths` (relative, as sent) written into `out_dir`; a result for each.
    `UnsafePathError` for a wanted path labstream would never write."""
    results = {check_relative_path(p.strip().removeprefix("./")): FetchResult() for p in paths}
    check_writable(out_dir)
    with (
        InstanceLock(OutputState(out_dir).lock, "downloader"),
        Ledger(OutputState(out_dir).ledger) as ledger,
    ):
        assembler = Assembler(
            out_dir, ledger, _recorder(results), cipher, limits=limits or Limits(), stop=stop
        )
        try:
            for count, timed in enumerate(read_topic(librdkafka, topic, since_ms=since_ms, stop=stop), 1):
                keys = _wanted_keys(timed.record.value, results)
                if keys:
                    results[keys[0][0]].keys.update(keys)
                    assembler.add(timed.record)
                if count % COMMIT_EVERY == 0:
                    assembler.commit()
            assembler.commit()
        finally:
            assembler.close()
        _settle(results, ledger, out_dir)
    return results


def _wanted_keys(value: bytes, results: dict[str, FetchResult]) -> list[tuple[str, bytes, int]]:
    """The file keys of a chunk of a wanted path, else none (foreign and unreadable messages
    of other paths are none of this run's business). A wire-v2 last chunk adds the (path,
    SHA-256, size) the ledger knows the file by, besides the send's (path, file id, size)."""
    try:
        chunk = decode(value)
    except ChecksumError as exc:  # a damaged chunk still names its file: that file fails
        return [exc.key] if exc.key is not None and exc.key[0] in results else []
    except WireError:
        return []
    if chunk.path not in results:
        return []
    if chunk.wire_version == 2 and chunk.file_digest:
        return [chunk.key, (chunk.path, chunk.file_digest, chunk.file_size)]
    return [chunk.key]


def _recorder(results: dict[str, FetchResult]) -> OnVerdict:
    def on_verdict(verdict: Verdict) -> None:
        result = results.get(verdict.path)
        if result is None:
            return
        result.source, result.stored_as = verdict.source, verdict.stored_as
        if verdict.verified and verdict.duplicate:  # these bytes were here already
            if result.state is not FetchState.VERIFIED:
                result.state, result.reason = FetchState.PRESENT, ""
        elif verdict.verified:
            result.state, result.reason = FetchState.VERIFIED, ""
        elif result.state is not FetchState.VERIFIED:
            result.state, result.reason = FetchState.FAILED, verdict.reason

    return on_verdict


def _settle(results: dict[str, FetchResult], ledger: Ledger, out_dir: Path) -> None:
    """Wanted paths with chunks but no verdict: already here from before, or incomplete."""
    for path, result in results.items():
        if result.state is not FetchState.MISSING or not result.keys:
            continue
        held = any(ledger.status(*key) in _HELD for key in result.keys)
        try:
            present = held and target_path(out_dir, path, create=False).exists()
        except (UnsafePathError, OSError):
            present = False
        result.state = FetchState.PRESENT if present else FetchState.INCOMPLETE
