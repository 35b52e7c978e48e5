"""Services for every role: the generated units, secrets with defaults, --user, the interpreter."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from labstream.cli import cli
from labstream.config import load_config
from labstream.errors import ConfigError
from labstream.runners import role_settings
from labstream.service import ServiceSpec
from labstream.service.base import referenced_env, stable_python
from labstream.service.systemd import SystemdManager, render_unit, unit_paths


class Recorder:
    """Stands in for systemctl; `fail_on` makes the first command containing it fail."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail_on = fail_on

    def __call__(self, command: Sequence[str]) -> tuple[int, str]:
        self.calls.append(list(command))
        if self.fail_on is not None and self.fail_on in command:
            return 1, "Failed to connect to bus: No medium found"
        return 0, ""


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LABSTREAM_SYSTEMD_ROOT", str(tmp_path / "root"))
    return tmp_path / "root"


BASE = "[labstream]\ntopic_name = t\n[cluster]\nbootstrap.servers = a:1\n"


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "lab.config"
    path.write_text(body)
    return path


def test_download_and_process_units_run_their_role_with_the_config(tmp_path: Path, root: Path) -> None:
    config = write_config(tmp_path, BASE)
    for role in ("download", "process"):
        spec = ServiceSpec(f"lab-{role}", config, role=role)
        unit, _ = SystemdManager(Recorder()).install(spec)
        exec_start = next(line for line in unit.read_text().splitlines() if line.startswith("ExecStart="))
        assert exec_start.endswith(f"-m labstream {role} --config {config.resolve()}")
        assert f"labstream {'downloader' if role == 'download' else 'processor'}" in unit.read_text()
    with pytest.raises(ConfigError, match="--state is the watcher's"):
        ServiceSpec("x", config, role="download", state=tmp_path / "s")
    with pytest.raises(ConfigError, match="service role 'upload'"):
        ServiceSpec("x", config, role="upload")


def test_each_role_takes_everything_it_needs_from_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    config = write_config(
        tmp_path,
        f"[labstream]\ntopic_name = raw\nfile_directory = {tmp_path / 'in'}\n"
        f"download_directory = {tmp_path / 'out'}\nprocessor = metadata\n"
        "processor_options = a=1, b=x\n[cluster]\nbootstrap.servers = a:1\n",
    )
    loaded = load_config(config)
    download = role_settings("download", loaded)
    process = role_settings("process", loaded)
    assert (download.topic, download.out_dir) == ("raw", tmp_path / "out")  # type: ignore[union-attr]
    assert (process.topic, process.processor) == ("raw", "metadata")  # type: ignore[union-attr]
    assert dict(process.processor_options) == {"a": "1", "b": "x"}  # type: ignore[union-attr]
    assert role_settings("watch", loaded).topic == "raw"


def test_a_role_missing_its_arguments_is_refused_at_install_in_one_line(tmp_path: Path, root: Path) -> None:
    config = write_config(tmp_path, BASE)
    result = CliRunner().invoke(cli, ["service", "install", "-c", str(config), "--role", "download"])
    assert result.exit_code == 1
    assert "no output folder: give DIRECTORY or download_directory in [labstream]" in result.output
    result = CliRunner().invoke(cli, ["service", "install", "-c", str(config), "--role", "process"])
    assert "no processor: give PROCESSOR or processor in [labstream]" in result.output
    assert not root.exists(), "nothing written for a refused install"


def test_variables_with_a_default_need_not_be_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LAB_UNSET_GROUP", "LABSTREAM_ENCRYPTION_KEY", "LABSTREAM_ENCRYPTION_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("LABSTREAM_HEARTBEAT_TOPIC", raising=False)
    monkeypatch.setenv("LAB_SET_SERVERS", "b:9092")
    monkeypatch.setenv("LAB_POINTED_SECRET", "pointed")
    (tmp_path / "producer.config").write_text("[producer]\nsasl.password = $LAB_POINTED_SECRET\n")
    config = write_config(
        tmp_path,
        "[labstream]\ncluster_producer_config = producer.config\n"
        "[cluster]\nbootstrap.servers = ${LAB_SET_SERVERS:-a:9092}\n"
        "[consumer]\ngroup.id = ${LAB_UNSET_GROUP:-lab}\n",
    )
    assert referenced_env(config) == {"LAB_SET_SERVERS": "b:9092", "LAB_POINTED_SECRET": "pointed"}
    monkeypatch.setenv("LABSTREAM_ENCRYPTION_KEY", "k" * 64)
    assert referenced_env(config)["LABSTREAM_ENCRYPTION_KEY"] == "k" * 64, "the payload key goes along"


