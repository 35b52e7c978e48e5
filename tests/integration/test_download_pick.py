"""`labstream download`: the per-folder default group, --include/--exclude, where a new group
starts, and the explanation of a run that gets nothing. Real broker, the real CLI."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from pathlib import Path

from labstream.config import load_config
from labstream.settings import download_group
from labstream.wire import encode
from labstream.wire.v2 import aborted_trailer

from ..unit.test_wire_v2 import v2_chunks_of
from .conftest import labstream
from .test_bad_input import produce_raw


def send(config_file: Path, topic: str, folder: Path, files: dict[str, bytes]) -> None:
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    labstream("upload", folder, "-t", topic, "-c", config_file)


def download(config_file: Path, topic: str, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return labstream("download", out, "-t", topic, "-c", config_file, "--exit-when-idle", "3", *args)


def received(out: Path) -> set[str]:
    return {
        p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and ".labstream" not in p.parts
    }


def test_each_output_folder_gets_everything_and_a_caught_up_folder_says_why_it_got_nothing(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    send(config_file, topic, tmp_path / "src", {"a.bin": os.urandom(3000), "b.bin": b"b"})
    first, second = tmp_path / "first", tmp_path / "second"
    assert "downloaded 2 verified file(s)" in download(config_file, topic, first).stdout
    # Another folder without -g: a group of its own, so it receives everything too.
    assert "downloaded 2 verified file(s)" in download(config_file, topic, second).stdout
    assert received(first) == received(second) == {"a.bin", "b.bin"}
    again = download(config_file, topic, first)
    assert "downloaded 0 verified file(s)" in again.stdout
    group = download_group(load_config(str(config_file)), None, first)
    assert f"group {group} has already read topic {topic} to its end" in again.stderr
    assert "another output folder" in again.stderr and "-g NEW --from-beginning" in again.stderr


def test_a_new_group_that_read_only_an_aborted_send_says_so_not_that_it_had_read_the_topic(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    chunks = v2_chunks_of("run1/moving.dat", os.urandom(5000), 1024)
    trailer = aborted_trailer("run1/moving.dat", 5000, 1024, chunks[0].file_id, 1)
    produce_raw(config_file, topic, [(c.path.encode(), encode(c)) for c in [*chunks[:3], trailer]])
    done = download(config_file, topic, tmp_path / "out")
    assert "downloaded 0 verified file(s)" in done.stdout and "already read" not in done.stderr
    (line,) = [line for line in done.stderr.splitlines() if "no new file" in line]
    assert line.endswith(
        f"no new file: read 4 message(s) of topic {topic} and wrote nothing: 1 send(s) in them "
        "were aborted by their sender (the file changed while it was sent; a watcher sends it "
        "again once it has settled)"
    )


def test_group_id_in_the_config_still_wins(tmp_path: Path, config_file: Path, topic: str) -> None:
    config_file.write_text(config_file.read_text() + f"group.id = shared-{topic}\n")
    send(config_file, topic, tmp_path / "src", {"a.bin": b"a"})
    assert "downloaded 1 verified file(s)" in download(config_file, topic, tmp_path / "one").stdout
    # The same group from another folder: already read, nothing new.
    other = download(config_file, topic, tmp_path / "two")
    assert "downloaded 0 verified file(s)" in other.stdout
    assert f"group shared-{topic} has already read" in other.stderr


def test_include_and_exclude_rebuild_a_subset_and_the_skipped_chunks_move_the_offsets(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    files = {"run1/a.raw": os.urandom(5000), "run1/notes.txt": b"x" * 4000, "run2/c.raw": b"c" * 2000}
    send(config_file, topic, tmp_path / "src", files)
    out = tmp_path / "out"
    done = download(config_file, topic, out, "--include", "*.raw", "--exclude", "run2/*")
    assert "downloaded 1 verified file(s)" in done.stdout and "0 failed" in done.stdout
    assert received(out) == {"run1/a.raw"}
    assert (out / "run1" / "a.raw").read_bytes() == files["run1/a.raw"]
    # Nothing of the skipped files was written anywhere, not even as a partial file.
    assert not any("notes" in p.name or p.name.startswith("c.raw") for p in out.rglob("*"))
    # Their offsets moved: the same folder (group) resumes at the end.
    again = download(config_file, topic, out)
    assert "downloaded 0 verified file(s)" in again.stdout and "already read topic" in again.stderr
    # A filter that leaves everything out is named as a possible reason.
    none = download(config_file, topic, tmp_path / "none", "--include", "*.nothing")
    assert "downloaded 0 verified file(s)" in none.stdout and "--include/--exclude" in none.stderr


def test_from_time_starts_a_new_group_there_and_a_group_with_offsets_resumes(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    send(config_file, topic, tmp_path / "old", {"old.bin": b"old"})
    between = datetime.datetime.now().astimezone().isoformat()
    send(config_file, topic, tmp_path / "new", {"new.bin": b"new"})
    fresh = tmp_path / "fresh"
    done = download(config_file, topic, fresh, "--from", between)
    assert "downloaded 1 verified file(s)" in done.stdout and received(fresh) == {"new.bin"}
    everything = tmp_path / "everything"
    assert "downloaded 2 verified file(s)" in download(config_file, topic, everything).stdout
    # That group has committed offsets: --from-beginning does not rewind it.
    resumed = download(config_file, topic, everything, "--from-beginning")
    assert "downloaded 0 verified file(s)" in resumed.stdout


def test_from_end_receives_only_files_sent_after_it_joined(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    send(config_file, topic, tmp_path / "before", {"before.bin": b"before"})
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "labstream", "-v", "download", out, "-t", topic, "-c", config_file,
         "--from-end", "--exit-when-idle", "15"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "partitions assigned" in line:
                break
        send(config_file, topic, tmp_path / "after", {"after.bin": b"after"})
        out_text, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "downloaded 1 verified file(s)" in out_text
    assert received(out) == {"after.bin"}


def test_only_one_start_may_be_given(tmp_path: Path, config_file: Path, topic: str) -> None:
    done = labstream(
        "download", tmp_path, "-t", topic, "-c", config_file, "--from-end", "--from", "6h", check=False
    )
    assert done.returncode == 1
    assert "at most one of --from-beginning, --from TIME and --from-end" in done.stderr
