"""The systemd service on Linux: the unit as generated, run the way systemd runs it."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import signal
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from labstream.service import ServiceSpec
from labstream.service.systemd import SystemdManager, unit_paths

from .conftest import labstream
from .test_roundtrip import tree
from .watchproc import wait_for


class Recorder:
    """Stands in for systemctl, which needs a running systemd (not in CI containers)."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, command: Sequence[str]) -> tuple[int, str]:
        self.calls.append(list(command))
        return 0, ""


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return env


def test_systemd_unit_runs_drains_on_sigterm_and_is_removed(
    tmp_path: Path, bootstrap: str, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABSTREAM_SYSTEMD_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("LAB_BOOTSTRAP", bootstrap)
    watched, state = tmp_path / "instrument", tmp_path / "state"
    watched.mkdir()
    config = tmp_path / "xrd.config"
    config.write_text(
        f"[labstream]\nfile_directory = {watched}\ntopic_name = {topic}\n"
        "settle_seconds = 1\nupdate_seconds = -1\n"
        "[cluster]\nbootstrap.servers = ${LAB_BOOTSTRAP}\n"
    )
    spec = ServiceSpec("xrd", config, state=state)
    recorder = Recorder()
    unit, env_file = SystemdManager(recorder).install(spec)
    # the first reload checks systemd answers before any file is written
    assert recorder.calls == [
        ["systemctl", "daemon-reload"],
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "labstream-xrd"],
    ]
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert bootstrap not in unit.read_text(), "secrets stay out of the unit file"
    if shutil.which("systemd-analyze"):
        verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
        problems = [line for line in verify.stderr.splitlines() if "labstream-xrd" in line]
        assert not problems, verify.stderr
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(unit)
    service = parser["Service"]
    assert service["KillSignal"] == "SIGTERM" and int(service["TimeoutStopSec"]) >= 60
    assert service["Restart"] == "on-failure" and parser["Install"]["WantedBy"] == "multi-user.target"
    assert service["EnvironmentFile"] == f"-{env_file}"

    # Run ExecStart as systemd would: that command line, the environment file, no stdin.
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **read_env_file(env_file)}
    proc = subprocess.Popen(
        shlex.split(service["ExecStart"]),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    log = state / "watch.log"
    wait_for(lambda: log.exists() and "watching folder" in log.read_text())
    for i in range(30):
        (watched / f"m{i}.dat").write_bytes(os.urandom(40_000))
    wait_for(lambda: (state / "watch.log").read_text().count("file sent") >= 1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=int(service["TimeoutStopSec"]))
    assert proc.returncode == 0, err.decode()

    # Nothing lost: what was not sent before the stop goes after the next start.
    restarted = subprocess.Popen(
        shlex.split(service["ExecStart"]),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: (state / "watch.log").read_text().count("watching folder") == 2)
        wait_for(lambda: (state / "watch.log").read_text().count("file sent") >= 30, timeout=120)
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(120) == 0
    finally:
        if restarted.poll() is None:
            restarted.kill()
            restarted.wait()
    out = tmp_path / "out"
    labstream("download", out, "--config", config, "--topic", topic, "--exit-when-idle", "4")
    assert tree(out) == tree(watched)

    removed = SystemdManager(recorder).remove(spec)
    assert set(removed) == {unit, env_file} and not unit.exists() and not env_file.exists()
    assert recorder.calls[-2:] == [
        ["systemctl", "disable", "--now", "labstream-xrd"],
        ["systemctl", "daemon-reload"],
    ]
    assert unit_paths(spec) == (unit, env_file)


def test_download_service_runs_from_its_config_alone_and_stops_cleanly(
    tmp_path: Path, bootstrap: str, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The receiving side as a service: `labstream download --config C`, folder and topic from
    [labstream], the broker from a `${VAR:-default}` whose variable is set at install."""
    monkeypatch.setenv("LABSTREAM_SYSTEMD_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("LAB_BOOTSTRAP", bootstrap)
    out, data = tmp_path / "out", tmp_path / "data"
    data.mkdir()
    (data / "a.dat").write_bytes(os.urandom(300_000))
    config = tmp_path / "rx.config"
    config.write_text(
        f"[labstream]\ndownload_directory = {out}\ntopic_name = {topic}\nheartbeat_seconds = 0\n"
        "[cluster]\nbootstrap.servers = ${LAB_BOOTSTRAP:-unreachable.invalid:9092}\n"
        "[consumer]\nauto.offset.reset = earliest\n"
    )
    labstream("upload", data / "a.dat", "-c", config, "-t", topic)
    spec = ServiceSpec("rx-download", config, role="download")
    unit, env_file = SystemdManager(Recorder()).install(spec)
    assert read_env_file(env_file) == {"LAB_BOOTSTRAP": bootstrap}
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(unit)
    command = shlex.split(parser["Service"]["ExecStart"])
    assert command[-3:] == ["download", "--config", str(config.resolve())]
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **read_env_file(env_file)}
    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        wait_for(lambda: (out / "a.dat").exists())
        proc.send_signal(signal.SIGTERM)
        stdout, err = proc.communicate(timeout=int(parser["Service"]["TimeoutStopSec"]))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()
    assert (out / "a.dat").read_bytes() == (data / "a.dat").read_bytes()
    assert "downloaded 1 verified file(s)" in stdout.decode()
