"""Receipts from someone with write access to the receipts topic: parsed strictly, never fatal."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from labstream.cli import cli
from labstream.errors import WireError
from labstream.receipts import Receipt, SigningKey, TrustedKeys
from labstream.receipts.collector import deliver
from labstream.receipts.signing import write_keypair

GOOD = {
    "v": 2,
    "path": "run/a.dat",
    "sha256": "ab" * 32,
    "size": 10,
    "outcome": "verified",
    "group": "archive",
    "host": "pc",
    "reason": "",
    "at": 1.5,
}


def with_(**changes: object) -> bytes:
    return json.dumps({**GOOD, **changes}).encode()


HOSTILE: list[tuple[str, bytes]] = [
    ("size 1e400", with_(size=1e400)),
    ("size as literal 1e400", json.dumps(GOOD).replace('"size": 10', '"size": 1e400').encode()),
    ("size huge integer", json.dumps(GOOD).replace('"size": 10', '"size": ' + "9" * 5000).encode()),
    ("200,000 nested [", b"[" * 200_000),
    ("60,000 nested [ under the cap", b'{"v": 2, "path": ' + b"[" * 60_000),
    ("nested { under the cap", b'{"a":' * 10_000),
    ("size bool", with_(size=True)),
    ("size negative", with_(size=-1)),
    ("size float", with_(size=10.0)),
    ("size string", with_(size="10")),
    ("size list", with_(size=[10])),
    ("size dict", with_(size={"n": 10})),
    ("size 2**64", with_(size=2**64)),
    ("at NaN", json.dumps(GOOD).replace('"at": 1.5', '"at": NaN').encode()),
    ("at Infinity", json.dumps(GOOD).replace('"at": 1.5', '"at": Infinity').encode()),
    ("at -Infinity", json.dumps(GOOD).replace('"at": 1.5', '"at": -Infinity').encode()),
    ("at bool", with_(at=True)),
    ("at string", with_(at="now")),
    ("version bool", with_(v=True)),
    ("version 4", with_(v=4)),
    ("file id not hex", with_(v=3, file_id="zz" * 16)),
    ("source with a slash", with_(v=3, source="a/b")),
    ("stored_as escaping", with_(v=3, stored_as="../x")),
    ("no digest and no file id", with_(v=3, sha256="")),
    ("version string", with_(v="2")),
    ("path list", with_(path=["a"])),
    ("path number", with_(path=5)),
    ("path absolute", with_(path="/etc/passwd")),
    ("path climbs", with_(path="../x")),
    ("path empty", with_(path="")),
    ("path with newline", with_(path="a\nFAKE LOG LINE")),
    (
        "path lone surrogate",
        b'{"v":2,"path":"a\\ud800","sha256":"' + b"ab" * 32 + b'","size":1,'
        b'"outcome":"verified","group":"g","host":"h"}',
    ),
    ("digest short", with_(sha256="ab" * 31)),
    ("digest upper case", with_(sha256="AB" * 32)),
    ("digest not hex", with_(sha256="zz" * 32)),
    ("digest null", with_(sha256=None)),
    ("outcome unknown", with_(outcome="deleted")),
    ("outcome bool", with_(outcome=True)),
    ("group dict", with_(group={"a": 1})),
    ("group empty", with_(group="")),
    ("group with control character", with_(group="a\x1b[31m")),
    ("group huge", with_(group="g" * 10_000)),
    ("reason list", with_(reason=["x"])),
    ("key id not hex", with_(key_id="xyz", sig="")),
    ("signature not base64", with_(key_id="ab" * 8, sig="!!!")),
    ("signature wrong length", with_(key_id="ab" * 8, sig="AAAA")),
    ("huge message", with_(reason="x" * 70_000)),
    ("not UTF-8", b'{"v": 2, "path": "\xff\xfe"}'),
    ("empty", b""),
    ("a list", b"[]"),
    ("a string", b'"receipt"'),
    ("null", b"null"),
    ("missing fields", b'{"v": 2}'),
]


@pytest.mark.parametrize(("name", "value"), HOSTILE, ids=[name for name, _ in HOSTILE])
def test_hostile_receipts_are_a_wire_error(name: str, value: bytes) -> None:
    with pytest.raises(WireError):
        Receipt.from_bytes(value)


def test_deliver_skips_each_hostile_message_with_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[Receipt] = []
    for _, value in HOSTILE:
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            deliver(value, "t.receipts", TrustedKeys(), seen.append)
        assert len(caplog.records) == 1 and "receipt ignored" in caplog.records[0].getMessage()
    deliver(with_(), "t.receipts", TrustedKeys(), seen.append)
    assert [r.path for r in seen] == ["run/a.dat"]


def test_deliver_survives_a_callback_that_raises(caplog: pytest.LogCaptureFixture) -> None:
    def broken(_receipt: Receipt) -> None:
        raise OSError("disk gone")

    deliver(with_(), "t.receipts", TrustedKeys(), broken)  # logged, not raised
    assert "receipt not handled" in caplog.text


def test_version_1_receipts_parse_as_unauthenticated() -> None:
    old = Receipt.from_bytes(with_(v=1))
    assert old.path == "run/a.dat" and not old.authenticated
    assert not old.authenticate(TrustedKeys(), "t.receipts").authenticated


def test_signed_receipt_round_trip_and_every_field_is_covered(tmp_path: Path) -> None:
    write_keypair(tmp_path / "lab")
    key, trusted = SigningKey.load(tmp_path / "lab"), TrustedKeys.load(str(tmp_path))
    receipt = Receipt("a/b.txt", "cd" * 64, 5, "failed", "grp", "pc", "bad chunk", 12.25).signed(key, "t.r")
    wire = receipt.to_bytes()
    assert Receipt.from_bytes(wire).authenticate(trusted, "t.r").authenticated
    assert not Receipt.from_bytes(wire).authenticate(trusted, "other.r").authenticated
    body = json.loads(wire)
    for field, value in [
        ("path", "a/c.txt"),
        ("sha256", "ce" * 64),
        ("size", 6),
        ("outcome", "verified"),
        ("group", "grp2"),
        ("host", "pc2"),
        ("reason", ""),
        ("at", 12.5),
    ]:
        forged = json.dumps({**body, field: value}).encode()
        assert not Receipt.from_bytes(forged).authenticate(trusted, "t.r").authenticated, field


def test_keygen_receipts_writes_a_private_and_a_public_key(tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(cli, ["keygen", "--receipts", str(tmp_path / "archive")])
    assert done.exit_code == 0, done.output
    assert stat.S_IMODE(os.stat(tmp_path / "archive").st_mode) == 0o600
    key = SigningKey.load(tmp_path / "archive")
    assert key.key_id in TrustedKeys.load(str(tmp_path / "archive.pub"))
    assert key.key_id in done.output


@pytest.mark.parametrize("kind", [[], ["--receipts"]])
def test_keygen_onto_an_existing_file_is_one_line(tmp_path: Path, kind: list[str]) -> None:
    target = tmp_path / "key"
    target.write_text("precious")
    done = CliRunner().invoke(cli, ["keygen", *kind, str(target)])
    assert done.exit_code == 1 and isinstance(done.exception, SystemExit)
    assert done.output.strip().count("\n") == 0 and "already exists" in done.output
    assert target.read_text() == "precious"


def test_trusted_keys_refuse_what_is_not_a_public_key(tmp_path: Path) -> None:
    from labstream.errors import ConfigError

    (tmp_path / "junk.pub").write_text("not a key")
    with pytest.raises(ConfigError, match="not a PEM public key"):
        TrustedKeys.load(str(tmp_path))
    with pytest.raises(ConfigError, match="cannot read"):
        TrustedKeys.load(str(tmp_path / "missing.pub"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"no \*\.pub"):
        TrustedKeys.load(str(tmp_path / "empty"))


@pytest.mark.parametrize(
    "args",
    [
        ["watch", "{root}", "-t", "t", "--delete-after-verified", "1"],
        ["watch", "{root}", "-t", "t", "--move-after-verified", "{elsewhere}"],
        ["upload", "{root}", "-t", "t", "--wait-verified"],
    ],
)
def test_clean_up_and_wait_verified_refuse_to_start_without_trusted_keys(
    tmp_path: Path, args: list[str]
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "f.txt").write_text("x")
    argv = [a.format(root=root, elsewhere=tmp_path / "archive") for a in args]
    done = CliRunner().invoke(cli, [*argv, "--config", "local"])
    assert done.exit_code == 1, done.output
    assert "needs trusted receipt keys" in done.output
    assert "labstream keygen --receipts NAME" in done.output
    assert done.output.strip().count("\n") == 0


def test_outgoing_receipts_always_parse_whatever_the_reason_text(tmp_path: Path) -> None:
    write_keypair(tmp_path / "lab")
    key, trusted = SigningKey.load(tmp_path / "lab"), TrustedKeys.load(str(tmp_path / "lab.pub"))
    for reason in ("line\nFAKE LOG LINE", "\x1b[31mred", "bad \ud800 surrogate", "x" * 100_000):
        receipt = Receipt.outgoing("a.txt", "ab" * 32, 1, "failed", "grp", "pc", reason).signed(key, "t")
        parsed = Receipt.from_bytes(receipt.to_bytes()).authenticate(trusted, "t")
        assert parsed.authenticated and parsed.reason.isprintable()


def test_a_garbled_signature_is_unauthenticated_not_an_error(tmp_path: Path) -> None:
    receipt = Receipt("a.txt", "ab" * 32, 1, "verified", "g", "h", "", 1.0, "ab" * 8, "not base64!")
    assert not receipt.authenticate(TrustedKeys(), "t").authenticated


def test_a_v3_receipt_verifies_by_the_documented_recipe_alone_and_covers_the_send(tmp_path: Path) -> None:
    """docs/wire-format.md, "Receipts": a lab's own tool needs only an Ed25519 library."""
    import base64
    import hashlib
    import struct

    from cryptography.hazmat.primitives import serialization

    write_keypair(tmp_path / "lab")
    key, trusted = SigningKey.load(tmp_path / "lab"), TrustedKeys.load(str(tmp_path))
    receipt = Receipt.outgoing(
        "run1/x.dat", "ab" * 32, 7, "verified", "archive", "pc", "name conflict: …",
        source="pc-sem", file_id="0f" * 16, stored_as="run1/x.from-pc-sem.dat",
    ).signed(key, "xrd.receipts")  # fmt: skip
    body = json.loads(receipt.to_bytes())
    fields = ["xrd.receipts", body["key_id"], body["group"], body["host"], body["outcome"], body["path"]]
    fields += [body["sha256"], str(body["size"]), repr(float(body["at"])), body["reason"]]
    fields += [body["source"], body["file_id"], body["stored_as"]]
    message = b"labstream-receipt-v3" + b"".join(
        struct.pack(">I", len(f.encode())) + f.encode() for f in fields
    )
    public = serialization.load_pem_public_key((tmp_path / "lab.pub").read_bytes())
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert hashlib.sha256(raw).hexdigest()[:16] == body["key_id"]
    public.verify(base64.b64decode(body["sig"]), message)  # raises if the recipe were wrong
    for field, value in [("source", "pc-xrd"), ("file_id", "1f" * 16), ("stored_as", "run1/x.dat")]:
        forged = json.dumps({**body, field: value}).encode()
        assert not Receipt.from_bytes(forged).authenticate(trusted, "xrd.receipts").authenticated, field
