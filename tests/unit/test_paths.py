"""Path rules shared by sender and receiver, and escaping of untrusted text in logs."""

from __future__ import annotations

import unicodedata

import pytest

from labstream.errors import UnsafePathError
from labstream.logsafe import shown
from labstream.wire import check_relative_path
from labstream.wire.paths import check_windows_name


@pytest.mark.parametrize(
    "char",
    [
        "\x01",
        "\n",
        "\x1b",
        "\x7f",
        "\x85",  # NEL (C1)
        "\x9b",  # CSI (C1): starts an ANSI sequence on some terminals
        "\u061c",
        "\u200b",
        "\u200e",
        "\u200f",
        "\u2028",
        "\u2029",
        *(chr(c) for c in range(0x202A, 0x202F)),
        *(chr(c) for c in range(0x2066, 0x206A)),
        "\ufeff",
        "\U000e0041",  # tag letter
        "\udc80",  # lone surrogate (undecodable byte on the sender)
    ],
)
def test_invisible_and_line_breaking_characters_are_refused(char: str) -> None:
    with pytest.raises(UnsafePathError, match="control or invisible"):
        check_relative_path(f"run/evil{char}name.txt")


@pytest.mark.parametrize(
    "path",
    [
        "Messung/Größe ü.csv",
        "日本語/データ.tif",
        "\u0641\u0627\u0631\u0633\u06cc\u200c\u0647\u0627.txt",
        "👩\u200d🔬.png",
    ],
)
def test_ordinary_names_in_any_script_pass(path: str) -> None:
    assert check_relative_path(path) == path


@pytest.mark.parametrize(
    "first",
    [
        ".labstream",
        ".LabStream",
        ".LABSTREAM",
        ".labstream.",
        ".LabStream ",
        ".lab\u017ftream",
        "." + "".join(chr(ord(c) + 0xFEE0) for c in "labstream"),
    ],
)
def test_the_state_folder_is_refused_in_any_spelling(first: str) -> None:
    with pytest.raises(UnsafePathError, match="state folder"):
        check_relative_path(f"{first}/ledger.sqlite")
    assert check_relative_path(f"data/{first}/x") == f"data/{first}/x"  # only at the top


@pytest.mark.parametrize(
    "path",
    [
        "CON",
        "nul.txt",
        "a/Com1.log",
        "LPT9",
        "aux .c",
        "x/trailing.",
        "x/trailing ",
        "a/b?c",
        'q"uote',
        "COM\u00b9",
    ],
)
def test_names_windows_cannot_write_are_refused_there(path: str) -> None:
    check_relative_path(path)  # fine on POSIX
    with pytest.raises(UnsafePathError, match="Windows"):
        check_windows_name(path)


def test_names_windows_can_write_pass() -> None:
    assert check_windows_name("console/nullable.txt") == "console/nullable.txt"


def test_shown_keeps_one_line_and_readable_text() -> None:
    assert shown("Größe/データ b.csv") == "Größe/データ b.csv"
    assert shown("a\nb\r\x1b[31m\x85\u202e\u2028\\") == "a\\x0ab\\x0d\\x1b[31m\\x85\\u202e\\u2028\\\\"
    long = shown("x" * 1000, 10)
    assert long.startswith("x" * 10) and long.endswith("[1000 chars]")


def test_every_ascii_control_character_is_refused_and_every_printable_one_passes_the_char_check() -> None:
    """The printable-ASCII shortcut (issue 16) refuses exactly what the per-character
    Unicode look-up refuses."""
    for code in range(128):
        char = chr(code)
        if char in "/\\":
            continue
        path = f"run/a{char}b.bin"
        if unicodedata.category(char) == "Cc":
            with pytest.raises(UnsafePathError, match="control or invisible"):
                check_relative_path(path)
        else:
            assert check_relative_path(path) == path


def test_a_refused_path_is_refused_every_time_and_never_remembered() -> None:
    from labstream.wire.paths import _check_relative_path

    remembered = _check_relative_path.cache_info().currsize
    for _ in range(3):
        with pytest.raises(UnsafePathError):
            check_relative_path("../escape.txt")
    assert _check_relative_path.cache_info().currsize == remembered
    assert check_relative_path("run1/ok.txt") == check_relative_path("run1/ok.txt") == "run1/ok.txt"
