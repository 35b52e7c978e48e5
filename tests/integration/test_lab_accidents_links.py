"""Lab accidents, links and names: what labs and careless or hostile users put in a watched
folder (issue 24). Real broker; every file that reaches the topic is read back.

Each test names one class: links leading outside (files, folders, loops, a file swapped for a
link mid-send), --follow-links, names that are not UTF-8, long and Windows-reserved names,
special files named on the command line, temporary names renamed into place.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from labstream.config import load_config
from labstream.kafka import Consumer, consumer_settings
from labstream.wire import decode

from .conftest import labstream
from .test_roundtrip import tree
from .watchproc import Watcher, chunk_counts, wait_for

SECRET = b"TOP-SECRET-0600 " * 64  # a marker no file of the tests contains by chance
FAST_RESCAN = ("--rescan-seconds", "1")


def folders(tmp_path: Path) -> tuple[Path, Path]:
    """The watched folder, and a folder beside it with a 0600 file nobody meant to send."""
    root, outside = tmp_path / "instrument", tmp_path / "private"
    root.mkdir()
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_bytes(SECRET)
    secret.chmod(0o600)
    return root, outside


def payloads(config: Path, topic: str) -> bytes:
    """Every chunk's bytes in the topic, joined (wire v2, not encrypted: plain)."""
    data = []
    settings = consumer_settings(load_config(config), f"payloads-{time.monotonic_ns()}")
    with Consumer(settings, [topic]) as consumer:
        last = time.monotonic()
        while time.monotonic() - last < 4.0:
            records = consumer.consume(500, 0.5)
            if records:
                last = time.monotonic()
            data.extend(decode(record.value).data for record in records)
    return b"".join(data)


def upload(*args: str | os.PathLike[str], check: bool = True) -> tuple[int, str]:
    done = labstream("upload", *args, check=check, timeout=120)
    return done.returncode, done.stdout + done.stderr


def status_rows(state: Path) -> dict[str, dict[str, str]]:
    done = labstream("status", "--state", state, "--no-refresh", "--json")
    return {row["path"]: row for row in json.loads(done.stdout)["files"]}


