"""One consumer batch looked at before its files are placed: decoded once, and the ledger
asked once for all of its files instead of once per file.

A batch of small files used to cost two SQLite queries per file (who owns its name; where
the same bytes already are), each with its own read lock. `Lookahead.prepare(records)`
decodes the batch's messages (kept for `Assembler.add`, so none is decoded twice) and has
the ledger prefetch those answers for the files the batch completes (their last chunks) in
one query each (`Ledger.prefetch`); the assembler's look-ups then hit that answer, which the
ledger drops at its next write.
"""

from __future__ import annotations

from labstream.download.ledger import Ledger
from labstream.download.owners import Owners
from labstream.kafka import Record
from labstream.wire import Chunk, decode
from labstream.wire.chunk import decrypt
from labstream.wire.crypto import PayloadCipher

__all__ = ["SMALL_MESSAGE", "Lookahead"]

# Only messages this small are decoded ahead: decrypted copies of a batch stay small (64 x
# 128 KiB at most), and a big file's chunks gain nothing (one look-up per many chunks).
SMALL_MESSAGE = 128 * 1024


class Lookahead:
    """The decoded chunks of one consumer thread's current batch."""

    def __init__(self, ledger: Ledger, owners: Owners, cipher: PayloadCipher | None) -> None:
        self._ledger = ledger
        self._owners = owners
        self._cipher = cipher
        self._chunks: dict[int, tuple[Record, Chunk]] = {}

    def prepare(self, records: list[Record]) -> None:
        """Decode `records` and prefetch the ledger's answers for the files they complete.
        A message that does not decode is left to `Assembler.add`, which reports it."""
        self._chunks = {}
        names: list[str] = []
        copies: list[tuple[str, bytes, int]] = []
        for record in records:
            if len(record.value) > SMALL_MESSAGE:
                continue  # a big file's chunk: one look-up per many chunks, decoded by `add`
            try:
                chunk = decrypt(decode(record.value), self._cipher)
            except Exception:  # `add` decodes it again, and reports or raises it
                continue
            self._chunks[id(record)] = (record, chunk)
            if chunk.live or chunk.aborted or chunk.index != chunk.n_chunks - 1:
                continue
            names.append(self._owners.preferred(chunk.source, chunk.path))
            if chunk.wire_version == 2:
                copies.append((chunk.path, chunk.file_digest, chunk.file_size))
        self._ledger.prefetch(names, copies)  # even none: the last batch's answers are dropped

    def take(self, record: Record) -> Chunk | None:
        """The chunk `prepare` decoded from `record` (once); None: decode it."""
        held = self._chunks.pop(id(record), None)
        return held[1] if held is not None and held[0] is record else None