def test_user_unit_has_no_network_online_target_and_install_hints_linger(tmp_path: Path, root: Path) -> None:
    config = write_config(tmp_path, BASE)
    user = ServiceSpec("lab", config, user=True)
    system = ServiceSpec("lab", config)
    assert "network-online" not in render_unit(user, tmp_path / "env")
    assert "After=network-online.target" in render_unit(system, tmp_path / "env")
    assert any("loginctl enable-linger" in hint for hint in SystemdManager(Recorder()).hints(user))
    assert SystemdManager(Recorder()).hints(system) == []


@pytest.mark.parametrize("fail_on", ["daemon-reload", "enable"])
@pytest.mark.parametrize("user", [True, False])
def test_no_files_are_left_behind_when_systemd_is_absent_or_refuses(
    tmp_path: Path, root: Path, fail_on: str, user: bool
) -> None:
    config = write_config(tmp_path, BASE)
    spec = ServiceSpec("lab", config, user=user)
    with pytest.raises(Exception, match="No medium found"):
        SystemdManager(Recorder(fail_on=fail_on)).install(spec)
    assert not any(p.exists() for p in unit_paths(spec))
    assert not root.exists() or not any(root.rglob("*")), "no files or folders left"


def test_a_reinstall_that_fails_keeps_the_files_of_the_working_install(tmp_path: Path, root: Path) -> None:
    config = write_config(tmp_path, BASE)
    spec = ServiceSpec("lab", config)
    unit, env_file = SystemdManager(Recorder()).install(spec)
    with pytest.raises(Exception, match="No medium found"):
        SystemdManager(Recorder(fail_on="enable")).install(spec)
    assert unit.exists() and env_file.exists()


def test_the_interpreter_is_the_venvs_own_path_not_the_resolved_symlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(Path(sys.executable).resolve())
    monkeypatch.setattr(sys, "prefix", str(venv))
    monkeypatch.setattr(sys, "base_prefix", str(tmp_path / "base"))
    assert stable_python() == str(venv / "bin" / "python")


def test_status_says_how_to_repair_a_service_whose_interpreter_is_gone(
    tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, BASE)
    gone = str(tmp_path / "old-venv" / "bin" / "python")
    SystemdManager(Recorder()).install(ServiceSpec("lab-download", config, role="download", python=gone))
    module = sys.modules["labstream.cli.service"]  # the package attribute is the click group
    monkeypatch.setattr(module, "manager_for_platform", lambda: SystemdManager(Recorder()))
    result = CliRunner().invoke(cli, ["service", "status", "-c", str(config), "--role", "download"])
    assert result.exit_code == 0, result.output
    assert f"its interpreter {gone} is gone" in result.output
    assert "run `labstream service install` again" in result.output


def test_bootstrap_given_to_install_is_run_by_the_service(
    tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(
        tmp_path,
        f"[labstream]\ntopic_name = t\ndownload_directory = {tmp_path / 'out'}\n"
        "[cluster]\nbootstrap.servers = a:1\n",
    )
    recorder = Recorder()
    module = sys.modules["labstream.cli.service"]
    monkeypatch.setattr(module, "manager_for_platform", lambda: SystemdManager(recorder))
    args = ["service", "install", "-c", str(config), "--role", "download", "-b", "lab-broker:9093"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    unit = next(root.rglob("labstream-lab-download.service")).read_text()
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert exec_start.endswith(f"download --config {config.resolve()} --bootstrap lab-broker:9093")
