"""`labstream doctor` against the real broker: passes when ready, names the fix when not."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from .conftest import labstream
from .test_bad_input import produce_raw
from .test_browse import chunks_of


def checks_of(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, str]]:
    report = json.loads(done.stdout)
    return {c["name"]: c for c in report["checks"]}


def test_doctor_passes_for_a_ready_downloader_and_reports_the_topic(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    produce_raw(config_file, topic, chunks_of("a.bin", os.urandom(3000)))
    done = labstream(
        "doctor", "-c", config_file, "-t", topic, "--role", "download", "--folder", tmp_path / "out", "--json"
    )
    checks = checks_of(done)
    assert json.loads(done.stdout)["ok"] is True
    assert checks["topic"]["status"] == "ok" and topic in checks["topic"]["detail"]
    assert checks["topic rights"]["status"] == "ok" and "READ" in checks["topic rights"]["detail"]
    assert "replication factor 1, min.insync.replicas 1" in checks["replication"]["detail"]
    assert "retention.ms" in checks["retention"]["detail"] and "KiB/s" in checks["retention"]["detail"]
    assert checks["free space"]["status"] == "ok"
    assert "524288" in checks["message size"]["detail"]
    text = labstream("doctor", "-c", config_file, "-t", topic, "--role", "download")
    assert text.stdout.splitlines()[-1].endswith("all passed") and "✓ topic:" in text.stdout


def test_doctor_fails_on_unknown_key_and_too_big_chunks_naming_the_fix(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    config = tmp_path / "typo.config"
    config.write_text(config_file.read_text() + "\n[labstream]\nchunk_sise = 1024\n")
    done = labstream("doctor", "-c", config, "-t", topic, "--chunk-size", str(8 << 20), "--json", check=False)
    assert done.returncode == 1
    checks = checks_of(done)
    assert checks["config keys"]["status"] == "fail" and "chunk_sise" in checks["config keys"]["detail"]
    assert (
        checks["message size"]["status"] == "fail" and "--chunk-size 524288" in checks["message size"]["fix"]
    )


def test_doctor_names_an_unreachable_bootstrap_and_says_the_topic_checks_were_skipped(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path / "down.config"
    config.write_text(f"[cluster]\nbootstrap.servers = 127.0.0.1:{port},no-such-host.invalid:9092\n")
    done = labstream("doctor", "-c", config, "-t", "x", check=False, timeout=120)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert any(line.startswith(f"✗ bootstrap 127.0.0.1:{port}") and "fix:" in line for line in lines)
    assert any(line.startswith("✗ bootstrap no-such-host.invalid:9092: does not resolve") for line in lines)
    topic_lines = [line for line in lines if line.split(":")[0].endswith("topic")]
    assert topic_lines == [
        "· topic: x: not checked, no broker answered (topic, rights, group, message size, retention, "
        "receipts and clock are checked once the cluster is reachable)"
    ]


def test_doctor_prints_ascii_where_the_terminal_cannot_show_check_marks(config_file: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "labstream", "doctor", "-c", str(config_file)],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "ascii"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert b"[ok] kafka metadata" in done.stdout
    done.stdout.decode("ascii")  # nothing else slipped through
