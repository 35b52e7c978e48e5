"""bench/fleet.py's instruments: one writer thread playing every instrument, and what it wrote."""

from __future__ import annotations

import argparse
import hashlib
import heapq
import math
import os
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

MiB = 2**20


@dataclass(frozen=True)
class Written:
    source: str
    relpath: str
    size: int
    sha256: str
    closed_at: float  # wall clock, as the receipts' `at`


class Writer:
    """Plays every instrument: a file every `interval` s each, sizes log-uniform."""

    def __init__(self, folders: dict[str, Path], args: argparse.Namespace, seed: int) -> None:
        self.folders = folders
        self.interval = args.interval
        self.low, self.high = math.log(args.min_size), math.log(args.max_size)
        self.rename = args.write_mode == "rename"
        self.random = random.Random(seed)
        self.block = self.random.randbytes(args.max_size)
        self.written: list[Written] = []
        self.late_seconds = 0.0  # how far the writer fell behind its schedule, at most

    def run(self, seconds: float) -> None:
        start = time.monotonic()
        queue = [(start + self.random.uniform(0, self.interval), s) for s in sorted(self.folders)]
        heapq.heapify(queue)
        counts: Counter[str] = Counter()
        while queue:
            due, source = heapq.heappop(queue)
            if due - start >= seconds:
                continue
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            self.late_seconds = max(self.late_seconds, -pause)
            self.written.append(self.write(source, counts[source]))
            counts[source] += 1
            heapq.heappush(queue, (due + self.interval, source))

    def write(self, source: str, seq: int) -> Written:
        size = int(math.exp(self.random.uniform(self.low, self.high)))
        header = f"{source} {seq} {uuid.uuid4().hex}\n".encode()[:size]
        offset = self.random.randrange(0, len(self.block) - size + 1)
        content = header + self.block[offset : offset + size - len(header)]
        digest = hashlib.sha256(content).hexdigest()  # before: the closed time is the close's
        relpath = f"run/{seq:05d}.bin"
        final = self.folders[source] / relpath
        final.parent.mkdir(exist_ok=True)
        target = final.with_name(final.name + ".tmp") if self.rename else final
        with open(target, "wb") as handle:
            for start in range(0, size, MiB):  # as an instrument writes: in pieces
                handle.write(content[start : start + MiB])
        if self.rename:
            os.replace(target, final)
        return Written(source, relpath, size, digest, time.time())
