"""The package as a lab installs it: a wheel in a fresh venv outside the repository.

Catches a package file missing from the wheel, or an import that only works from the
source tree. The sdist must carry the licence, docs, tests and scripts.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from labstream.broker.local import state_dir

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str | Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(map(str, args)), cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (
        f"{args} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_wheel_in_a_fresh_venv_runs_the_demo(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "build", "--wheel", "--sdist", "--outdir", dist, REPO, cwd=tmp_path)
    wheel = next(dist.glob("labstream-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in (
        "labstream/py.typed",
        "labstream/broker/pom.xml",
        "labstream/broker/log4j2.properties",
        "labstream/metrics/alerts.yml",
    ):
        assert shipped in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    with tarfile.open(next(dist.glob("labstream-*.tar.gz"))) as sdist:
        members = sdist.getnames()
    top = members[0].split("/")[0]
    for shipped in ("LICENSE", "docs/wire-format.md", "tests/unit/test_wire.py", "scripts/test.sh"):
        assert f"{top}/{shipped}" in members

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    _run(
        venv / "bin" / "python",
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
        wheel,
        cwd=tmp_path,
    )
    port = _free_port()
    try:
        done = _run(
            venv / "bin" / "labstream", "demo", "--port", port, "--workdir", tmp_path / "demo", cwd=tmp_path
        )
    finally:
        subprocess.run(
            [venv / "bin" / "labstream", "broker", "stop", "--port", str(port)], capture_output=True
        )
        shutil.rmtree(state_dir(port), ignore_errors=True)
    assert "files are byte-identical (SHA-256)" in done.stdout, done.stdout
