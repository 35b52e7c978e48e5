"""Where the broker's jars come from: KAFKA_HOME, or Maven Central fetched once into a cache."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from labstream.errors import BrokerSetupError

__all__ = ["cache_root", "kafka_libs", "require_java"]

logger = logging.getLogger(__name__)
MAVEN_TIMEOUT_SECONDS = 900.0


def cache_root() -> Path:
    """The per-user cache folder (LABSTREAM_CACHE overrides it)."""
    if os.environ.get("LABSTREAM_CACHE"):
        return Path(os.environ["LABSTREAM_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "labstream"


def require_java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise BrokerSetupError(
            "Java 17 or newer is needed to run the local Kafka broker and was "
            "not found (install a JDK, e.g. `apt-get install openjdk-17-jre-headless`, "
            "or set JAVA_HOME)"
        )
    return java


def kafka_libs() -> Path:
    """A folder of Kafka broker jars, fetching them with Maven on first use."""
    home = os.environ.get("KAFKA_HOME")
    if home:
        libs = Path(home) / "libs"
        if not any(libs.glob("kafka_2.13-*.jar")):
            raise BrokerSetupError(
                f"KAFKA_HOME={home} has no libs/kafka_2.13-*.jar: "
                "point it at an unpacked Apache Kafka distribution"
            )
        return libs
    pom = Path(str(resources.files("labstream.broker") / "pom.xml"))
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:12]
    target = cache_root() / f"kafka-jars-{digest}"
    if not (target / ".complete").exists():
        _fetch(pom, target)
    return target


def _fetch(pom: Path, target: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerSetupError(
            "Maven (`mvn`) is needed once to fetch the Kafka broker jars from "
            "Maven Central and was not found (install it, e.g. `apt-get install "
            "maven`, or set KAFKA_HOME to an unpacked Kafka distribution)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="kafka-jars-", dir=target.parent))
    logger.info("fetching Kafka broker jars with Maven target=%s", target)
    command = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
        "-DincludeScope=runtime",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=MAVEN_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise BrokerSetupError("Maven did not finish fetching the Kafka jars in time") from exc
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise BrokerSetupError("Maven could not fetch the Kafka jars: " + " | ".join(tail))
    (staging / ".complete").write_text("ok\n")
    try:
        staging.rename(target)
    except OSError:  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)
