"""Messages meant to stall, crash or exhaust a downloader, through the real broker.

Each hostile case must end as one failed file: the downloader goes on to deliver the good
file produced after them, exits by itself, and its offsets move past everything, so a
second run with the same group reads nothing again.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import msgpack

from labstream.wire import Chunk, encode

from ..unit.test_wire import _raw
from .conftest import labstream
from .test_bad_input import download, produce_raw
from .watchproc import Watcher, wait_for

GOOD = (b"good.txt", encode(Chunk("good.txt", 2, hashlib.sha256(b"ok").digest(), 0, 1, 1024, b"ok")))


def whole(path: str, content: bytes) -> tuple[bytes, bytes]:
    digest = hashlib.sha256(content).digest()
    return path.encode(), encode(Chunk(path, len(content), digest, 0, 1, 1024, content))


def omsi(data: bytes, number: int, total: int, offset: int, name: bytes = b"far.bin") -> tuple[bytes, bytes]:
    value = msgpack.packb(
        [name, b"\x07" * 64, hashlib.sha512(data).digest(), offset, number, total, b"", b"", data, 0.0],
        use_bin_type=True,
    )
    return name, value


def assert_went_on(out: Path, config: Path, topic: str, status: int, log: str) -> None:
    assert status == 2, log
    assert "Traceback" not in log
    assert (out / "good.txt").read_bytes() == b"ok"
    # Offsets moved past every hostile message: the same group finds nothing left to read.
    again, log = download(out, config, topic)
    assert again == 0 and "downloaded 0 verified file(s) into" in log and "0 failed, 0 message(s)" in log, log


def test_a_file_and_a_folder_of_one_name_fail_alone(tmp_path: Path, config_file: Path, topic: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "e").write_text("the lab's own file")
    produce_raw(
        config_file,
        topic,
        [
            whole("a", b"file a"),
            whole("a/b", b"file a/b"),
            whole("c/d", b"file c/d"),
            whole("c", b"file c"),
            whole("e/f", b"file e/f"),
            GOOD,
        ],
    )
    status, log = download(out, config_file, topic)
    assert (out / "a").read_bytes() == b"file a" and (out / "c" / "d").read_bytes() == b"file c/d"
    assert (out / "e").read_text() == "the lab's own file"
    assert "retry_in" not in log  # not mistaken for a full disk
    assert_went_on(out, config_file, topic, status, log)


def test_impossible_offsets_and_layouts_fail_alone(tmp_path: Path, config_file: Path, topic: str) -> None:
    n = 2**32 - 1
    near_2_62 = _raw(
        b"huge.bin", size=(n - 1) * 2**30 + 3, offset=(n - 1) * 2**30, index=n - 1, n=n, chunk_size=2**30
    )
    mixed = [
        _raw(b"mixed.bin", size=4096, offset=0, index=0, n=4, chunk_size=1024, payload=b"\0" * 1024),
        _raw(b"mixed.bin", size=4096, offset=2048, index=1, n=2, chunk_size=2048, payload=b"\0" * 2048),
    ]
    produce_raw(
        config_file,
        topic,
        [
            omsi(b"x" * 100, 1, 2, 2**64 - 1),
            omsi(b"x" * 100, 2, 2, 2**62, b"f62.bin"),
            omsi(b"x" * 100, 2, 2, 2**40, b"f40.bin"),
            (b"huge.bin", near_2_62),
            *[(b"mixed.bin", value) for value in mixed],
            GOOD,
        ],
    )
    out = tmp_path / "out"
    status, log = download(out, config_file, topic)
    # The offset 2^64 - 1 no file can have is refused by the decoder (a rejected message);
    # the other four fail their file alone.
    assert "; 4 failed, 1 message(s) rejected" in log, log
    assert_went_on(out, config_file, topic, status, log)


def test_files_that_never_complete_are_given_up_and_release_the_offsets(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    never = []
    for i in range(40):
        content = bytes(3000)
        sha = hashlib.sha256(content + bytes([i])).digest()
        never.append((b"n", encode(Chunk(f"never/{i}.bin", 3000, sha, 0, 3, 1024, content[:1024]))))
    produce_raw(config_file, topic, [*never, GOOD])
    out = tmp_path / "out"
    done = labstream(
        "download", out, "--config", config_file, "--topic", topic, "--exit-when-idle", "5",
        "--max-incomplete-files", "10", "--incomplete-timeout", "1",
        check=False,
    )  # fmt: skip
    log = done.stdout + done.stderr
    assert log.count("more than 10 files incomplete") == 30
    assert log.count("no new chunk for 1 s") == 10
    assert not list((out / ".labstream").rglob("*.part"))
    assert_went_on(out, config_file, topic, done.returncode, log)


def test_hostile_names_are_refused_and_cannot_forge_log_lines(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    names = [
        "evil\u2028FORGED level=CRITICAL.txt",
        "evil\x85FORGED.txt",
        "\x9b2Jclear.txt",
        "invoice\u202etxt.exe",
        ".LabStream/ledger.sqlite",
        ".labstream./x",
    ]
    produce_raw(config_file, topic, [(b"k", _raw(name.encode())) for name in names] + [GOOD])
    out = tmp_path / "out"
    status, log = download(out, config_file, topic)
    assert log.count("message rejected") == len(names)
    assert not any(c in log for c in "\x85\x9b\u2028\u202e\x1b")
    assert "FORGED" not in "".join(line[:8] for line in log.splitlines())  # never a line of its own
    assert sorted(p.name for p in out.iterdir()) == [".labstream", "good.txt"]
    assert status == 2 and (out / "good.txt").read_bytes() == b"ok"


def test_unwritable_output_folder_is_one_clear_line(tmp_path: Path, config_file: Path, topic: str) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "noop.py").write_text("class Noop:\n    def process(self, file):\n        pass\n")
    commands = [
        ["download", tmp_path / "a-file" / "out"],
        ["process", f"{tmp_path / 'noop.py'}:Noop", "--workdir", tmp_path / "a-file" / "work"],
    ]
    for command in commands:
        done = labstream(
            *command, "--config", config_file, "--topic", topic, "--exit-when-idle", "1", check=False
        )
        assert done.returncode == 1, done.stderr
        assert "cannot write the output folder" in done.stderr and "Traceback" not in done.stderr
        assert done.stderr.count("Error:") == 1, done.stderr


def test_watcher_fails_only_a_local_file_whose_name_no_receiver_accepts(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    watcher = Watcher(root, config_file, topic, tmp_path / "state")
    (root / "invoice\u202etxt.exe").write_bytes(b"spoofed name")
    (root / "fine.txt").write_bytes(b"fine")
    wait_for(lambda: watcher.statuses().get("fine.txt") == "sent")
    wait_for(lambda: watcher.statuses().get("invoice\u202etxt.exe") == "failed")
    assert watcher.proc.poll() is None  # still watching
    assert watcher.stop() == 0
    assert "\u202e" not in watcher.text() and "invisible characters" in watcher.text()


def test_incomplete_files_that_fill_the_disk_expire_and_the_stream_goes_on(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    mount = tmp_path / "small-disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        size = 3 * 65536
        first = bytes(65536)
        never = [encode(Chunk(f"fill/{i}.bin", size, bytes([i]) * 32, 0, 3, 65536, first)) for i in range(24)]
        produce_raw(config_file, topic, [(b"fill", value) for value in never] + [GOOD])
        out = mount / "out"
        done = labstream(
            "download", out, "--config", config_file, "--topic", topic, "--exit-when-idle", "5",
            "--incomplete-timeout", "2",
            check=False, timeout=150,
        )  # fmt: skip
        log = done.stdout + done.stderr
        assert "No space left on device" in log and "no new chunk for 2 s" in log
        assert_went_on(out, config_file, topic, done.returncode, log)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
