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

from labstream.config import load_config
from labstream.errors import ConfigError, LabstreamError

__all__ = [
    "ROLES",
    "STOP_TIMEOUT_SECONDS",
    "Runner",
    "ServiceManager",
    "ServiceSpec",
    "check_account",
    "manager_for_platform",
    "referenced_env",
    "run_command",
    "stable_python",
]

# The watcher drains for up to 10 s, then waits for delivery reports; give it room.
STOP_TIMEOUT_SECONDS = 120
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# A POSIX account name (systemd User=, launchd UserName); Windows accounts may also hold a
# domain, spaces and a backslash (NT AUTHORITY\LocalService, .\labstream).
_POSIX_USER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$")
_WINDOWS_USER_RE = re.compile(r"^[A-Za-z0-9_. $@\\-]{1,256}$")
_ENV_RE = re.compile(r"\$\{?(\w+)")
# Read by the roles themselves, not through the config: passed on when set at install.
OWN_ENV = ("LABSTREAM_ENCRYPTION_KEY", "LABSTREAM_ENCRYPTION_KEY_FILE", "LABSTREAM_HEARTBEAT_TOPIC")
ROLES = ("watch", "download", "process")  # the long-running commands a service may run

# Runs a command, returns (exit status, output). The real one is `run_command`; tests hand
# in a recorder when the service manager itself is not available.
Runner = Callable[[Sequence[str]], "tuple[int, str]"]


def run_command(command: Sequence[str]) -> tuple[int, str]:
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=120)
    except FileNotFoundError as exc:
        raise LabstreamError(f"{command[0]} not found: is this the right service manager?") from exc
    return done.returncode, (done.stdout + done.stderr).strip()


def stable_python() -> str:
    """The interpreter a service runs: in a venv its own `bin/python` as the venv names it
    (a resolved symlink would point into a versioned interpreter that an upgrade removes),
    else `sys.executable`, made absolute but not resolved."""
    if sys.prefix != sys.base_prefix:
        own = Path(sys.prefix) / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
        if own.exists():
            return str(own)
    return os.path.abspath(sys.executable)


@dataclass(frozen=True)
class ServiceSpec:
    """One service: its name, the role it runs (watch, download, process), its config.

    Everything the role needs (folder, topic, processor) comes from the config's
    [labstream] section, so the command line is the same for every role."""

    name: str
    config: Path
    user: bool = False
    state: Path | None = None
    python: str = field(default_factory=stable_python)
    role: str = "watch"
    bootstrap: str | None = None  # -b/--bootstrap given at install: the service runs with it
    run_as: str | None = None  # --run-as: the account the service runs under (None: the manager's)

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ConfigError(f"service name {self.name!r}: use letters, digits, '.', '_' or '-'")
        if not self.config.is_file():
            raise ConfigError(f"config file {self.config} not found")
        if self.role not in ROLES:
            raise ConfigError(f"service role {self.role!r}: one of {', '.join(ROLES)}")
        if self.state is not None and self.role != "watch":
            raise ConfigError("--state is the watcher's; a download or process service has none")
        if self.run_as is not None:
            check_account(self.run_as, self.user)

    @property
    def unit_name(self) -> str:
        return f"labstream-{self.name}"

    def command(self) -> list[str]:
        """The command line the service manager runs."""
        command = [self.python, "-m", "labstream", self.role, "--config", str(self.config.resolve())]
        if self.state is not None:
            command += ["--state", str(self.state.resolve())]
        if self.bootstrap:
            command += ["--bootstrap", self.bootstrap]
        return command

    def command_line(self) -> str:
        return shlex.join(self.command())


def check_account(name: str, user_service: bool, platform: str = sys.platform) -> None:
    """Refuse an account name a service file could not hold safely (a newline would add a line
    to a systemd unit), or one this platform does not know."""
    if user_service:
        raise ConfigError("--run-as is for system services; a --user service runs as its user")
    pattern = _WINDOWS_USER_RE if platform == "win32" else _POSIX_USER_RE
    if not pattern.match(name):
        raise ConfigError(f"--run-as {name!r}: not an account name")
    if platform != "win32":
        import pwd

        try:
            pwd.getpwnam(name)
        except KeyError:
            raise ConfigError(
                f"--run-as {name}: no such account; create it first (e.g. useradd --system {name}) "
                "and let it read the instrument folder"
            ) from None


def referenced_env(config: Path) -> dict[str, str]:
    """The environment variables the config file and the files it points to use (secrets),
    with their current values, so the service sees what this check saw.

    A variable without a default must be set now (loading refuses it otherwise); one with a
    default (`${VAR:-default}`) is passed on when set and otherwise left to its default. The
    variables labstream reads itself (OWN_ENV: the payload key) go along when set."""
    try:
        loaded = load_config(config)
    except ConfigError as exc:
        if "is not set" not in str(exc):
            raise
        raise ConfigError(f"{exc}; set it so the service gets it") from exc
    files = {config.resolve(), *(Path(origin).resolve() for origin in loaded.origins.values())}
    names: set[str] = set(OWN_ENV)
    for path in files:
        names.update(_ENV_RE.findall(path.read_text(encoding="utf-8-sig")))
    return {name: os.environ[name] for name in sorted(names) if name in os.environ}


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

    def installed_python(self, spec: ServiceSpec) -> str | None:
        """The interpreter the installed service runs, when it can be read back."""
        return None

    def hints(self, spec: ServiceSpec) -> list[str]:
        """What the operator should know after `install`."""
        return []

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
