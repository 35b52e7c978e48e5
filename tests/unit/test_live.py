"""Live files: a growing file sent as appended segments, kept downstream as a verified prefix."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from labstream.download import Assembler, Ledger, Outcome
from labstream.download.limits import Limits
from labstream.errors import WireError
from labstream.kafka import Record
from labstream.kafka.memory import MemoryBroker
from labstream.outcomes import Verdict
from labstream.upload.live import LiveSend
from labstream.upload.resume import LivePoint
from labstream.upload.sender import FileSender
from labstream.upload.source import SourceFile
from labstream.wire import decode, encode
from labstream.wire.chunk import LIVE_DATA, LIVE_END, LIVE_MARK, decrypt
from labstream.wire.crypto import PayloadCipher
from labstream.wire.v2 import live_data, live_mark, new_file_id

from .test_wire_v2 import v2_chunks_of

CHUNK = 1024
TOPIC = "live"


def test_live_messages_round_trip_with_and_without_a_key() -> None:
    cipher = PayloadCipher(os.urandom(32))
    fid = new_file_id()
    data = live_data("run/log.csv", 5000, b"x" * 700, 7, CHUNK, fid, 11, "pc-1")
    mark = live_mark("run/log.csv", 5700, b"\x01" * 32, 8, CHUNK, fid, 11, "pc-1", end=True)
    for key in (None, cipher):
        got = decrypt(decode(encode(data, key)), key)
        assert (got.live, got.offset, bytes(got.data), got.source) == (LIVE_DATA, 5000, b"x" * 700, "pc-1")
        got = decrypt(decode(encode(mark, key)), key)
        assert (got.live, got.offset, got.file_digest, got.key) == (LIVE_END, 5700, b"\x01" * 32, data.key)


@pytest.mark.parametrize(
    "bad, why",
    [
        (live_data("a", 0, b"x" * (CHUNK + 1), 0, CHUNK, bytes(16), 1), "1 to 1024"),
        (dataclasses.replace(live_mark("a", 1, bytes(32), 0, CHUNK, bytes(16), 1), data=b"x"), "no data"),
        (dataclasses.replace(live_data("a", 0, b"x", 0, CHUNK, bytes(16), 1), n_chunks=3), "chunk count"),
        (live_data("a", (1 << 62) - 1, b"xy", 0, CHUNK, bytes(16), 1), "beyond"),
    ],
)
def test_a_malformed_live_message_is_refused(bad: object, why: str) -> None:
    with pytest.raises(WireError, match=why):
        encode(bad)  # type: ignore[arg-type]


def test_with_a_key_a_forged_prefix_hash_fails_its_tag() -> None:
    cipher = PayloadCipher(os.urandom(32))
    value = bytearray(encode(live_mark("a.log", 10, b"\x02" * 32, 1, CHUNK, new_file_id(), 5), cipher))
    value[50] ^= 1  # the first byte of the prefix SHA-256 in the header
    with pytest.raises(Exception, match="cannot decrypt"):
        decrypt(decode(bytes(value)), cipher)


class Sent:
    """A LiveSend producing into an in-memory broker, and its messages as records."""

    def __init__(self, tmp_path: Path, name: str = "log.csv") -> None:
        self.broker = MemoryBroker(partitions=1)
        self.path = tmp_path / "src" / name
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_bytes(b"")
        self.sender = FileSender(self.broker.producer(), TOPIC, CHUNK, source_name="pc-1")
        self.points: list[LivePoint] = []
        self.send = self.new_send()
        self.read = 0

    def new_send(self, resume: LivePoint | None = None) -> LiveSend:
        return LiveSend(
            self.sender, SourceFile(self.path, self.path.name), resume=resume, on_point=self.points.append
        )

    def append(self, data: bytes) -> None:
        with open(self.path, "ab") as handle:
            handle.write(data)

    def ack(self) -> None:
        """Serve the delivery reports (the marks' acknowledgements checkpoint them)."""
        self.sender._producer.flush(1.0)  # type: ignore[attr-defined]

    def records(self) -> list[Record]:
        """Messages produced since the last call."""
        messages = self.broker.messages(TOPIC)
        new, self.read = messages[self.read :], len(messages)
        return new


@pytest.fixture
def down(tmp_path: Path) -> Iterator[tuple[Assembler, list[Verdict], Path]]:
    out = tmp_path / "out"
    verdicts: list[Verdict] = []
    with Ledger(out / ".labstream" / "ledger.sqlite") as ledger:
        assembler = Assembler(out, ledger, verdicts.append, limits=Limits(max_file_size=1 << 20))
        yield assembler, verdicts, out
        assembler.close()


def feed(assembler: Assembler, records: list[Record]) -> list[Outcome]:
    outcomes = [assembler.add(r) for r in records]
    assembler.commit()
    return outcomes


def test_a_growing_file_is_a_verified_prefix_after_each_segment_and_whole_at_the_end(
    tmp_path: Path, down: tuple[Assembler, list[Verdict], Path]
) -> None:
    assembler, verdicts, out = down
    sent = Sent(tmp_path)
    written = b""
    for i in range(5):
        line = os.urandom(300 + 500 * i)
        sent.append(line)
        written += line
        assert sent.send.extend() is False
        feed(assembler, sent.records())
        assert (out / "log.csv").read_bytes() == written  # exactly what was written so far
    assert sent.send.extend(end=True) is True
    outcomes = feed(assembler, sent.records())
    assert outcomes[-1] is Outcome.COMPLETE
    assert (out / "log.csv").read_bytes() == written
    digest = hashlib.sha256(written).digest()
    assert [(v.path, v.digest, v.size, v.outcome, v.source) for v in verdicts] == [
        ("log.csv", digest, len(written), "verified", "pc-1")
    ]
    payload = sum(len(decode(r.value).data) for r in sent.broker.messages(TOPIC))
    assert payload == len(written)  # each byte produced once
    assert assembler.held_offsets() == {}


def test_each_verified_prefix_goes_to_on_live_and_only_the_whole_file_to_on_verdict(tmp_path: Path) -> None:
    out = tmp_path / "out"
    verdicts: list[Verdict] = []
    prefixes: list[Verdict] = []
    sent = Sent(tmp_path)
    written = b""
    with Ledger(out / ".labstream" / "ledger.sqlite") as ledger:
        assembler = Assembler(out, ledger, verdicts.append, on_live=prefixes.append)
        for size in (700, 2500, 40):
            sent.append(os.urandom(size))
            written = sent.path.read_bytes()
            sent.send.extend()
            feed(assembler, sent.records())
            last = prefixes[-1]
            assert (last.size, last.digest) == (len(written), hashlib.sha256(written).digest())
            assert (last.outcome, last.source, last.file_id) == ("live", "pc-1", sent.send.file_id)
        sent.send.extend(end=True)
        feed(assembler, sent.records())
        assembler.close()
    assert [p.size for p in prefixes] == [700, 3200, 3240]
    assert [(v.outcome, v.size) for v in verdicts] == [("verified", 3240)]


def test_bytes_wait_unseen_until_their_mark_and_hold_the_offsets_meanwhile(
    tmp_path: Path, down: tuple[Assembler, list[Verdict], Path]
) -> None:
    assembler, _verdicts, out = down
    sent = Sent(tmp_path)
    sent.append(b"a" * 3000)
    sent.send.extend()
    records = sent.records()
    feed(assembler, records[:-1])  # the data, not its mark
    assert not (out / "log.csv").exists()
    assert assembler.held_offsets() == {(TOPIC, 0): records[0].offset}
    feed(assembler, records[-1:])
    assert (out / "log.csv").read_bytes() == b"a" * 3000 and assembler.held_offsets() == {}


def test_a_lying_prefix_hash_fails_the_send_and_keeps_the_verified_prefix(
    tmp_path: Path, down: tuple[Assembler, list[Verdict], Path]
) -> None:
    assembler, verdicts, out = down
    sent = Sent(tmp_path)
    sent.append(b"good" * 100)
    sent.send.extend()
    feed(assembler, sent.records())
    sent.append(b"more" * 100)
    sent.send.extend()
    records = sent.records()
    mark = decode(records[-1].value)
    lie = encode(dataclasses.replace(mark, file_digest=b"\x00" * 32))
    outcomes = feed(assembler, [*records[:-1], dataclasses.replace(records[-1], value=lie)])
    assert outcomes[-1] is Outcome.FAILED
    assert (out / "log.csv").read_bytes() == b"good" * 100  # the verified prefix, nothing more
    assert verdicts[-1].outcome == "failed" and "SHA-256" in verdicts[-1].reason
    assert verdicts[-1].file_id == mark.file_id
    assert list((out / ".labstream" / "failed").iterdir())  # the unverified tail, set aside
    sent.append(b"x")
    sent.send.extend(end=True)
    assert set(feed(assembler, sent.records())) == {Outcome.DUPLICATE}  # the rest is dropped


def test_live_sends_count_against_max_incomplete_files_least_recently_fed_given_up(tmp_path: Path) -> None:
    out = tmp_path / "out"
    verdicts: list[Verdict] = []
    logs = [Sent(tmp_path / name, f"{name}.csv") for name in ("a", "b", "c")]
    with Ledger(out / ".labstream" / "ledger.sqlite") as ledger:
        assembler = Assembler(out, ledger, verdicts.append, limits=Limits(max_incomplete_files=2))
        clock = iter(range(100))
        assembler._clock = lambda: float(next(clock))  # type: ignore[method-assign]
        for sent in logs:  # a first, then b, then c: a is the least recently fed
            sent.append(b"line\n" * 10)
            sent.send.extend()
            feed(assembler, sent.records())
        assembler.close()
    assert [(v.outcome, v.file_id) for v in verdicts] == [("failed", logs[0].send.file_id)]
    assert "max_incomplete_files" in verdicts[0].reason
    assert (out / "a.csv").read_bytes() == b"line\n" * 10  # a's verified prefix stays


def test_the_unverified_bytes_of_live_sends_count_against_max_incomplete_bytes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    verdicts: list[Verdict] = []
    sent = Sent(tmp_path)
    with Ledger(out / ".labstream" / "ledger.sqlite") as ledger:
        limits = Limits(max_file_size=16 << 10, max_incomplete_bytes=16 << 10)
        assembler = Assembler(out, ledger, verdicts.append, limits=limits)
        sent.append(os.urandom(12 << 10))
        sent.send.extend()
        feed(assembler, sent.records()[:-1])  # its data without the mark: 12 KiB unverified
        other = v2_chunks_of("big.raw", os.urandom(12 << 10), 4096)
        outcomes = feed(assembler, [Record(TOPIC, 1, i, b"big.raw", encode(c)) for i, c in enumerate(other)])
        assembler.close()
    assert outcomes[-1] is Outcome.COMPLETE
    assert [(v.outcome, v.path) for v in verdicts] == [("failed", "log.csv"), ("verified", "big.raw")]
    assert "max_incomplete_bytes" in verdicts[0].reason


def test_a_gap_or_different_bytes_for_an_offset_held_fail_the_send(
    tmp_path: Path, down: tuple[Assembler, list[Verdict], Path]
) -> None:
    assembler, verdicts, out = down
    sent = Sent(tmp_path)
    sent.append(b"0123456789" * 50)
    sent.send.extend()
    feed(assembler, sent.records())
    forged = live_data("log.csv", 100, b"X" * 10, 99, CHUNK, sent.send.file_id, sent.send.version_ns, "pc-1")
    assert feed(assembler, [Record(TOPIC, 0, 999, b"log.csv", encode(forged))]) == [Outcome.FAILED]
    assert "differs" in verdicts[-1].reason
    assert (out / "log.csv").read_bytes() == b"0123456789" * 50


def test_the_same_bytes_sent_again_by_a_resumed_sender_are_duplicates(
    tmp_path: Path, down: tuple[Assembler, list[Verdict], Path]
) -> None:
    assembler, verdicts, out = down
    sent = Sent(tmp_path)
    sent.append(os.urandom(2500))
    sent.send.extend()
    sent.ack()
    feed(assembler, sent.records())
    sent.append(os.urandom(1500))
    sent.send.extend()  # received downstream, but the sender "crashes" before its checkpoint
    feed(assembler, sent.records())
    resumed = sent.new_send(resume=sent.points[0])
    assert (resumed.file_id, resumed.sent) == (sent.send.file_id, 2500)
    sent.append(os.urandom(700))
    resumed.extend(end=True)
    outcomes = feed(assembler, sent.records())
    assert Outcome.DUPLICATE in outcomes and outcomes[-1] is Outcome.COMPLETE
    assert (out / "log.csv").read_bytes() == sent.path.read_bytes()
    assert [v.outcome for v in verdicts] == ["verified"]


def test_a_restarted_downloader_continues_from_its_verified_prefix(tmp_path: Path) -> None:
    out = tmp_path / "out"
    sent = Sent(tmp_path)
    sent.append(b"first " * 200)
    sent.send.extend()
    with Ledger(out / ".labstream" / "ledger.sqlite") as ledger:
        first = Assembler(out, ledger)
        feed(first, sent.records())
        first.close()  # a restart: offsets were committed past the mark
    sent.append(b"second " * 300)
    sent.send.extend(end=True)
    verdicts: list[Verdict] = []
    with Ledger(out / ".labstream" / "ledger.sqlite") as ledger:
        second = Assembler(out, ledger, verdicts.append)
        outcomes = feed(second, sent.records())
        second.close()
    assert outcomes[-1] is Outcome.COMPLETE
    assert (out / "log.csv").read_bytes() == sent.path.read_bytes()
    assert verdicts[0].digest == hashlib.sha256(sent.path.read_bytes()).digest()


def test_a_file_rewritten_or_truncated_is_a_new_send_never_a_mix(tmp_path: Path) -> None:
    sent = Sent(tmp_path)
    sent.append(b"a" * 5000)
    sent.send.extend()
    sent.path.write_bytes(b"b" * 6000)  # rewritten, and longer
    with pytest.raises(Exception, match="rewritten"):
        sent.send.extend()
    sent.path.write_bytes(b"a" * 10)
    with pytest.raises(Exception, match="truncated"):
        sent.send.extend()


@pytest.mark.parametrize("from_end", [1, 1500, 4096])
def test_a_byte_changed_in_the_last_4_kib_sent_is_a_rewrite(tmp_path: Path, from_end: int) -> None:
    sent = Sent(tmp_path)
    data = bytes(i % 251 for i in range(10 * CHUNK + 300))  # the last 4 KiB span five chunks
    sent.append(data)
    sent.send.extend()
    changed = bytearray(data)
    changed[-from_end] ^= 0xFF
    sent.path.write_bytes(bytes(changed) + b"more")
    with pytest.raises(Exception, match="last bytes sent changed"):
        sent.send.extend()


def test_marks_are_checkpointed_once_acknowledged(tmp_path: Path) -> None:
    sent = Sent(tmp_path)
    sent.append(b"z" * 2048)
    sent.send.extend()
    sent.ack()
    assert [(p.sent, p.sha256) for p in sent.points] == [(2048, hashlib.sha256(b"z" * 2048).digest())]
    kinds = [decode(r.value).live for r in sent.broker.messages(TOPIC)]
    assert kinds == [LIVE_DATA, LIVE_DATA, LIVE_MARK]


def test_a_rewrite_in_the_middle_that_keeps_the_first_and_last_4_kib_is_a_new_send(tmp_path: Path) -> None:
    sent = Sent(tmp_path)
    sent.append(os.urandom(200_000))
    sent.send.extend()
    with open(sent.path, "r+b") as handle:  # the middle only: both edges stay as sent
        handle.seek(100_000)
        handle.write(b"rewritten")
    sent.append(b"and more")
    with pytest.raises(Exception, match="changed \\(rewritten\\)"):
        sent.send.extend()


def test_segments_are_appended_alike_where_the_kernel_cannot_copy_file_ranges(
    tmp_path: Path, down: tuple[Assembler, list[Verdict], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*_args: object) -> int:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refused, raising=False)
    assembler, _verdicts, out = down
    sent = Sent(tmp_path)
    for size in (3000, 5000, 7):  # the first is renamed into place, the others appended
        sent.append(os.urandom(size))
        sent.send.extend()
        feed(assembler, sent.records())
        assert (out / "log.csv").read_bytes() == sent.path.read_bytes()
