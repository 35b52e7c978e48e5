"""A real S3-compatible server for the tests: S3Proxy (Maven Central) on a local folder."""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from labstream.broker.jars import cache_root, require_java

POM = Path(__file__).with_name("s3proxy") / "pom.xml"
IDENTITY, CREDENTIAL = "labstream", "labstream-test-secret"


def s3proxy_libs() -> Path:
    target = cache_root() / f"s3proxy-jars-{hashlib.sha256(POM.read_bytes()).hexdigest()[:12]}"
    if not (target / ".complete").exists():
        staging = Path(tempfile.mkdtemp(prefix="s3proxy-", dir=cache_root()))
        subprocess.run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staging}",
                "-DincludeScope=runtime",
            ],
            check=True,
            timeout=900,
        )
        (staging / ".complete").write_text("ok\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def s3proxy(folder: Path) -> Iterator[str]:
    """Run S3Proxy with a filesystem backend in `folder`; yields the endpoint URL."""
    port = _free_port()
    (folder / "blobs").mkdir(parents=True, exist_ok=True)
    properties = folder / "s3proxy.conf"
    properties.write_text(
        f"s3proxy.endpoint=http://127.0.0.1:{port}\n"
        "s3proxy.authorization=aws-v2-or-v4\n"
        f"s3proxy.identity={IDENTITY}\ns3proxy.credential={CREDENTIAL}\n"
        "jclouds.provider=filesystem\n"
        f"jclouds.filesystem.basedir={folder / 'blobs'}\n"
    )
    with open(folder / "s3proxy.log", "wb") as log:
        proc = subprocess.Popen(
            [
                require_java(),
                "-Xmx256m",
                "-cp",
                f"{s3proxy_libs()}/*",
                "org.gaul.s3proxy.Main",
                "--properties",
                str(properties),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "S3Proxy did not start"
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)
