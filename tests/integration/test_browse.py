"""`labstream ls` and `labstream get` against the real broker, as a user runs them."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from confluent_kafka.admin import AdminClient

from labstream.wire import Chunk, encode

from ..unit.test_wire import _raw
from .conftest import labstream
from .test_bad_input import produce_raw


def chunks_of(path: str, content: bytes, chunk_size: int = 1024) -> list[tuple[bytes, bytes]]:
    sha = hashlib.sha256(content).digest()
    n = max(1, -(-len(content) // chunk_size))
    return [
        (
            path.encode(),
            encode(
                Chunk(
                    path, len(content), sha, i, n, chunk_size, content[i * chunk_size : (i + 1) * chunk_size]
                )
            ),
        )
        for i in range(n)
    ]


def groups(bootstrap: str) -> set[str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return {g.group_id for g in admin.list_consumer_groups(request_timeout=10).result(30).valid}


def test_ls_lists_complete_partial_and_unreadable_without_joining_a_group(
    tmp_path: Path, config_file: Path, topic: str, bootstrap: str
) -> None:
    whole, partial = os.urandom(3000), os.urandom(5000)
    values = chunks_of("data/whole.bin", whole) + chunks_of("data/partial.bin", partial)[:2]
    values += [(b"x", b"not a chunk at all"), *chunks_of("data/whole.bin", whole)[:1]]  # a resent chunk
    produce_raw(config_file, topic, values)
    before = groups(bootstrap)
    done = labstream("ls", topic, "-c", config_file, "--json")
    rows = {row["path"]: row for row in map(json.loads, done.stdout.splitlines())}
    assert rows["data/whole.bin"]["sha256"] == hashlib.sha256(whole).hexdigest()
    assert (rows["data/whole.bin"]["size"], rows["data/whole.bin"]["complete"]) == (3000, True)
    assert (rows["data/whole.bin"]["chunks_present"], rows["data/whole.bin"]["chunks_expected"]) == (3, 3)
    assert (rows["data/partial.bin"]["chunks_present"], rows["data/partial.bin"]["chunks_expected"]) == (2, 5)
    assert rows["data/partial.bin"]["complete"] is False
    assert rows["data/whole.bin"]["first_time_ms"] <= rows["data/whole.bin"]["last_time_ms"]
    assert "1 unreadable" in done.stderr and "from 7 message(s)" in done.stderr
    assert groups(bootstrap) == before  # no consumer group joined or committed
    table = labstream("ls", topic, "-c", config_file).stdout
    assert "partial" in table and "complete" in table and "3/3" in table and "2/5" in table


def test_ls_counts_hostile_paths_as_unreadable_and_since_in_the_future_lists_nothing(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    hostile = _raw("evil\x1b[31mred\u202e.txt".encode())
    produce_raw(config_file, topic, [(b"k", hostile), *chunks_of("fine.txt", b"fine")])
    done = labstream("ls", topic, "-c", config_file)
    assert "\x1b" not in done.stdout + done.stderr and "\u202e" not in done.stdout + done.stderr
    assert "fine.txt" in done.stdout and "evil" not in done.stdout and "1 unreadable" in done.stderr
    later = labstream("ls", topic, "-c", config_file, "--since", "2999-01-01", "--json")
    assert later.stdout == "" and "0 file version(s)" in later.stderr


def test_ls_lists_encrypted_files_without_the_key(tmp_path: Path, config_file: Path, topic: str) -> None:
    key = tmp_path / "key"
    labstream("keygen", key)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "secret.dat").write_bytes(os.urandom(4000))
    labstream("upload", tmp_path / "src", "-c", config_file, "-t", topic, "--encryption-key-file", key)
    (row,) = map(json.loads, labstream("ls", topic, "-c", config_file, "--json").stdout.splitlines())
    assert (row["path"], row["size"], row["encrypted"], row["complete"]) == ("secret.dat", 4000, True, True)


def test_get_fetches_wanted_files_verified_and_reports_missing_and_failed(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    wanted, other, bad = os.urandom(5000), os.urandom(2000), os.urandom(3000)
    damaged = chunks_of("bad.bin", bad)
    value = bytearray(damaged[1][1])
    value[-5] ^= 0xFF
    damaged[1] = (damaged[1][0], bytes(value))
    produce_raw(
        config_file, topic, chunks_of("a/wanted.bin", wanted) + chunks_of("other.bin", other) + damaged
    )
    out = tmp_path / "out"
    done = labstream(
        "get", topic, "a/wanted.bin", "bad.bin", "nope.txt", "-o", out, "-c", config_file, check=False
    )
    assert done.returncode == 1
    lines = dict(
        line.split(None, 1)[::-1]
        for line in done.stdout.splitlines()
        if line.startswith(("verified", "missing"))
    )
    assert lines == {"a/wanted.bin": "verified", "nope.txt": "missing"}
    assert any(line.startswith("failed") and "bad.bin" in line for line in done.stdout.splitlines())
    assert (out / "a" / "wanted.bin").read_bytes() == wanted
    assert not (out / "other.bin").exists() and not (out / "bad.bin").exists()
    again = labstream("get", topic, "a/wanted.bin", "-o", out, "-c", config_file)
    assert again.stdout.startswith("already present")


def test_get_newest_version_wins_and_encrypted_needs_the_key(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    key = tmp_path / "key"
    labstream("keygen", key)
    src = tmp_path / "src"
    src.mkdir()
    for text in ("first version", "second version, longer"):
        (src / "notes.txt").write_text(text)
        labstream("upload", src, "-c", config_file, "-t", topic, "--encryption-key-file", key)
    without = labstream("get", topic, "notes.txt", "-o", tmp_path / "nokey", "-c", config_file, check=False)
    assert without.returncode == 1 and without.stdout.startswith("failed") and "no key" in without.stdout
    assert not (tmp_path / "nokey" / "notes.txt").exists()
    labstream(
        "get", topic, "notes.txt", "-o", tmp_path / "out", "-c", config_file, "--encryption-key-file", key
    )
    assert (tmp_path / "out" / "notes.txt").read_text() == "second version, longer"


def test_get_refuses_a_path_that_escapes_the_folder(tmp_path: Path, config_file: Path, topic: str) -> None:
    produce_raw(config_file, topic, chunks_of("ok.txt", b"ok"))
    done = labstream("get", topic, "../escape.txt", "-o", tmp_path / "out", "-c", config_file, check=False)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "Error:" in done.stderr
    assert not (tmp_path / "escape.txt").exists()
