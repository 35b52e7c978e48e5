"""Run openmsistream 1.8.8 (in its own virtual environment) on the same data and broker.

Used by throughput.py; the venv is created once in bench/.venv-openmsistream.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

VENV = Path(__file__).resolve().parent / ".venv-openmsistream"
VERSION = "1.8.8"


def ensure_venv() -> Path:
    """The venv's bin folder, installing openmsistream into it on first use."""
    bin_dir = VENV / "bin"
    if not (bin_dir / "DataFileUploadDirectory").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(bin_dir / "pip"), "install", "-q", f"openmsistream=={VERSION}"], check=True)
    return bin_dir


def write_config(folder: Path, bootstrap: str) -> Path:
    path = folder / "openmsistream.config"
    # openmsistream's own local_broker_test.config, pointed at our broker.
    path.write_text(f"""[broker]
bootstrap.servers = {bootstrap}

[producer]
batch.size       = 2000000
linger.ms        = 100
compression.type = lz4
key.serializer   = StringSerializer
value.serializer = DataFileChunkSerializer

[consumer]
group.id           = create_new
auto.offset.reset  = earliest
enable.auto.commit = False
fetch.min.bytes    = 100000
key.deserializer   = StringDeserializer
value.deserializer = DataFileChunkDeserializer
""")
    return path


def peak_rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def _sizes(root: Path) -> dict[str, int]:
    sizes = {}
    for path in root.rglob("*"):
        try:
            if path.is_file():
                sizes[path.relative_to(root).as_posix()] = path.stat().st_size
        except OSError:
            continue  # renamed or removed while we looked
    return sizes


def end_to_end(
    data: Path, out: Path, config: Path, topic: str, chunk_size: int | None, timeout: float = 1800.0
) -> dict[str, float]:
    """Start the downloader, then the directory uploader (--upload_existing); time until
    every file in `out` has the right SHA-256. Returns seconds and both peak RSS."""
    bin_dir = ensure_venv()
    # Taken before the run: openmsistream's uploader writes its LOGS folder into `data`.
    expected_sizes, expected = _sizes(data), _digests(data)
    out.mkdir(parents=True, exist_ok=True)
    extra = ["--chunk_size", str(chunk_size)] if chunk_size else []
    down = subprocess.Popen(
        [
            str(bin_dir / "DataFileDownloadDirectory"),
            str(out),
            "--config",
            str(config),
            "--topic_name",
            topic,
            "--consumer_group_id",
            f"{topic}-dl",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(5.0)  # let the consumer join, as labstream's downloader is given too
    started = time.monotonic()
    up = subprocess.Popen(
        [
            str(bin_dir / "DataFileUploadDirectory"),
            str(data),
            "--config",
            str(config),
            "--topic_name",
            topic,
            "--upload_existing",
            *extra,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = started + timeout
    seconds = float("nan")
    while time.monotonic() < deadline:
        got = _sizes(out)  # openmsistream also writes its log file into the output folder
        if all(got.get(name) == size for name, size in expected_sizes.items()):
            digests = _digests(out)
            if all(digests.get(name) == digest for name, digest in expected.items()):
                seconds = time.monotonic() - started
                break
        time.sleep(0.2)
    rss = {"upload_peak_rss_kib": peak_rss_kib(up.pid), "download_peak_rss_kib": peak_rss_kib(down.pid)}
    for proc in (up, down):
        try:
            proc.communicate(b"q\n", timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return {"seconds": seconds, **rss}
