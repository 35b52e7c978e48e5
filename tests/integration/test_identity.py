"""One identity per send: instruments sharing a topic never overwrite each other, and every
outcome reaches the instrument that sent the file (issue 30), on the real broker."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
from pathlib import Path

import pytest

from .conftest import labstream
from .receiptkeys import make_keys, signing, trusting
from .test_receipts import category, download, status
from .watchproc import Watcher, start_download, wait_for


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    return make_keys(tmp_path / "keys")


def archived(out: Path) -> dict[str, bytes]:
    """Every file below `out` (its state folder left out), by relative path."""
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in out.rglob("*")
        if p.is_file() and ".labstream" not in p.relative_to(out).parts
    }


def test_two_instruments_same_path_both_archived_each_deleted_for_its_own_bytes(
    tmp_path: Path, config_file: Path, topic: str, keys: Path
) -> None:
    xrd, sem = tmp_path / "xrd", tmp_path / "sem"
    contents = {"xrd": os.urandom(300_000), "sem": os.urandom(200_000)}
    watchers = {}
    for name, root in (("xrd", xrd), ("sem", sem)):
        (root / "run1").mkdir(parents=True)
        watchers[name] = Watcher(
            root,
            config_file,
            topic,
            tmp_path / f"state-{name}",
            "--source",
            f"pc-{name}",
            "--delete-after-verified",
            "1",
            "--chunk-size",
            "65536",
            *trusting(keys),
        )
    for name, root in (("xrd", xrd), ("sem", sem)):
        (root / "run1" / "sample.dat").write_bytes(contents[name])
    for watcher in watchers.values():
        wait_for(lambda w=watcher: w.statuses().get("run1/sample.dat") == "sent")
    out = tmp_path / "out"
    done = download(out, config_file, topic, *signing(keys))
    assert done.returncode == 0, done.stderr
    files = archived(out)
    # Both contents are in the archive, each once; neither replaced the other.
    assert sorted(files.values()) == sorted(contents.values()), sorted(files)
    assert len(files) == 2 and "run1/sample.dat" in files
    assert done.stderr.count("name conflict") == 1  # the operator is told once
    for name, root in (("xrd", xrd), ("sem", sem)):
        wait_for(lambda r=root: not (r / "run1" / "sample.dat").exists(), timeout=30)
        assert contents[name] in files.values()  # deleted only because its own bytes are kept
        assert watchers[name].stop() == 0


def test_a_conflicting_file_is_kept_beside_and_its_receipt_says_where(
    tmp_path: Path, config_file: Path, topic: str, keys: Path
) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_bytes(b"from the first instrument")
    b.write_bytes(b"from the second instrument")
    for source, path in (("first", a), ("second", b)):
        folder = tmp_path / source
        folder.mkdir()
        (folder / "same.txt").write_bytes(path.read_bytes())
        labstream("upload", folder, "-c", config_file, "-t", topic, "--source", source)
    out = tmp_path / "out"
    assert download(out, config_file, topic, *signing(keys)).returncode == 0
    assert (out / "same.txt").read_bytes() == a.read_bytes()
    assert (out / "same.from-second.txt").read_bytes() == b.read_bytes()
    # Sent again, a newer version of the second source's file replaces only its own copy.
    (tmp_path / "second" / "same.txt").write_bytes(b"second, version 2")
    labstream("upload", tmp_path / "second", "-c", config_file, "-t", topic, "--source", "second")
    assert download(out, config_file, topic, *signing(keys)).returncode == 0
    assert (out / "same.txt").read_bytes() == a.read_bytes()
    assert (out / "same.from-second.txt").read_bytes() == b"second, version 2"


def test_by_source_placement_files_each_source_in_its_folder(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    for source in ("xrd-1", "sem-2"):
        folder = tmp_path / source
        (folder / "run").mkdir(parents=True)
        (folder / "run" / "x.dat").write_text(source)
        labstream("upload", folder, "-c", config_file, "-t", topic, "--source", source)
    out = tmp_path / "out"
    done = labstream(
        "download", out, "-c", config_file, "-t", topic, "--exit-when-idle", "4", "--placement", "by-source"
    )
    assert archived(out) == {"xrd-1/run/x.dat": b"xrd-1", "sem-2/run/x.dat": b"sem-2"}, done.stderr


def test_a_downloader_already_running_cleans_up_the_source(
    tmp_path: Path, config_file: Path, topic: str, keys: Path
) -> None:
    """The receipt may arrive before the watcher records its send: the clean-up still happens."""
    root, state, out = tmp_path / "instrument", tmp_path / "state", tmp_path / "out"
    root.mkdir()
    log = tmp_path / "download.log"
    # Stopped once the sources are gone (each was verified downstream first), rather than
    # left to notice 25 s of quiet.
    downloader = start_download(out, config_file, topic, log, *signing(keys))
    watcher = Watcher(root, config_file, topic, state, "--delete-after-verified", "1", *trusting(keys))
    try:
        for i in range(5):
            (root / f"m{i}.dat").write_bytes(os.urandom(50_000))
        wait_for(lambda: not any(root.glob("m*.dat")), timeout=45)
        assert set(watcher.statuses().values()) == {"deleted"}
    finally:
        watcher.stop()
        downloader.send_signal(signal.SIGTERM)
        downloader.wait(60)
    assert downloader.returncode == 0, log.read_text()[-2000:]
    assert sorted(p.name for p in out.glob("m*.dat")) == [f"m{i}.dat" for i in range(5)]


@pytest.mark.parametrize("refusal", ["wrong key", "max file size"])
def test_a_refusing_group_reaches_the_watcher_as_one_failure_per_file(
    tmp_path: Path, config_file: Path, topic: str, keys: Path, refusal: str
) -> None:
    root, state = tmp_path / "instrument", tmp_path / "state"
    root.mkdir()
    sender_key, other_key = tmp_path / "send.key", tmp_path / "other.key"
    labstream("keygen", sender_key)
    labstream("keygen", other_key)
    watcher = Watcher(
        root,
        config_file,
        topic,
        state,
        "--encryption-key-file",
        sender_key,
        "--chunk-size",
        "65536",
        *trusting(keys),
    )
    for i in range(3):
        (root / f"f{i}.bin").write_bytes(os.urandom(300_000))  # 5 chunks each
    wait_for(lambda: watcher.statuses() == {f"f{i}.bin": "sent" for i in range(3)})
    extra = (
        ("--encryption-key-file", other_key)
        if refusal == "wrong key"
        else (
            "--encryption-key-file",
            sender_key,
            "--max-file-size",
            "1000",
        )
    )
    refuser = f"refuser-{topic}"  # a group of its own: the other refusal may run beside this one
    done = download(tmp_path / "out", config_file, topic, "--group", refuser, *signing(keys), *extra)
    assert done.returncode == 2
    assert "3 failed" in done.stdout + done.stderr, done.stdout + done.stderr  # files, not chunks
    wait_for(
        lambda: all(
            category(status(state, "--no-refresh"), f"f{i}.bin") == "failed downstream" for i in range(3)
        ),
        timeout=30,
    )
    assert watcher.stop() == 0
    report = status(state, "--no-refresh")
    for entry in report["files"]:  # type: ignore[union-attr]
        assert list(entry["failed_downstream"]) == [refuser]
        reason = entry["failed_downstream"][refuser]
        assert ("cannot decrypt" in reason) if refusal == "wrong key" else ("over the limit" in reason)
    text = labstream("status", "--state", state, "--no-refresh").stdout
    assert text.count(f"failed downstream by {refuser}") == 3


def test_twenty_sources_on_one_topic_nothing_replaced(tmp_path: Path, config_file: Path, topic: str) -> None:
    sent: dict[str, bytes] = {}

    def instrument(n: int) -> None:
        folder = tmp_path / f"pc{n}"
        (folder / "run").mkdir(parents=True)
        name = "shared.dat" if n < 2 else f"own-{n}.dat"  # two of them share a path
        data = os.urandom(20_000 + n)
        (folder / "run" / name).write_bytes(data)
        sent[f"pc{n}"] = data
        labstream("upload", folder, "-c", config_file, "-t", topic, "--source", f"pc{n}")

    threads = [threading.Thread(target=instrument, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out = tmp_path / "out"
    done = labstream("download", out, "-c", config_file, "-t", topic, "--exit-when-idle", "5")
    files = archived(out)
    assert len(files) == 20, (sorted(files), done.stderr)
    assert sorted(hashlib.sha256(b).hexdigest() for b in files.values()) == sorted(
        hashlib.sha256(b).hexdigest() for b in sent.values()
    )
    listing = labstream("ls", topic, "-c", config_file, "--json").stdout.splitlines()
    rows = [json.loads(line) for line in listing]
    assert sorted(row["source"] for row in rows) == sorted(f"pc{n}" for n in range(20))
    assert all(row["state"] == "complete" for row in rows)


def test_resend_sends_under_the_watchers_source_and_its_receipt_cleans_up(
    tmp_path: Path, config_file: Path, topic: str, keys: Path
) -> None:
    root, state, out = tmp_path / "instrument", tmp_path / "state", tmp_path / "out"
    root.mkdir()
    watcher = Watcher(root, config_file, topic, state, "--source", "pc-xrd", *trusting(keys))
    (root / "run.dat").write_bytes(b"first")
    wait_for(lambda: watcher.statuses().get("run.dat") == "sent")
    assert watcher.stop() == 0
    assert download(out, config_file, topic, *signing(keys)).returncode == 0
    (root / "run.dat").write_bytes(b"second, corrected by hand")
    labstream("resend", root / "run.dat", "--state", state)
    assert download(out, config_file, topic, *signing(keys)).returncode == 0
    # The same instrument's newer version replaces its own file; nothing is kept beside it.
    assert archived(out) == {"run.dat": b"second, corrected by hand"}
    wait_for(lambda: category(status(state), "run.dat") == "verified", timeout=30)
