"""A live send tells an append from a rewrite anywhere in what it sent (upload.appendcheck)."""

from __future__ import annotations

import io
import os

import pytest

from labstream.upload.appendcheck import BLOCK, EDGE, SAMPLED, AppendCheck, NotAnAppend


def _sent(data: bytes, piece: int = 5000) -> AppendCheck:
    check = AppendCheck()
    for at in range(0, len(data), piece):  # fed in uneven pieces, as segments come
        check.add(data[at : at + piece])
    return check


def test_an_append_passes_and_what_was_sent_is_kept_in_block_digests() -> None:
    data = os.urandom(3 * BLOCK + 123)
    check = _sent(data)
    check.check(io.BytesIO(data + b"more"), len(data) + 4)
    assert check.length == len(data) and len(check._sums) == 3


@pytest.mark.parametrize("at", [EDGE + 10, BLOCK + 7, 2 * BLOCK - EDGE - 1])
def test_a_rewrite_in_the_middle_keeping_the_first_and_last_4_kib_is_found(at: int) -> None:
    data = bytearray(os.urandom(2 * BLOCK))
    check = _sent(bytes(data))
    data[at] ^= 1
    with pytest.raises(NotAnAppend, match=f"bytes {at // BLOCK * BLOCK} to .* changed"):
        check.check(io.BytesIO(bytes(data)), len(data))


def test_in_a_large_file_every_block_is_checked_within_blocks_over_sampled_checks() -> None:
    blocks = 5 * SAMPLED + 1
    data = bytearray(os.urandom(blocks * BLOCK))
    check = _sent(bytes(data), piece=BLOCK // 3)
    data[17 * BLOCK + 5] ^= 1  # one byte of one block in the middle
    changed = io.BytesIO(bytes(data))
    checks = 0
    with pytest.raises(NotAnAppend):
        while checks <= blocks // SAMPLED + 1:
            checks += 1
            check.check(changed, len(data))
    assert checks <= -(-blocks // SAMPLED)


def test_a_shorter_file_or_changed_edges_are_refused() -> None:
    data = os.urandom(BLOCK // 2)
    check = _sent(data)
    with pytest.raises(NotAnAppend, match="truncated"):
        check.check(io.BytesIO(data[:-1]), len(data) - 1)
    with pytest.raises(NotAnAppend, match="first bytes"):
        check.check(io.BytesIO(b"X" + data[1:]), len(data))
    with pytest.raises(NotAnAppend, match="last bytes"):
        check.check(io.BytesIO(data[:-1] + b"X"), len(data))
