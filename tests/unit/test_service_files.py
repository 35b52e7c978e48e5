"""What the service backends generate and call (no service manager needed)."""

from __future__ import annotations

import plistlib
import stat
from collections.abc import Sequence
from pathlib import Path

import pytest

from labstream.errors import ConfigError, LabstreamError
from labstream.service import ServiceSpec
from labstream.service.launchd import LaunchdManager, plist_path
from labstream.service.windows import WindowsManager


class Recorder:
    """A runner that records commands instead of calling a service manager."""

    def __init__(self, output: str = "") -> None:
        self.calls: list[list[str]] = []
        self.output = output

    def __call__(self, command: Sequence[str]) -> tuple[int, str]:
        self.calls.append(list(command))
        return 0, self.output


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LAB_KAFKA_PASSWORD", "s3cret-value")
    path = tmp_path / "xrd.config"
    path.write_text(
        "[labstream]\nfile_directory = /data\ntopic_name = t\n"
        "[cluster]\nbootstrap.servers = a:1\nsasl.password = ${LAB_KAFKA_PASSWORD}\n"
    )
    return path


def test_launchd_plist(config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABSTREAM_LAUNCHD_ROOT", str(tmp_path / "home"))
    spec = ServiceSpec("xrd", config)
    recorder = Recorder()
    (path,) = LaunchdManager(recorder).install(spec)
    assert path == plist_path(spec) and stat.S_IMODE(path.stat().st_mode) == 0o600
    plist = plistlib.loads(path.read_bytes())
    assert plist["Label"] == "org.labstream.xrd"
    assert plist["ProgramArguments"][-4:] == ["labstream", "watch", "--config", str(config.resolve())]
    assert plist["EnvironmentVariables"]["LAB_KAFKA_PASSWORD"] == "s3cret-value"
    assert plist["KeepAlive"] == {"SuccessfulExit": False} and plist["ExitTimeOut"] >= 60
    assert recorder.calls == [["launchctl", "load", "-w", str(path)]]
    LaunchdManager(recorder).stop(spec)
    assert LaunchdManager(recorder).remove(spec) == [path] and not path.exists()
    assert recorder.calls[-2:] == [
        ["launchctl", "stop", "org.labstream.xrd"],
        ["launchctl", "unload", "-w", str(path)],
    ]


def test_windows_calls_sc_and_needs_pywin32_to_install(config: Path) -> None:
    spec = ServiceSpec("xrd", config)
    recorder = Recorder("STATE : 4 RUNNING")
    manager = WindowsManager(recorder)
    manager.start(spec)
    assert manager.status(spec)["ActiveState"] == "active"
    manager.remove(spec)
    assert recorder.calls == [
        ["sc.exe", "start", "labstream-xrd"],
        ["sc.exe", "query", "labstream-xrd"],
        ["sc.exe", "stop", "labstream-xrd"],
        ["sc.exe", "delete", "labstream-xrd"],
    ]
    with pytest.raises(LabstreamError, match="needs pywin32"):
        manager.install(spec)


def test_bad_names_and_missing_secrets_are_refused(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="service name"):
        ServiceSpec("../evil", config)
    monkeypatch.delenv("LAB_KAFKA_PASSWORD")
    from labstream.service.base import referenced_env

    with pytest.raises(ConfigError, match=r"\$LAB_KAFKA_PASSWORD is not set; set it so the service"):
        referenced_env(config)


def test_run_as_puts_the_account_in_every_service_file(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labstream.service.systemd import render_unit
    from labstream.service.windows import SERVICE_PASSWORD_ENV, install_arguments

    spec = ServiceSpec("xrd", config, run_as="nobody")
    unit = render_unit(spec, tmp_path / "xrd.env")
    assert "\nUser=nobody\n" in unit and unit.index("User=") < unit.index("ExecStart=")
    assert "User=" not in render_unit(ServiceSpec("xrd", config), tmp_path / "xrd.env")

    monkeypatch.setenv("LABSTREAM_LAUNCHD_ROOT", str(tmp_path / "mac"))
    (path,) = LaunchdManager(Recorder()).install(spec)
    assert path == tmp_path / "mac" / "Library" / "LaunchDaemons" / "org.labstream.xrd.plist"
    assert plistlib.loads(path.read_bytes())["UserName"] == "nobody"

    monkeypatch.setenv(SERVICE_PASSWORD_ENV, "account-password")
    windows = install_arguments(spec, auto_start=2)
    assert (windows["userName"], windows["password"], windows["startType"]) == (
        "nobody",
        "account-password",
        2,
    )
    assert "userName" not in install_arguments(ServiceSpec("xrd", config), auto_start=2)


@pytest.mark.parametrize(
    ("account", "why"),
    [
        ("nobody\nExecStartPre=/bin/sh", "not an account name"),
        ("no-such-account-here", "no such account"),
    ],
)
def test_run_as_refuses_what_a_unit_could_not_hold_or_no_one_is(config: Path, account: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        ServiceSpec("xrd", config, run_as=account)


def test_run_as_is_for_system_services(config: Path) -> None:
    with pytest.raises(ConfigError, match="system services"):
        ServiceSpec("xrd", config, user=True, run_as="nobody")


def test_windows_accounts_may_name_a_domain(config: Path) -> None:
    from labstream.service.base import check_account

    check_account("NT SERVICE\\labstream-xrd", user_service=False, platform="win32")
    with pytest.raises(ConfigError):
        check_account("bad\r\nname", user_service=False, platform="win32")
