"""Which name a received file takes (labstream.download.owners): never another source's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from labstream.download import owners as owners_module
from labstream.download.ledger import Ledger
from labstream.download.owners import BY_SOURCE, Owners, beside_name


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "out" / ".labstream" / "ledger.sqlite") as ledger:
        yield ledger


def test_beside_names_keep_the_extension_and_fit_a_name_part() -> None:
    assert beside_name("run1/sample.dat", "pc-sem") == "run1/sample.from-pc-sem.dat"
    assert beside_name("data.tar.gz", "a", 2) == "data.tar.from-a-2.gz"
    assert beside_name(".hidden", "a") == ".hidden.from-a"
    assert beside_name("README", "") == "README.from-unnamed"
    long = beside_name("x" * 255 + ".dat", "s" * 100)
    assert len(long.encode()) <= 255 and long.endswith(".from-" + "s" * 100 + ".dat")


def test_the_first_source_keeps_the_path_the_second_goes_beside_and_each_keeps_its_name(
    tmp_path: Path, ledger: Ledger
) -> None:
    owners = Owners(tmp_path / "out", ledger)
    assert owners.resolve("xrd", "run/a.dat") == ("run/a.dat", None)
    stored, avoided = owners.resolve("sem", "run/a.dat")  # still pending: seen all the same
    assert (stored, avoided) == ("run/a.from-sem.dat", ("xrd", "run/a.dat"))
    owners.committed(["run/a.dat", "run/a.from-sem.dat"])
    again = Owners(tmp_path / "out", ledger)  # a restart: the ledger remembers
    assert again.resolve("xrd", "run/a.dat") == ("run/a.dat", None)
    assert again.resolve("sem", "run/a.dat")[0] == "run/a.from-sem.dat"


def test_a_real_file_named_like_a_beside_copy_is_not_taken_for_it(tmp_path: Path, ledger: Ledger) -> None:
    owners = Owners(tmp_path / "out", ledger)
    owners.resolve("xrd", "a.dat")
    assert owners.resolve("sem", "a.dat")[0] == "a.from-sem.dat"
    # sem also has a file really called a.from-sem.dat: it must not share a name with the copy
    assert owners.resolve("sem", "a.from-sem.dat")[0] == "a.from-sem.from-sem.dat"


def test_a_file_in_the_folder_that_no_ledger_claims_belongs_to_no_source(
    tmp_path: Path, ledger: Ledger
) -> None:
    (tmp_path / "out" / "old.dat").write_bytes(b"copied in, or from a lost ledger")
    owners = Owners(tmp_path / "out", ledger)
    assert owners.resolve("xrd", "old.dat") == ("old.from-xrd.dat", ("", "old.dat"))
    assert owners.resolve("", "old.dat") == ("old.dat", None)  # a sender without a source


def test_by_source_files_each_source_below_its_name(tmp_path: Path, ledger: Ledger) -> None:
    owners = Owners(tmp_path / "out", ledger, BY_SOURCE)
    assert owners.resolve("xrd", "run/a.dat") == ("xrd/run/a.dat", None)
    assert owners.resolve("", "run/a.dat") == ("run/a.dat", None)
    assert owners.resolve("", "xrd/run/a.dat")[0] == "xrd/run/a.from-unnamed.dat"


def test_a_released_claim_frees_the_name(tmp_path: Path, ledger: Ledger) -> None:
    owners = Owners(tmp_path / "out", ledger)
    owners.resolve("xrd", "a.dat")
    owners.release("a.dat", ("xrd", "a.dat"))
    assert owners.resolve("sem", "a.dat") == ("a.dat", None)


def test_on_a_case_insensitive_folder_names_differing_in_case_are_one_name(
    tmp_path: Path, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(owners_module, "_case_insensitive", lambda _folder: True)
    owners = Owners(tmp_path / "out", ledger)
    assert owners.resolve("xrd", "Run1/A.dat") == ("Run1/A.dat", None)
    assert owners.resolve("sem", "run1/a.dat")[0] == "run1/a.from-sem.dat"  # would overwrite on NTFS


def test_the_probe_tells_this_filesystem_apart(tmp_path: Path) -> None:
    assert owners_module._case_insensitive(tmp_path / "out") is False  # Linux tmp: case-sensitive
    assert not list((tmp_path / "out" / ".labstream").iterdir())  # the probe leaves nothing


def test_the_per_chunk_and_per_file_lookups_use_an_index_not_a_scan(ledger: Ledger) -> None:
    """newest_version runs per chunk with a key, copies per file: a scan would cost O(ledger)."""
    from labstream.download import ledger as ledger_module

    plans = [
        ledger._db.execute("EXPLAIN QUERY PLAN " + ledger_module._NEWEST, ("p", "s", "p", "s")).fetchall(),
        ledger._db.execute(
            "EXPLAIN QUERY PLAN SELECT path, status FROM files"
            " WHERE sha256 = ? AND size = ? AND (path = ? OR sent_path = ?)",
            ("a", 1, "p", "p"),
        ).fetchall(),
        ledger._db.execute(
            "EXPLAIN QUERY PLAN SELECT source FROM owners WHERE stored = ?", ("p",)
        ).fetchall(),
    ]
    for plan in plans:
        details = [row[3] for row in plan]
        assert not any(d.startswith("SCAN files") or d.startswith("SCAN owners") for d in details), details
        assert any("USING" in d for d in details), details