def test_watch_skips_links_to_files_outside_with_one_line_each(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    root, outside = folders(tmp_path)
    watcher = Watcher(root, config_file, topic, tmp_path / "state", *FAST_RESCAN)
    (root / "leak.txt").symlink_to(outside / "secret.txt")
    (root / "host").symlink_to("/etc/hostname")
    (root / "good.txt").write_text("good")
    wait_for(lambda: watcher.statuses().get("good.txt") == "sent")
    time.sleep(4)  # several rescans: a skipped link is reported once, not on each
    assert watcher.stop() == 0
    text = watcher.text()
    assert text.count("skipped file=leak.txt reason=a symbolic link, not followed") == 1, text
    assert text.count("skipped file=host reason=a symbolic link, not followed") == 1, text
    assert set(chunk_counts(config_file, topic)) == {"good.txt"}
    assert SECRET not in payloads(config_file, topic)
    rows = status_rows(tmp_path / "state")
    assert rows["leak.txt"]["state"] == "skipped" and "symbolic link" in rows["leak.txt"]["reason"]


def test_upload_folder_skips_links_to_files_outside_with_one_line_each(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    root, outside = folders(tmp_path)
    (root / "good.txt").write_text("good")
    (root / "sub").mkdir()
    (root / "sub" / "leak.txt").symlink_to(outside / "secret.txt")
    (root / "host").symlink_to("/etc/hostname")
    code, out = upload(root, "--config", config_file, "--topic", topic)
    assert code == 0 and "uploaded 1 file(s)" in out, out
    assert out.count("skipped file=sub/leak.txt") == 1 and out.count("skipped file=host") == 1, out
    assert set(chunk_counts(config_file, topic)) == {"good.txt"}
    assert SECRET not in payloads(config_file, topic)


def test_links_to_folders_outside_are_not_entered(tmp_path: Path, config_file: Path, topic: str) -> None:
    root, outside = folders(tmp_path)
    (root / "data").symlink_to(outside, target_is_directory=True)
    watcher = Watcher(root, config_file, topic, tmp_path / "state", *FAST_RESCAN)
    (outside / "new.txt").write_bytes(SECRET)  # written through the link's target after the start
    (root / "data" / "through-link.txt").write_bytes(SECRET)
    (root / "good.txt").write_text("good")
    wait_for(lambda: watcher.statuses().get("good.txt") == "sent")
    time.sleep(4)
    assert watcher.stop() == 0
    assert watcher.text().count("skipped file=data reason=a symbolic link, not followed") == 1
    code, out = upload(root, "--config", config_file, "--topic", topic)
    assert code == 0 and out.count("skipped file=data") == 1, out
    assert set(chunk_counts(config_file, topic)) == {"good.txt"}
    assert SECRET not in payloads(config_file, topic)


def test_link_loops_are_reported_once_and_never_stall_the_others(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    root, _ = folders(tmp_path)
    (root / "self").symlink_to("self")
    (root / "ping").symlink_to("pong")
    (root / "pong").symlink_to("ping")
    (root / "sub").mkdir()
    (root / "sub" / "up").symlink_to("..", target_is_directory=True)
    watcher = Watcher(root, config_file, topic, tmp_path / "state", *FAST_RESCAN)
    for i in range(20):
        (root / "sub" / f"f{i}.txt").write_text(f"file {i}")
    wait_for(lambda: list(watcher.statuses().values()).count("sent") == 20)
    time.sleep(4)
    assert watcher.stop() == 0
    text = watcher.text()
    for name in ("self", "ping", "pong", "sub/up"):
        assert text.count(f"skipped file={name} reason=") == 1, text
    assert "cannot look at file" not in text and "Traceback" not in text
    assert set(chunk_counts(config_file, topic)) == {f"sub/f{i}.txt" for i in range(20)}


def test_a_file_swapped_for_a_link_while_it_is_sent_never_leaks(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    root, outside = folders(tmp_path)
    watcher = Watcher(
        root,
        config_file,
        topic,
        tmp_path / "state",
        *FAST_RESCAN,
        "--chunk-size",
        "65536",
        "--max-rate",
        "1MiB/s",
    )
    (root / "big.bin").write_bytes(os.urandom(6 * 1024 * 1024))  # 6 s at the rate limit
    wait_for(lambda: watcher.statuses().get("big.bin") == "sending", every=0.05)
    time.sleep(1.0)
    swap = tmp_path / "swap"
    swap.symlink_to(outside / "secret.txt")
    os.replace(swap, root / "big.bin")  # atomically: the name now leads outside
    (root / "after.txt").write_text("after")
    wait_for(lambda: watcher.statuses().get("after.txt") == "sent")
    wait_for(lambda: watcher.statuses().get("big.bin") not in ("queued", "sending"))
    time.sleep(4)  # rescans and a settle time: long enough to send what the link leads to
    assert watcher.stop() == 0
    assert SECRET not in payloads(config_file, topic)
    assert watcher.statuses()["big.bin"] == "skipped"
    assert watcher.text().count("skipped file=big.bin reason=a symbolic link, not followed") == 1


def test_follow_links_sends_links_inside_and_refuses_those_leading_outside(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    root, outside = folders(tmp_path)
    watcher = Watcher(root, config_file, topic, tmp_path / "state", *FAST_RESCAN, "--follow-links")
    (root / "run").mkdir()
    (root / "run" / "data.dat").write_bytes(b"measured")
    (root / "latest.dat").symlink_to(Path("run") / "data.dat")
    (root / "leak.txt").symlink_to(outside / "secret.txt")
    (root / "absolute-leak").symlink_to("/etc/hostname")
    (root / "loop").symlink_to("loop")
    (root / "private").symlink_to(outside, target_is_directory=True)
    wait_for(lambda: watcher.statuses().get("latest.dat") == "sent")
    wait_for(lambda: watcher.statuses().get("run/data.dat") == "sent")
    time.sleep(3)
    assert watcher.stop() == 0
    text = watcher.text()
    for name in ("leak.txt", "absolute-leak", "private"):
        assert text.count(f"skipped file={name} reason=a symbolic link to outside the folder") == 1, text
    assert text.count("skipped file=loop reason=a symbolic link that is broken or part of a loop") == 1
    assert set(chunk_counts(config_file, topic)) == {"latest.dat", "run/data.dat"}
    out = tmp_path / "out"
    labstream("download", out, "--config", config_file, "--topic", topic, "--exit-when-idle", "4")
    assert (out / "latest.dat").read_bytes() == b"measured"
    assert SECRET not in payloads(config_file, topic)


def test_follow_links_from_the_config_file_for_upload(tmp_path: Path, config_file: Path, topic: str) -> None:
    root, outside = folders(tmp_path)
    (root / "data.dat").write_bytes(b"measured")
    (root / "latest.dat").symlink_to("data.dat")
    (root / "leak.txt").symlink_to(outside / "secret.txt")
    config = tmp_path / "follow.config"
    config.write_text(config_file.read_text() + "\n[labstream]\nfollow_links = yes\n")
    code, out = upload(root, "--config", config, "--topic", topic)
    assert code == 0 and "uploaded 2 file(s)" in out, out
    assert out.count("skipped file=leak.txt reason=a symbolic link to outside the folder") == 1, out
    assert set(chunk_counts(config_file, topic)) == {"data.dat", "latest.dat"}


def test_a_name_that_is_not_utf8_never_stalls_the_others(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    root, _ = folders(tmp_path)
    watcher = Watcher(root, config_file, topic, tmp_path / "state", *FAST_RESCAN)
    with open(os.fsencode(root) + b"/caf\xe9.dat", "wb") as handle:  # latin-1, as old instruments write
        handle.write(b"latin-1 name")
    time.sleep(2)
    for i in range(30):
        (root / f"after{i}.txt").write_text(f"file {i}")
    wait_for(lambda: list(watcher.statuses().values()).count("sent") == 30)
    time.sleep(3)
    assert watcher.stop() == 0
    text = watcher.text()
    assert text.count("file not sent file=caf\\xe9.dat reason=file name is not valid UTF-8") == 1, text
    assert "Traceback" not in text and "Logging error" not in text
    row = status_rows(tmp_path / "state")["caf\\xe9.dat"]
    assert row["state"] == "failed" and row["reason"] == "file name is not valid UTF-8"
    code, out = upload(root, "--config", config_file, "--topic", topic, check=False)
    assert code == 1 and "1 file(s) not fully sent; first: caf\\xe9.dat: " in out, out
    assert "file name is not valid UTF-8" in out and "Traceback" not in out, out
    counts = chunk_counts(config_file, topic)
    assert set(counts) == {f"after{i}.txt" for i in range(30)} and all(n == 2 for n in counts.values())


def test_long_and_windows_reserved_names_never_stall_the_others(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    root, _ = folders(tmp_path)
    watcher = Watcher(root, config_file, topic, tmp_path / "state")
    names = ["é" * 127 + "x", "a" * 255, "CON", "NUL.txt", "aux.dat", "com1", "LPT9.log", "plain.txt"]
    for name in names:
        (root / name).write_text(name)
    wait_for(lambda: list(watcher.statuses().values()).count("sent") == len(names))
    assert watcher.stop() == 0
    out = tmp_path / "out"
    labstream("download", out, "--config", config_file, "--topic", topic, "--exit-when-idle", "4")
    assert tree(out) == tree(root)  # a Linux receiver writes them all; Windows refuses the reserved


def test_special_files_named_on_the_command_line_are_named_as_such(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    zero = tmp_path / "zero"
    zero.symlink_to("/dev/zero")
    for path, kind in ((fifo, "a FIFO"), (zero, "a device")):
        started = time.monotonic()
        code, out = upload(path, "--config", config_file, "--topic", topic, check=False)
        assert code == 1 and f"{path}: {kind}, not a regular file; nothing was sent" in out, out
        assert "Traceback" not in out and len(out.strip().splitlines()) == 1, out
        assert time.monotonic() - started < 60


def test_a_temporary_name_renamed_into_place_is_no_warning(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    root, _ = folders(tmp_path)
    watcher = Watcher(root, config_file, topic, tmp_path / "state", "--settle-seconds", "3")
    temporary = root / ".data.csv.Xa12Bc"  # how rsync writes: a hidden name, renamed when complete
    temporary.write_bytes(b"1,2,3\n" * 1000)
    time.sleep(1.0)  # seen, not yet settled
    os.replace(temporary, root / "data.csv")
    wait_for(lambda: watcher.statuses().get("data.csv") == "sent")
    assert watcher.stop() == 0
    assert "vanished" not in watcher.text(), watcher.text()
    assert chunk_counts(config_file, topic) == {"data.csv": 1}
