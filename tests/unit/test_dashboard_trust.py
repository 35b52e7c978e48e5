"""The dashboard's store against someone with write access to the heartbeat topic.

Beats go through the same path as in the dashboard: bytes -> `parse_heartbeat` with the
Ed25519 verifier -> `Store.add_heartbeats`. Keys are real (`write_keypair`).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from labstream.dashboard.store import DROPPED, MAX_INSTANCES, REFUSED, Store
from labstream.dashboard.views import fleet
from labstream.heartbeat import Heartbeat, Status, Trust, parse_heartbeat
from labstream.receipts.signing import (
    SigningKey,
    TrustedKeys,
    heartbeat_signer,
    heartbeat_verifier,
    write_keypair,
)

INSTANCE = "download@srv:t/archive"


class Keys:
    def __init__(self, folder: Path) -> None:
        self.mine_pub, _ = write_keypair(folder / "mine")
        write_keypair(folder / "stranger")
        self.mine = heartbeat_signer(SigningKey.load(folder / "mine"))
        self.stranger = heartbeat_signer(SigningKey.load(folder / "stranger"))
        self.verify = heartbeat_verifier(TrustedKeys.load(str(self.mine_pub)))


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with Store(tmp_path / "d.sqlite") as opened:
        yield opened


def beat(seq: int, *, run: str = "run-b", started: float = 2000.0, state: str = "running") -> Heartbeat:
    return Heartbeat(
        INSTANCE,
        "download",
        "srv",
        7,
        "0.1.0",
        started,
        time.time(),
        10.0,
        state,
        Status(topic="t", group="archive", verified=seq),
        run=run,
        seq=seq,
    )


def apply(store: Store, keys: Keys, value: bytes) -> None:
    store.add_heartbeats([parse_heartbeat(value, keys.verify)])


def row(store: Store) -> dict[str, Any]:
    (found,) = fleet(store)["consumers"]
    return found


def live_signed(store: Store, keys: Keys) -> None:
    """A downloader of run "run-b" that signs its beats, seen twice."""
    apply(store, keys, beat(1).to_bytes(keys.mine))
    apply(store, keys, beat(2).to_bytes(keys.mine))
    assert (row(store)["state"], row(store)["trust"]) == ("alive", "signed")


def assert_refused(store: Store, reason: str) -> None:
    shown = row(store)
    assert (shown["state"], shown["trust"], shown["verified"]) == ("alive", "signed", 2)
    assert shown["refused"] == 1 and reason in shown["refused_reason"]
    assert fleet(store)["rejected"][REFUSED] == 1


def test_an_unsigned_stopped_beat_does_not_change_a_signed_instance(store: Store, keys: Keys) -> None:
    live_signed(store, keys)
    apply(store, keys, beat(3, state="stopped").to_bytes())
    assert_refused(store, "unsigned")


def test_a_real_beat_edited_to_stopped_with_its_signature_kept_is_refused(store: Store, keys: Keys) -> None:
    live_signed(store, keys)
    edited = json.loads(beat(3).to_bytes(keys.mine))
    edited["state"] = "stopped"
    apply(store, keys, json.dumps(edited).encode())
    assert_refused(store, "bad signature")


def test_the_previous_runs_genuine_stopped_beat_replayed_is_refused(store: Store, keys: Keys) -> None:
    earlier_stopped = beat(40, run="run-a", started=1000.0, state="stopped").to_bytes(keys.mine)
    live_signed(store, keys)
    apply(store, keys, earlier_stopped)
    assert_refused(store, "replayed")


def test_an_older_beat_of_the_same_run_replayed_is_refused(store: Store, keys: Keys) -> None:
    first = beat(1).to_bytes(keys.mine)
    live_signed(store, keys)
    apply(store, keys, first)
    assert_refused(store, "replayed")


def test_a_beat_signed_by_another_valid_key_is_refused_and_named_untrusted(store: Store, keys: Keys) -> None:
    live_signed(store, keys)
    value = beat(3, state="stopped").to_bytes(keys.stranger)
    assert parse_heartbeat(value, keys.verify).trust is Trust.UNTRUSTED_KEY
    apply(store, keys, value)
    assert_refused(store, "another key")


def test_the_owner_goes_on_after_refusals_and_a_new_run_is_accepted(store: Store, keys: Keys) -> None:
    live_signed(store, keys)
    apply(store, keys, beat(3, state="stopped").to_bytes())
    apply(store, keys, beat(3, state="stopped").to_bytes(keys.mine))
    assert row(store)["state"] == "stopped"
    apply(store, keys, beat(1, run="run-c", started=3000.0).to_bytes(keys.mine))
    assert (row(store)["state"], row(store)["refused"]) == ("alive", 1)


def test_an_untrusted_but_valid_signature_is_not_a_bad_signature(keys: Keys) -> None:
    assert parse_heartbeat(beat(1).to_bytes(keys.stranger), keys.verify).trust is Trust.UNTRUSTED_KEY
    forged = json.loads(beat(1).to_bytes(keys.stranger))
    forged["verified"] = 99
    assert parse_heartbeat(json.dumps(forged).encode(), keys.verify).trust is Trust.BAD_SIGNATURE
    swapped = json.loads(beat(1).to_bytes(keys.stranger))
    swapped["sig"]["pub"] = json.loads(beat(1).to_bytes(keys.mine))["sig"]["pub"]
    assert parse_heartbeat(json.dumps(swapped).encode(), keys.verify).trust is Trust.BAD_SIGNATURE


def test_old_beats_without_run_and_seq_still_show_as_unsigned(store: Store, keys: Keys) -> None:
    legacy = json.loads(beat(1).to_bytes())
    del legacy["run"], legacy["seq"]
    apply(store, keys, json.dumps(legacy).encode())
    apply(store, keys, json.dumps(legacy).encode())
    shown = row(store)
    assert (shown["state"], shown["trust"], shown["refused"]) == ("alive", "unsigned", 0)


def test_a_flood_of_invented_instances_keeps_every_known_one(store: Store) -> None:
    start = time.time() - 600
    known = [replace(beat(i), instance=f"watch@real{i}:/data", role="watch") for i in range(1, 6)]
    store.add_heartbeats(known, received=start)
    store.add_heartbeats([replace(b, seq=b.seq + 10) for b in known], received=start + 2)
    # Heard from once only, but signed by a trusted key: never dropped for unknown names.
    signed_once = replace(beat(1), trust=Trust.SIGNED, key_id="00112233aabbccdd")
    store.add_heartbeats([signed_once], received=start + 3)
    flood = 100_000
    for first in range(0, flood, 1000):
        invented = [
            replace(known[0], instance=f"watch@fake{i}:/x", run="", seq=0) for i in range(first, first + 1000)
        ]
        store.add_heartbeats(invented, received=start + 4 + first / 1000)
    # The real ones beat again after the flood: no row was lost, and nothing was dropped
    # that the page does not count.
    store.add_heartbeats([replace(b, seq=b.seq + 20) for b in known], received=start + 200)
    view = fleet(store, start + 201)
    names = {r["instance"] for r in view["instruments"]}
    assert {b.instance for b in known} <= names
    assert len(names) == MAX_INSTANCES - 1
    assert INSTANCE in {r["instance"] for r in view["consumers"]}
    assert view["rejected"][DROPPED] == flood + len(known) + 1 - MAX_INSTANCES
    assert all(r["state"] == "alive" for r in view["instruments"] if r["instance"].startswith("watch@real"))


def test_the_owners_last_beat_delivered_again_is_no_alert(store: Store, keys: Keys) -> None:
    live_signed(store, keys)
    last = beat(3).to_bytes(keys.mine)
    apply(store, keys, last)
    apply(store, keys, last)  # Kafka delivers at least once
    assert (row(store)["verified"], row(store)["refused"]) == (3, 0)
