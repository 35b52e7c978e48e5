"""`-b/--bootstrap` replaces a wrong bootstrap.servers of the config, for a real upload and download."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .conftest import labstream


def test_bootstrap_option_overrides_a_wrong_config_for_upload_and_download(
    tmp_path: Path, bootstrap: str, topic: str
) -> None:
    config = tmp_path / "wrong.config"
    config.write_text(
        "[cluster]\nbootstrap.servers = 127.0.0.1:1\n[producer]\nbootstrap.servers = 127.0.0.1:2\n"
        "[consumer]\nauto.offset.reset = earliest\n"
    )
    data = tmp_path / "a.dat"
    data.write_bytes(os.urandom(200_000))
    refused = labstream("upload", data, "-c", config, "-t", topic, "--timeout", "3", check=False)
    assert refused.returncode == 1 and "no Kafka broker answered at 127.0.0.1:2" in refused.stderr
    labstream("upload", data, "-c", config, "-t", topic, "-b", bootstrap)
    out = tmp_path / "out"
    labstream("-b", bootstrap, "download", out, "-c", config, "-t", topic, "--exit-when-idle", "3")
    assert (out / "a.dat").read_bytes() == data.read_bytes()


def test_doctor_takes_bootstrap_too(tmp_path: Path, bootstrap: str, topic: str) -> None:
    config = tmp_path / "wrong.config"
    config.write_text("[cluster]\nbootstrap.servers = 127.0.0.1:1\n")
    wrong = labstream("doctor", "-c", config, "-t", topic, "--json", check=False)
    checks = {c["name"]: c["status"] for c in json.loads(wrong.stdout)["checks"]}
    assert checks["bootstrap 127.0.0.1:1"] == "fail"
    right = labstream("doctor", "-c", config, "-t", topic, "--json", "-b", bootstrap, check=False)
    checks = {c["name"]: c["status"] for c in json.loads(right.stdout)["checks"]}
    assert checks[f"bootstrap {bootstrap}"] == "ok" and checks["kafka metadata"] == "ok"
    assert "bootstrap 127.0.0.1:1" not in checks
