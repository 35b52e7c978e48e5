"""scripts/setup.sh installs a web browser only for the tests (the demo and users need none);
scripts/test.sh, and so `bash .ci/run` on a bare machine, asks for it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("bash", "cat", "sha256sum", "cut", "id", "dirname", "touch")


@pytest.fixture
def bare_path(tmp_path: Path) -> Path:
    """A PATH with the shell's tools, java and mvn, an apt-get that only logs, no chromium."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    for name, body in (
        ("java", "exit 0"),
        ("mvn", "exit 0"),
        ("apt-get", f'echo "$@" >> {tmp_path}/apt.log'),
    ):
        (bin_dir / name).write_text(f"#!{shutil.which('bash')}\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return bin_dir


def setup(bare_path: Path, *args: str) -> str:
    """Run setup.sh (its venv is already installed here) and return what apt-get was asked."""
    if os.geteuid() != 0:
        pytest.fail("setup.sh installs with apt-get only as root; run this test as root, as CI does")
    env = {"PATH": str(bare_path), "HOME": str(bare_path.parent)}
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    log = bare_path.parent / "apt.log"
    return log.read_text() if log.exists() else ""


def test_setup_installs_no_browser_unless_asked_for_the_tests(bare_path: Path) -> None:
    assert "chromium" not in setup(bare_path)
    assert "install -y -qq chromium" in setup(bare_path, "--tests")


def test_the_test_script_and_so_ci_ask_setup_for_the_test_tools() -> None:
    assert "bash scripts/setup.sh --tests" in (ROOT / "scripts" / "test.sh").read_text()
    assert "exec bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
    assert "--tests" not in (ROOT / "scripts" / "demo.sh").read_text()
