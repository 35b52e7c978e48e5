"""`labstream ls` and `labstream get` against the real broker, as a user runs them."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from labstream.settings.roles import source_name
from labstream.wire import Chunk, encode
from labstream.wire.v2 import aborted_trailer

from ..unit.test_wire import _raw
from ..unit.test_wire_v2 import v2_chunks_of
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


@pytest.mark.serial  # compares every group on the broker before and after: no other test meanwhile
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


def upload_tree(tmp_path: Path, config_file: Path, topic: str, files: dict[str, bytes]) -> None:
    src = tmp_path / "src"
    for name, content in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(content)
    labstream("upload", src, "-c", config_file, "-t", topic, "--chunk-size", "65536")


def test_ls_lists_each_multi_chunk_v2_upload_as_one_complete_send(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    files = {f"run1/f{i}.bin": os.urandom(3 << 19) for i in range(3)}  # 1.5 MiB: 24 chunks each
    upload_tree(tmp_path, config_file, topic, files)
    done = labstream("ls", topic, "-c", config_file, "--json")
    assert done.stdout.endswith("\n") and "send(s)" not in done.stdout
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [row["path"] for row in rows] == sorted(files)
    for row in rows:
        assert (row["size"], row["sha256"]) == (3 << 19, hashlib.sha256(files[row["path"]]).hexdigest())
        assert (row["chunks_present"], row["chunks_expected"], row["state"]) == (24, 24, "complete")
        assert row["complete"] is True and row["aborted"] is False and row["wire"] == "labstream"
        assert len(bytes.fromhex(row["file_id"])) == 16 and row["source"] == source_name(None)  # the host
    assert done.stderr.splitlines()[-1] == "3 send(s): 3 complete, 0 partial, 0 aborted; from 72 message(s)"
    table = labstream("ls", topic, "-c", config_file)
    lines = table.stdout.splitlines()
    assert table.stdout.endswith("\n") and len(lines) == 4 and "SOURCE" in lines[0] and "FILE ID" in lines[0]
    for line, row in zip(lines[1:], rows, strict=True):
        assert row["sha256"][:16] in line and row["file_id"][:8] in line and " 24/24 " in line
        assert " complete " in line and line.endswith(row["path"]) and "1.5 MiB" in line
    assert "send(s)" not in table.stdout and "3 complete" in table.stderr


def test_ls_shows_an_aborted_and_a_partial_v2_send_beside_a_complete_one(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    content = os.urandom(5000)
    changed = v2_chunks_of("a.dat", content, 1024)
    trailer = aborted_trailer("a.dat", 5000, 1024, changed[0].file_id, 1)
    resent = v2_chunks_of("a.dat", content, 1024)  # the watcher sends it again once it settled
    cut = v2_chunks_of("b.dat", os.urandom(3000), 1024)[:2]  # the sender crashed: no last chunk
    values = [*changed[:2], trailer, *resent, *cut]
    produce_raw(config_file, topic, [(c.path.encode(), encode(c)) for c in values])
    done = labstream("ls", topic, "-c", config_file, "--json")
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    # Rows come by path and first time; sends produced within one millisecond tie.
    seen = sorted(
        ((r["path"], r["file_id"], r["state"], r["chunks_present"], r["sha256"]) for r in rows), key=str
    )
    assert seen == sorted(
        [
            ("a.dat", changed[0].file_id.hex(), "aborted", 2, None),
            ("a.dat", resent[0].file_id.hex(), "complete", 5, hashlib.sha256(content).hexdigest()),
            ("b.dat", cut[0].file_id.hex(), "partial", 2, None),
        ],
        key=str,
    )
    assert "3 send(s): 1 complete, 1 partial, 1 aborted; from 10 message(s)" in done.stderr
    table = labstream("ls", topic, "-c", config_file).stdout.splitlines()
    assert sorted(line.split()[-4] for line in table[1:]) == ["aborted", "complete", "partial"]


def test_ls_counts_hostile_paths_as_unreadable_and_since_in_the_future_lists_nothing(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    hostile = _raw("evil\x1b[31mred\u202e.txt".encode())
    produce_raw(config_file, topic, [(b"k", hostile), *chunks_of("fine.txt", b"fine")])
    done = labstream("ls", topic, "-c", config_file)
    assert "\x1b" not in done.stdout + done.stderr and "\u202e" not in done.stdout + done.stderr
    assert "fine.txt" in done.stdout and "evil" not in done.stdout and "1 unreadable" in done.stderr
    later = labstream("ls", topic, "-c", config_file, "--since", "2999-01-01", "--json")
    assert later.stdout == "" and "0 send(s)" in later.stderr


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


def test_get_fetches_the_newest_multi_chunk_v2_send_and_knows_it_is_present_after(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    old, new = os.urandom(3 << 19), os.urandom(3 << 19)
    upload_tree(tmp_path / "first", config_file, topic, {"run1/data.bin": old})
    upload_tree(tmp_path / "second", config_file, topic, {"run1/data.bin": new})
    later = v2_chunks_of("run1/data.bin", os.urandom(3 << 19), 65536)  # newer, never complete:
    trailer = aborted_trailer("run1/data.bin", 3 << 19, 65536, later[0].file_id, 1)  # aborted,
    crashed = v2_chunks_of("run1/data.bin", os.urandom(3 << 19), 65536)[:-1]  # and partial
    produce_raw(config_file, topic, [(c.path.encode(), encode(c)) for c in [*later[:3], trailer, *crashed]])
    out = tmp_path / "out"
    done = labstream("get", topic, "run1/data.bin", "-o", out, "-c", config_file)
    assert done.stdout.split() == ["verified", "run1/data.bin", "(from", f"{source_name(None)})"]
    assert (out / "run1" / "data.bin").read_bytes() == new
    again = labstream("get", topic, "run1/data.bin", "-o", out, "-c", config_file)
    assert again.stdout.split() == ["already", "present", "run1/data.bin", "(from", f"{source_name(None)})"]


def test_get_refuses_a_path_that_escapes_the_folder(tmp_path: Path, config_file: Path, topic: str) -> None:
    produce_raw(config_file, topic, chunks_of("ok.txt", b"ok"))
    done = labstream("get", topic, "../escape.txt", "-o", tmp_path / "out", "-c", config_file, check=False)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "Error:" in done.stderr
    assert not (tmp_path / "escape.txt").exists()


def test_a_second_get_into_the_same_folder_says_already_present_and_exits_0(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "run.bin").write_bytes(os.urandom(300_000))
    (src / "note.txt").write_bytes(b"small")
    labstream("upload", src, "-t", topic, "-c", config_file, "--chunk-size", "65536")
    out = tmp_path / "out"
    first = labstream("get", topic, "run.bin", "note.txt", "-o", out, "-c", config_file)
    assert [line.split()[0] for line in first.stdout.splitlines()] == ["verified", "verified"]
    again = labstream("get", topic, "run.bin", "note.txt", "-o", out, "-c", config_file)  # exit 0
    assert [line.split(None, 2)[:2] for line in again.stdout.splitlines()] == [
        ["already", "present"],
        ["already", "present"],
    ]
    assert "2 of 2 file(s) verified" in again.stderr
    assert (out / "run.bin").read_bytes() == (src / "run.bin").read_bytes()
