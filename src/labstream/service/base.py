"""What every service backend shares: the spec, the command line, secrets, the interface."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from labstream.errors import ConfigError, LabstreamError

__all__ = [
    "STOP_TIMEOUT_SECONDS",
    "Runner",
    "ServiceManager",
    "ServiceSpec",
    "manager_for_platform",
    "referenced_env",
    "run_command",
]

# The watcher drains for up to 10 s, then waits for delivery reports; give it room.
STOP_TIMEOUT_SECONDS = 120
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ENV_RE = re.compile(r"\$\{?(\w+)")

# Runs a command, returns (exit status, output). The real one is `run_command`; tests hand
# in a recorder when the service manager itself is not available.
Runner = Callable[[Sequence[str]], "tuple[int, str]"]


def run_command(command: Sequence[str]) -> tuple[int, str]:
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=120)
    except FileNotFoundError as exc:
        raise LabstreamError(f"{command[0]} not found: is this the right service manager?") from exc
    return done.returncode, (done.stdout + done.stderr).strip()


@dataclass(frozen=True)
class ServiceSpec:
    """One watcher service: its name, config, and how to run it."""

    name: str
    config: Path
    user: bool = False
    state: Path | None = None
    python: str = field(default_factory=lambda: sys.executable)

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ConfigError(f"service name {self.name!r}: use letters, digits, '.', '_' or '-'")
        if not self.config.is_file():
            raise ConfigError(f"config file {self.config} not found")

    @property
    def unit_name(self) -> str:
        return f"labstream-{self.name}"

    def command(self) -> list[str]:
        """The watcher command line the service manager runs."""
        command = [self.python, "-m", "labstream", "watch", "--config", str(self.config.resolve())]
        if self.state is not None:
            command += ["--state", str(self.state.resolve())]
        return command

    def command_line(self) -> str:
        return shlex.join(self.command())


def referenced_env(config: Path) -> dict[str, str]:
    """The environment variables the config file uses (secrets), with their current values."""
    names = sorted(set(_ENV_RE.findall(config.read_text(encoding="utf-8-sig"))))
    missing = [n for n in names if n not in os.environ]
    if missing:
        raise ConfigError(f"{config} uses ${missing[0]}, which is not set now; set it so the service gets it")
    return {name: os.environ[name] for name in names}


class ServiceManager:
    """install/start/stop/restart/status/remove for one platform."""

    def __init__(self, runner: Runner = run_command) -> None:
        self._run = runner

    def install(self, spec: ServiceSpec) -> list[Path]:
        raise NotImplementedError

    def start(self, spec: ServiceSpec) -> None:
        raise NotImplementedError

    def stop(self, spec: ServiceSpec) -> None:
        raise NotImplementedError

    def restart(self, spec: ServiceSpec) -> None:
        self.stop(spec)
        self.start(spec)

    def status(self, spec: ServiceSpec) -> dict[str, str]:
        raise NotImplementedError

    def remove(self, spec: ServiceSpec) -> list[Path]:
        raise NotImplementedError

    def _check(self, command: Sequence[str]) -> str:
        code, output = self._run(command)
        if code != 0:
            raise LabstreamError(f"`{shlex.join(command)}` failed ({code}): {output}")
        return output


def manager_for_platform(runner: Runner = run_command) -> ServiceManager:
    if sys.platform == "win32":
        from labstream.service.windows import WindowsManager

        return WindowsManager(runner)
    if sys.platform == "darwin":
        from labstream.service.launchd import LaunchdManager

        return LaunchdManager(runner)
    from labstream.service.systemd import SystemdManager

    return SystemdManager(runner)
