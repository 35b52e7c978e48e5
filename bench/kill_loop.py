"""How many files does a watcher send twice when it is killed with SIGKILL again and again?

Usage (a broker must answer at --bootstrap):

    python bench/kill_loop.py --bootstrap 127.0.0.1:9092 [--files 1000 --rounds 5 --size 20000]

N files are written into a fresh folder, a watcher is started on it (`--upload-existing`)
and killed with SIGKILL at a random moment while it sends, M times, each time restarted on
the same state folder; a last run sends the rest and stops cleanly. Then every chunk of the
topic is read and each file's complete sends counted (one send: one wire-v2 file id whose
chunks are all there). A file sent complete more than once is a duplicate (downstream
presents it once: the same path and SHA-256); a file never sent complete is lost.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from labstream.kafka import Consumer
from labstream.wire import decode

WATCH_ARGS = (
    "--settle-seconds",
    "0.5",
    "--rescan-seconds",
    "2",
    "--update-seconds",
    "-1",
    "--upload-existing",
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=20_000, help="bytes per file")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--work", type=Path, default=None, help="keep files, state and logs here")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="labstream-kill-loop-") as scratch:
        work = args.work or Path(scratch)  # --work: kept, with each run's log
        work.mkdir(parents=True, exist_ok=True)
        config = work / "kill.config"
        config.write_text(
            f"[cluster]\nbootstrap.servers = {args.bootstrap}\n[producer]\n"
            "[consumer]\nauto.offset.reset = earliest\n"
        )
        root = work / "instrument"
        root.mkdir()
        for i in range(args.files):
            (root / f"f{i:05d}.dat").write_bytes(os.urandom(args.size))
        topic = f"kill-loop-{uuid.uuid4().hex[:8]}"
        state = work / "state"
        at_risk = 0
        for round_ in range(args.rounds):
            # Each kill while files are being sent: after this run sent a share of them.
            target = min(args.files, _sent(state) + args.files // (2 * (args.rounds + 1)))
            proc = _start(config, root, topic, state, work / f"round{round_}.log")
            _wait(lambda: _sent(state) >= target or proc.poll() is not None, 120)  # noqa: B023
            time.sleep(rng.uniform(0.0, 0.2))
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            # Only these can go twice: their send began, its acknowledgement was not recorded.
            at_risk += _sent(state, "sending")
            print(
                f"round {round_ + 1}: killed with {_sent(state)}/{args.files} recorded sent, "
                f"{_sent(state, 'sending')} sending",
                flush=True,
            )
        proc = _start(config, root, topic, state, work / "last.log")
        _wait(lambda: _sent(state) >= args.files, 600)
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
        complete = _complete_sends(config, topic)
    duplicates = sum(1 for n in complete.values() if n > 1)
    extra = sum(n - 1 for n in complete.values() if n > 1)
    lost = args.files - len(complete)
    print(
        f"files={args.files} rounds={args.rounds} size={args.size} sent-twice-or-more={duplicates} "
        f"extra-complete-sends={extra} lost={lost} sending-at-the-kills={at_risk}"
    )


def _start(config: Path, root: Path, topic: str, state: Path, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "labstream", "watch", str(root), "--config", str(config)]
    command += ["--topic", topic, "--state", str(state), *WATCH_ARGS]
    with open(log, "wb") as handle:
        return subprocess.Popen(command, stdout=handle, stderr=handle, stdin=subprocess.DEVNULL)


def _sent(state: Path, status: str = "sent") -> int:
    """Rows of the ledger with `status`."""
    try:
        db = sqlite3.connect(f"file:{state / 'ledger.sqlite'}?mode=ro", uri=True)
    except sqlite3.Error:
        return 0
    try:
        return int(db.execute("SELECT COUNT(*) FROM files WHERE status = ?", (status,)).fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        db.close()


def _wait(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:g} s")
        time.sleep(0.05)


def _complete_sends(config: Path, topic: str) -> collections.Counter[str]:
    """Per path: how many sends (file ids) have every chunk in the topic."""
    from labstream.config import load_config
    from labstream.kafka import consumer_settings

    chunks: dict[tuple[str, bytes], set[int]] = collections.defaultdict(set)
    sizes: dict[tuple[str, bytes], int] = {}
    settings = consumer_settings(load_config(config), f"kill-loop-count-{uuid.uuid4().hex[:8]}")
    with Consumer(settings, [topic]) as consumer:
        last = time.monotonic()
        while time.monotonic() - last < 5:
            for record in consumer.consume(1000, 0.5):
                last = time.monotonic()
                chunk = decode(record.value)
                if chunk.aborted:
                    continue
                send = (chunk.path, chunk.file_id or chunk.version_ns.to_bytes(8, "big"))
                chunks[send].add(chunk.index)
                sizes[send] = chunk.n_chunks
    complete: collections.Counter[str] = collections.Counter()
    for send, indices in chunks.items():
        if len(indices) == sizes[send]:
            complete[send[0]] += 1
    return complete


if __name__ == "__main__":
    main()
