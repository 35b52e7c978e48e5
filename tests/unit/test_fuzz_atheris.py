"""Coverage-guided fuzzing (atheris) of the decoders and the reassembler."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris", reason="atheris has Linux wheels only (sys_platform == 'linux' in pyproject)")

HARNESS = Path(__file__).with_name("fuzz_wire.py")


def test_decoders_and_reassembler_survive_fuzzing(tmp_path: Path) -> None:
    seeds = tmp_path / "corpus"
    seeds.mkdir()
    from labstream.wire import Chunk, encode, encode_openmsistream

    (seeds / "labstream").write_bytes(encode(Chunk("a/b.txt", 3, b"\0" * 32, 0, 1, 4, b"abc")))
    v2 = Chunk("a/b.txt", 3, b"\1" * 32, 0, 1, 4, b"abc", wire_version=2, file_id=b"i" * 16)
    (seeds / "labstream-v2").write_bytes(encode(v2))
    (seeds / "openmsistream").write_bytes(
        encode_openmsistream(Chunk("a/b.txt", 3, b"\0" * 64, 0, 1, 4, b"abc", hash_name="sha512"))
    )
    done = subprocess.run(
        [sys.executable, str(HARNESS), "-runs=30000", "-max_len=512", str(seeds)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Done 30000 runs" in done.stderr
