"""labstream.fileaccess: what below a folder may be read, decided and checked after the open.

The Windows cases (junctions, reparse points, device names) are decided by pure functions,
tested here with fabricated stat results on any OS.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from labstream.config import load_config
from labstream.errors import SourceFileError
from labstream.fileaccess import (
    Tree,
    _not_in_tree,
    entry_refusal,
    kind_of,
    link_kind,
    name_refusal,
    open_regular,
    refusal,
    walk,
)
from labstream.logsafe import shown
from labstream.settings import upload_settings, watch_settings

REPARSE = stat.FILE_ATTRIBUTE_REPARSE_POINT
REGULAR = SimpleNamespace(st_mode=stat.S_IFREG | 0o644)
FOLDER = SimpleNamespace(st_mode=stat.S_IFDIR | 0o755)
SYMLINK = SimpleNamespace(st_mode=stat.S_IFLNK | 0o777)


def windows(mode: int, tag: int, attributes: int = REPARSE) -> SimpleNamespace:
    """A Windows lstat result: reparse points keep their file type in st_mode."""
    return SimpleNamespace(st_mode=mode, st_file_attributes=attributes, st_reparse_tag=tag)


JUNCTION = windows(stat.S_IFDIR | 0o777, 0xA0000003)  # IO_REPARSE_TAG_MOUNT_POINT
WINDOWS_SYMLINK = windows(stat.S_IFREG | 0o777, 0xA000000C)  # IO_REPARSE_TAG_SYMLINK


@pytest.mark.parametrize(
    ("entry", "kind"),
    [
        (SYMLINK, "a symbolic link"),
        (JUNCTION, "a junction or other link (reparse point)"),
        (WINDOWS_SYMLINK, "a junction or other link (reparse point)"),
        (windows(stat.S_IFREG, 0), "a junction or other link (reparse point)"),  # tag unknown
        (windows(stat.S_IFREG, 0x9000701A), None),  # a OneDrive placeholder is the file itself
        (windows(stat.S_IFREG, 0x80000013), None),  # a deduplicated file too
        (windows(stat.S_IFREG, 0xA000000C, attributes=0x20), None),  # no reparse attribute
        (REGULAR, None),
        (FOLDER, None),
    ],
)
def test_link_kind_sees_symbolic_links_junctions_and_name_surrogate_reparse_points(
    entry: SimpleNamespace, kind: str | None
) -> None:
    assert link_kind(entry) == kind


def test_junctions_and_reparse_links_are_refused_like_symbolic_links() -> None:
    assert "not followed" in (refusal(JUNCTION, follow_links=False) or "")
    assert "not followed" in (refusal(WINDOWS_SYMLINK, follow_links=False) or "")
    outside = refusal(JUNCTION, follow_links=True, target=FOLDER, target_inside=False)
    assert outside == "a junction or other link (reparse point) to outside the folder, refused"
    inside_folder = refusal(JUNCTION, follow_links=True, target=FOLDER)
    assert inside_folder is not None and "to a folder, not followed" in inside_folder
    assert refusal(WINDOWS_SYMLINK, follow_links=True, target=REGULAR) is None


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        (stat.S_IFIFO, "a FIFO"),
        (stat.S_IFCHR, "a device"),
        (stat.S_IFBLK, "a device"),
        (stat.S_IFSOCK, "a socket"),
        (stat.S_IFDIR, "a folder"),
        (stat.S_IFREG, None),
    ],
)
def test_only_regular_files_are_read(mode: int, kind: str | None) -> None:
    assert kind_of(SimpleNamespace(st_mode=mode | 0o644)) == kind
    why = refusal(SimpleNamespace(st_mode=mode), follow_links=True)
    assert why == (None if kind is None else f"{kind}, not a regular file")


def test_followed_links_must_lead_to_a_regular_file_inside() -> None:
    fifo = SimpleNamespace(st_mode=stat.S_IFIFO)
    assert refusal(SYMLINK, follow_links=True, target=REGULAR) is None
    assert (
        refusal(SYMLINK, follow_links=True, target=None) == "a symbolic link that is broken or part of a loop"
    )
    assert refusal(SYMLINK, follow_links=True, target=fifo) == "a symbolic link to a FIFO, not a regular file"
    assert refusal(SYMLINK, follow_links=True, target=REGULAR, target_inside=False) == (
        "a symbolic link to outside the folder, refused"
    )


@pytest.mark.parametrize("name", ["CON", "nul.txt", "a/Aux.dat", "COM1", "lpt9.log", "x/conin$"])
def test_windows_device_names_are_refused_only_where_they_open_a_device(name: str) -> None:
    assert name_refusal(name, windows=False) is None
    assert "Windows device name refused" in (name_refusal(name, windows=True) or "")


def test_names_that_cannot_travel_are_refused_with_their_reason() -> None:
    latin1 = os.fsdecode(b"caf\xe9.dat")
    assert name_refusal(latin1) == "file name is not valid UTF-8"
    assert shown(latin1) == "caf\\xe9.dat"  # named by its bytes in every line
    assert "longer than 255 bytes" in (name_refusal("é" * 128) or "")
    assert name_refusal("é" * 127 + "x") is None  # 255 bytes: the longest a name may be
    assert "control or invisible" in (name_refusal("a\nb") or "")
    assert name_refusal("run 1/Größe.csv") is None


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    """instrument/ with a file, links out and in, a linked folder; private/secret beside it."""
    root, outside = tmp_path / "instrument", tmp_path / "private"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    (root / "data.txt").write_bytes(b"data")
    (root / "out").symlink_to(outside / "secret")
    (root / "in").symlink_to("data.txt")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (root / "sub" / "up").symlink_to("..", target_is_directory=True)
    (root / "loop").symlink_to("loop")
    return Tree(root)


def test_walk_lists_linked_folders_as_entries_and_never_enters_them(tree: Tree) -> None:
    found = {p.relative_to(tree.root).as_posix() for p in walk(tree.root)}
    assert found == {"data.txt", "out", "in", "linked", "sub/up", "loop"}


def test_open_regular_refuses_links_unless_followed_inside(tree: Tree) -> None:
    root = tree.root
    with open_regular(root / "data.txt", tree) as handle:
        assert handle.read() == b"data"
    for name in ("out", "in", "loop"):
        with pytest.raises(SourceFileError, match="a symbolic link, not followed"):
            open_regular(root / name, tree)
    with pytest.raises(SourceFileError, match="below a linked folder, not followed"):
        open_regular(root / "linked" / "secret", tree)
    follow = Tree(root, follow_links=True)
    with open_regular(root / "in", follow) as handle:
        assert handle.read() == b"data"
    for path in (root / "out", root / "linked" / "secret"):
        with pytest.raises(SourceFileError, match="a link to outside the folder, refused"):
            open_regular(path, follow)


def test_a_file_swapped_for_a_link_after_it_was_looked_at_is_not_read(tree: Tree, tmp_path: Path) -> None:
    path = tree.root / "data.txt"
    assert entry_refusal(path, tree) is None  # looked at: a regular file
    swap = tmp_path / "swap"
    swap.symlink_to(tmp_path / "private" / "secret")
    os.replace(swap, path)  # swapped before the open
    with pytest.raises(SourceFileError, match="not followed"):
        open_regular(path, tree)


def test_what_was_opened_is_checked_after_the_open(tree: Tree, tmp_path: Path) -> None:
    """A link followed to a file outside, then pointed inside before the check: the file
    opened is not the one inside, and that is what counts."""
    opened = os.stat(tmp_path / "private" / "secret")
    follow = Tree(tree.root, follow_links=True)
    assert _not_in_tree(tree.root / "in", opened, follow) == "replaced while it was opened, not read"
    assert _not_in_tree(tree.root / "in", os.stat(tree.root / "data.txt"), follow) is None


def test_special_files_are_refused_after_a_non_blocking_open(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # a blocking open would wait for a writer forever
    with pytest.raises(SourceFileError, match="a FIFO, not a regular file"):
        open_regular(fifo, None)
    zero = tmp_path / "zero"
    zero.symlink_to("/dev/zero")
    with pytest.raises(SourceFileError, match="a device, not a regular file"):
        open_regular(zero, None)  # named on the command line: followed, still not a file


def test_follow_links_from_the_file_and_the_command_line(tmp_path: Path) -> None:
    watched = {"file_directory": tmp_path / "w", "topic_name": "t", "state": tmp_path / "state"}
    watched["file_directory"].mkdir()
    config = tmp_path / "lab.config"
    config.write_text("[cluster]\nbootstrap.servers = 127.0.0.1:1\n[labstream]\nfollow_links = yes\n")
    assert watch_settings(load_config(config), watched).stream.follow_links
    assert upload_settings(load_config(config), {"topic": "t"}).follow_links
    assert not upload_settings(load_config(config), {"topic": "t", "follow_links": False}).follow_links
    plain = tmp_path / "plain.config"
    plain.write_text("[cluster]\nbootstrap.servers = 127.0.0.1:1\n")
    assert not watch_settings(load_config(plain), watched).stream.follow_links
