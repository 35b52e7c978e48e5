"""Heartbeat format: round trip, signatures, and hostile messages that must never crash."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labstream.errors import WireError
from labstream.heartbeat import (
    MAX_HEARTBEAT_BYTES,
    Heartbeat,
    HeartbeatPublisher,
    RecentFile,
    Status,
    Trust,
    parse_heartbeat,
)
from labstream.heartbeat.format import canonical


def _beat(state: str = "running", **status: Any) -> Heartbeat:
    return Heartbeat(
        instance="watch@pc1:/data",
        role="watch",
        host="pc1",
        pid=42,
        version="0.1.0",
        started=1.7e9,
        at=1.7e9 + 5,
        interval=10.0,
        state=state,  # type: ignore[arg-type]
        status=Status(folder="/data", topic="t", **status),
    )


def _body(**changes: Any) -> bytes:
    body = _beat().body()
    body.update(changes)
    return json.dumps(body).encode()


def test_round_trip_keeps_every_field() -> None:
    recent = (
        RecentFile("a/b.tif", "ab" * 32, 10, "sent", 1.7e9),
        RecentFile("c", "", 0, "failed", 1.7e9, "gone"),
    )
    beat = _beat(queued_files=3, queued_bytes=300, sent=5, last_file="a/b.tif", recent=recent)
    assert parse_heartbeat(beat.to_bytes()) == beat


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"null",
        b"[]",
        b"\xff\xfe",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"v": 1, "x": ' + b"[" * 50 + b"]" * 50 + b"}",
        b'{"v": 2}',
        b'{"v": true}',
        _body(instance=""),
        _body(instance=None),
        _body(instance="x" * 5000),
        _body(role="admin"),
        _body(state="exploded"),
        _body(pid=-1),
        _body(pid=True),
        _body(pid=2**80),
        _body(sent=1.5),
        _body(sent="5"),
        _body(interval=0),
        _body(at=1e300),
        _body(rate=-1),
        _body(host={"a": 1}),
        _body(recent="x"),
        _body(recent=[1]),
        _body(recent=[{"path": "a", "sha256": "zz", "size": 1, "outcome": "sent", "at": 1}]),
        _body(recent=[{"path": "a", "size": 1, "outcome": "stolen", "at": 1}]),
        _body(recent=[{"path": "", "size": 1, "outcome": "sent", "at": 1}]),
        _body(recent=[{"path": "a", "size": 1, "outcome": "sent", "at": 1}] * 201),
        _body(last_file="\ud800"),
        _body(v=1, at="NaN"),
        _body(v=1).replace(b'"rate": 0.0', b'"rate": NaN'),
        _body(v=1).replace(b'"rate": 0.0', b'"rate": Infinity'),
        b" " * (MAX_HEARTBEAT_BYTES + 1),
    ],
)
def test_hostile_heartbeats_are_refused_with_wire_error(value: bytes) -> None:
    with pytest.raises(WireError):
        parse_heartbeat(value)


def test_unknown_fields_are_ignored_for_newer_senders() -> None:
    assert parse_heartbeat(_body(future_field={"x": [1]})).instance == "watch@pc1:/data"


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=512)
    | st.recursive(
        st.none() | st.booleans() | st.floats() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    ).map(lambda v: json.dumps(v).encode())
)
def test_arbitrary_input_only_ever_raises_wire_error(value: bytes) -> None:
    with contextlib.suppress(WireError):
        parse_heartbeat(value)


def _signer(key: bytes) -> Callable[[bytes], dict[str, Any]]:
    import hashlib
    import hmac

    return lambda payload: {"alg": "test", "sig": hmac.new(key, payload, hashlib.sha256).hexdigest()}


def _verifier(key: bytes) -> Callable[[bytes, Any], bool]:
    return lambda payload, sig: sig.get("sig") == _signer(key)(payload)["sig"]


def test_trust_says_unsigned_signed_unchecked_or_bad() -> None:
    signed = _beat().to_bytes(_signer(b"k"))
    assert parse_heartbeat(_beat().to_bytes(), _verifier(b"k")).trust is Trust.UNSIGNED
    assert parse_heartbeat(signed, _verifier(b"k")).trust is Trust.SIGNED
    assert parse_heartbeat(signed).trust is Trust.UNCHECKED
    assert parse_heartbeat(signed, _verifier(b"other")).trust is Trust.BAD_SIGNATURE
    tampered = json.loads(signed)
    tampered["sent"] = 999
    assert parse_heartbeat(json.dumps(tampered).encode(), _verifier(b"k")).trust is Trust.BAD_SIGNATURE
    assert parse_heartbeat(_body(sig="x"), _verifier(b"k")).trust is Trust.BAD_SIGNATURE


def test_a_crashing_verifier_means_bad_signature() -> None:
    def verify(payload: bytes, sig: Any) -> bool:
        raise ValueError("bad key")

    assert parse_heartbeat(_beat().to_bytes(_signer(b"k")), verify).trust is Trust.BAD_SIGNATURE


def test_signature_covers_the_canonical_body() -> None:
    body = json.loads(_beat().to_bytes(_signer(b"k")))
    assert _verifier(b"k")(canonical(body), body["sig"])


class ListProducer:
    """A real in-memory implementation of the producer interface the publisher uses."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.sent_event = threading.Event()

    def send(self, topic: str, key: bytes, value: bytes, on_delivery: Callable[[str | None], None]) -> None:
        self.sent.append((topic, key, value))
        on_delivery(None)
        self.sent_event.set()

    def poll(self, timeout: float = 0.0) -> None:
        pass

    def flush(self, timeout: float) -> int:
        return 0


