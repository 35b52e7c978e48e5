"""openmsistream 1.8.8 in its own virtual environment, installed once by the test setup."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from labstream.broker.jars import cache_root

VERSION = "1.8.8"


def openmsistream_bin() -> Path:
    venv = cache_root() / f"venv-openmsistream-{VERSION}"
    bin_dir = venv / "bin"
    if not (bin_dir / "DataFileDownloadDirectory").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [
                str(bin_dir / "python"),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                f"openmsistream=={VERSION}",
            ],
            check=True,
            timeout=900,
        )
    return bin_dir


def openmsistream_config(folder: Path, bootstrap: str) -> Path:
    """openmsistream's own local_broker_test.config, unchanged but for the address variable."""
    path = folder / "local_broker_test.config"
    path.write_text("""[broker]
bootstrap.servers = $LOCAL_KAFKA_BROKER_BOOTSTRAP_SERVERS

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


def digests(root: Path, skip_logs: bool = True) -> dict[str, str]:
    found = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if not path.is_file() or rel.startswith(".labstream/"):
            continue
        if skip_logs and (rel.endswith(".log") or rel.startswith("LOGS/") or rel.endswith(".csv")):
            continue
        found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found
