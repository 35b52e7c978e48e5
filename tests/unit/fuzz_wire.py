"""atheris harness: any bytes into the decoders (v1, v2, openmsistream) and the reassembler.

Run by test_fuzz_atheris.py as `python fuzz_wire.py -runs=N`. A crash is any exception
other than WireError from the decoder, or any file written outside the output folder.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from labstream.download import Assembler, Ledger
    from labstream.errors import WireError
    from labstream.kafka import Record
    from labstream.wire import decode

ROOT = Path(tempfile.mkdtemp(prefix="fuzz-"))
OUT = ROOT / "out"
LEDGER = Ledger(OUT / ".labstream" / "ledger.sqlite")
ASSEMBLER = Assembler(OUT, LEDGER)


def one_input(data: bytes) -> None:
    # The input as is, and as a wire-v2 message (so the fuzzer needs not find the magic).
    for value in (data, b"LSCK\x02" + data[5:]):
        with contextlib.suppress(WireError):
            decode(value)
        ASSEMBLER.add(Record("t", 0, 0, None, value))  # must log and refuse, never raise
        ASSEMBLER.commit()
    strays = [p for p in ROOT.iterdir() if p.name != "out"]
    if strays:
        raise AssertionError(f"written outside the output folder: {strays}")


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