def test_publisher_beats_then_says_stopped_and_its_thread_ends() -> None:
    producer = ListProducer()
    counts = iter(range(100))

    def snapshot() -> Status:
        return Status(topic="t", bytes=next(counts) * 1000, last_error="x" * 10)

    with HeartbeatPublisher(producer, "hb", role="download", subject="t/g", snapshot=snapshot, interval=0.05):
        while len(producer.sent) < 3:
            producer.sent_event.wait(5)
            producer.sent_event.clear()
    beats = [parse_heartbeat(value) for _, _, value in producer.sent]
    assert {topic for topic, _, _ in producer.sent} == {"hb"}
    assert [b.state for b in beats[:-1]] == ["running"] * (len(beats) - 1)
    assert beats[-1].state == "stopped" and beats[-1].role == "download"
    assert beats[0].instance.startswith("download@") and beats[0].instance.endswith(":t/g")
    assert any(b.rate > 0 for b in beats[1:])


def test_every_beat_carries_the_runs_id_and_a_growing_sequence_number() -> None:
    producer = ListProducer()
    first = HeartbeatPublisher(producer, "hb", role="watch", subject="/x", snapshot=Status, interval=0)
    again = HeartbeatPublisher(producer, "hb", role="watch", subject="/x", snapshot=Status, interval=0)
    for publisher in (first, first, first, again):
        publisher.beat()
    beats = [parse_heartbeat(value) for _, _, value in producer.sent]
    assert [b.seq for b in beats] == [1, 2, 3, 1]
    assert beats[0].run == beats[2].run != beats[3].run and len(beats[0].run) == 16


def test_publisher_survives_a_failing_snapshot_and_a_failing_producer() -> None:
    class Broken(ListProducer):
        def send(self, *args: Any) -> None:
            self.sent_event.set()
            raise RuntimeError("broker on fire")

    def snapshot() -> Status:
        raise KeyError("bug")

    producer = Broken()
    with HeartbeatPublisher(
        producer, "hb", role="watch", subject="/x", snapshot=snapshot, interval=0.01
    ) as pub:
        producer.sent_event.wait(5)
    assert pub.beats >= 2


def test_interval_zero_publishes_nothing() -> None:
    producer = ListProducer()
    with HeartbeatPublisher(producer, "hb", role="watch", subject="/x", snapshot=Status, interval=0):
        pass
    assert producer.sent == []


def test_heartbeats_signed_with_a_receipt_key_verify_only_against_trusted_keys(tmp_path: Any) -> None:
    from labstream.receipts.signing import (
        SigningKey,
        TrustedKeys,
        heartbeat_signer,
        heartbeat_verifier,
        write_keypair,
    )

    mine, _ = write_keypair(tmp_path / "mine")
    other, _ = write_keypair(tmp_path / "other")
    signed = _beat().to_bytes(heartbeat_signer(SigningKey.load(tmp_path / "mine")))
    assert parse_heartbeat(signed, heartbeat_verifier(TrustedKeys.load(str(mine)))).trust is Trust.SIGNED
    untrusted = heartbeat_verifier(TrustedKeys.load(str(other)))
    assert parse_heartbeat(signed, untrusted).trust is Trust.UNTRUSTED_KEY  # good, but not vouched for
    keyless = json.loads(signed)
    del keyless["sig"]["pub"]  # a signer that does not carry its public key cannot be checked
    assert parse_heartbeat(json.dumps(keyless).encode(), untrusted).trust is Trust.UNCHECKED
    forged = json.loads(signed)
    forged["sent"] = 12345
    trusted = heartbeat_verifier(TrustedKeys.load(str(mine)))
    assert parse_heartbeat(json.dumps(forged).encode(), trusted).trust is Trust.BAD_SIGNATURE
    garbled = json.loads(signed)
    garbled["sig"]["sig"] = "not base64!"
    assert parse_heartbeat(json.dumps(garbled).encode(), trusted).trust is Trust.BAD_SIGNATURE
