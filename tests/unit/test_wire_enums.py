"""Outcomes and states are enums in the code and the same plain strings on the wire and on disk:
a message or row written with an enum is byte for byte the one written with the string, old
messages parse into the enum, and an unknown string is refused as it always was."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from labstream.dashboard.views import Liveness
from labstream.errors import WireError
from labstream.heartbeat import BeatState, Heartbeat, RecentFile, SendOutcome, parse_heartbeat
from labstream.outcomes import ReceiptOutcome, Verdict
from labstream.receipts import Receipt
from labstream.upload.ledger import UploadLedger

from .test_heartbeat import _beat as heartbeat

DIGEST = "ab" * 32


def _receipt(outcome: ReceiptOutcome | str) -> Receipt:
    return Receipt("a/b.tif", DIGEST, 10, outcome, "grp", "pc1", "", 1.7e9)  # type: ignore[arg-type]


def _beat(state: BeatState | str, outcome: SendOutcome | str) -> Heartbeat:
    recent = (RecentFile("a/b.tif", DIGEST, 10, outcome, 1.7e9),)  # type: ignore[arg-type]
    return heartbeat(state, recent=recent)


@pytest.mark.parametrize("outcome", list(ReceiptOutcome))
def test_receipt_outcome_enum_encodes_to_the_same_bytes_and_parses_back_to_the_enum(
    outcome: ReceiptOutcome,
) -> None:
    as_enum, as_text = _receipt(outcome), _receipt(outcome.value)
    assert as_enum.to_bytes() == as_text.to_bytes()
    assert json.loads(as_enum.to_bytes())["outcome"] == outcome.value
    assert as_enum.signing_message("t.receipts") == as_text.signing_message("t.receipts")
    parsed = Receipt.from_bytes(as_text.to_bytes())
    assert parsed.outcome is outcome
    assert type(parsed.outcome) is ReceiptOutcome


def test_receipt_with_an_unknown_outcome_is_refused_as_before() -> None:
    body = json.loads(_receipt(ReceiptOutcome.VERIFIED).to_bytes())
    body["outcome"] = "maybe"
    with pytest.raises(WireError, match="outcome is not verified, failed or live"):
        Receipt.from_bytes(json.dumps(body).encode())


def test_verdict_outcome_is_verified_only_for_verified() -> None:
    assert Verdict("a", b"", 1, ReceiptOutcome.VERIFIED).verified
    assert not Verdict("a", b"", 1, ReceiptOutcome.FAILED).verified
    assert not Verdict("a", b"", 1, ReceiptOutcome.LIVE).verified


@pytest.mark.parametrize("state", list(BeatState))
@pytest.mark.parametrize("outcome", list(SendOutcome))
def test_heartbeat_state_and_outcome_enums_encode_to_the_same_bytes_and_parse_back_to_the_enums(
    state: BeatState, outcome: SendOutcome
) -> None:
    as_enum, as_text = _beat(state, outcome), _beat(state.value, outcome.value)
    assert as_enum.to_bytes() == as_text.to_bytes()
    body = json.loads(as_enum.to_bytes())
    assert (body["state"], body["recent"][0]["outcome"]) == (state.value, outcome.value)
    parsed = parse_heartbeat(as_text.to_bytes())
    assert parsed.state is state
    assert parsed.status.recent[0].outcome is outcome


@pytest.mark.parametrize(("field", "value"), [("state", "idle"), ("outcome", "verified")])
def test_heartbeat_with_an_unknown_state_or_outcome_is_refused_as_before(field: str, value: str) -> None:
    body = _beat(BeatState.RUNNING, SendOutcome.SENT).body()
    if field == "state":
        body["state"] = value
    else:
        body["recent"][0]["outcome"] = value
    with pytest.raises(WireError, match=f"heartbeat field '{field}' is not one of"):
        parse_heartbeat(json.dumps(body).encode())


def test_enums_print_and_format_as_their_plain_value() -> None:
    members = [*ReceiptOutcome, *BeatState, *SendOutcome, *Liveness]
    assert [f"{m}" for m in members] == [m.value for m in members]
    assert ["%s" % m for m in members] == [m.value for m in members]  # noqa: UP031 (log lines)
    assert json.dumps(dict.fromkeys(Liveness, 0)) == '{"alive": 0, "stale": 0, "stopped": 0}'


def test_an_outcome_enum_is_stored_in_sqlite_as_its_plain_text(tmp_path: Path) -> None:
    with UploadLedger(tmp_path / "upload.db") as ledger:
        ledger.add_receipt(replace(_receipt(ReceiptOutcome.FAILED), authenticated=True))
    with contextlib.closing(sqlite3.connect(tmp_path / "upload.db")) as db:
        assert db.execute("SELECT outcome, typeof(outcome) FROM receipts").fetchall() == [("failed", "text")]
