"""systemd: a unit per service, secrets in an environment file only the service user reads.

`install` first asks systemd to reload (so no file is written where systemd is absent or
a user manager is unreachable), and takes back the files it wrote when enabling fails.
"""

from __future__ import annotations

import getpass
import os
import shlex
from pathlib import Path

from labstream.service.base import STOP_TIMEOUT_SECONDS, ServiceManager, ServiceSpec, referenced_env

__all__ = ["SystemdManager", "render_unit", "unit_paths"]


def unit_paths(spec: ServiceSpec) -> tuple[Path, Path]:
    """(unit file, environment file); LABSTREAM_SYSTEMD_ROOT relocates them (for tests)."""
    root = Path(os.environ.get("LABSTREAM_SYSTEMD_ROOT", "/"))
    if spec.user:
        home = Path(os.environ.get("LABSTREAM_SYSTEMD_ROOT") or Path.home())
        config = home / ".config"
        return (
            config / "systemd" / "user" / f"{spec.unit_name}.service",
            config / "labstream" / f"{spec.name}.env",
        )
    return (
        root / "etc" / "systemd" / "system" / f"{spec.unit_name}.service",
        root / "etc" / "labstream" / f"{spec.name}.env",
    )


_DESCRIPTIONS = {
    "watch": "watcher {} (streams new files to Kafka)",
    "download": "downloader {} (rebuilds verified files from Kafka)",
    "process": "processor {} (hands verified files from Kafka to code)",
}


def render_unit(spec: ServiceSpec, env_file: Path) -> str:
    # A user manager has no network-online.target: naming it makes the unit wait for nothing
    # (and `systemd-analyze verify` complain); the role retries the broker itself.
    network = "" if spec.user else "Wants=network-online.target\nAfter=network-online.target\n"
    # Least privilege: anyone who can write into the watched folder chooses what the watcher
    # reads, so it should read no more than its own account may.
    account = f"User={spec.run_as}\n" if spec.run_as else ""
    return f"""\
[Unit]
Description=labstream {_DESCRIPTIONS[spec.role].format(spec.name)}
{network}
[Service]
Type=simple
{account}ExecStart={spec.command_line()}
EnvironmentFile=-{env_file}
Environment=PYTHONUNBUFFERED=1
# SIGTERM is the graceful stop: finish or checkpoint, flush, exit 0.
KillSignal=SIGTERM
KillMode=mixed
TimeoutStopSec={STOP_TIMEOUT_SECONDS}
Restart=on-failure
RestartSec=5

[Install]
WantedBy={"default.target" if spec.user else "multi-user.target"}
"""


class SystemdManager(ServiceManager):
    def _systemctl(self, spec: ServiceSpec, *args: str) -> str:
        return self._check(["systemctl", *(["--user"] if spec.user else []), *args])

    def install(self, spec: ServiceSpec) -> list[Path]:
        unit, env_file = unit_paths(spec)
        env = referenced_env(spec.config)
        self._systemctl(spec, "daemon-reload")  # systemd there and answering, before any file
        created = [p for p in (*_new_dirs(env_file), *_new_dirs(unit)) if not p.exists()]
        fresh = [p for p in (unit, env_file) if not p.exists()]
        try:
            env_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.writelines(f"{k}={_quote(v)}\n" for k, v in env.items())
            os.chmod(env_file, 0o600)
            unit.parent.mkdir(parents=True, exist_ok=True)
            unit.write_text(render_unit(spec, env_file))
            self._systemctl(spec, "daemon-reload")
            self._systemctl(spec, "enable", spec.unit_name)
        except BaseException:
            for path in fresh:
                path.unlink(missing_ok=True)
            for folder in sorted(created, key=lambda p: len(p.parts), reverse=True):
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
            raise
        return [unit, env_file]

    def installed_python(self, spec: ServiceSpec) -> str | None:
        unit, _ = unit_paths(spec)
        if not unit.is_file():
            return None
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                return shlex.split(line.removeprefix("ExecStart="))[0]
        return None

    def hints(self, spec: ServiceSpec) -> list[str]:
        if not spec.user:
            return []
        return [
            f"a user service runs only while {getpass.getuser()} is logged in; to start it at boot "
            f"and keep it running: sudo loginctl enable-linger {getpass.getuser()}"
        ]

    def start(self, spec: ServiceSpec) -> None:
        self._systemctl(spec, "start", spec.unit_name)

    def stop(self, spec: ServiceSpec) -> None:
        self._systemctl(spec, "stop", spec.unit_name)

    def restart(self, spec: ServiceSpec) -> None:
        self._systemctl(spec, "restart", spec.unit_name)

    def status(self, spec: ServiceSpec) -> dict[str, str]:
        output = self._systemctl(
            spec, "show", spec.unit_name, "--property", "ActiveState,SubState,ActiveEnterTimestamp,MainPID"
        )
        return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)

    def remove(self, spec: ServiceSpec) -> list[Path]:
        unit, env_file = unit_paths(spec)
        self._run(["systemctl", *(["--user"] if spec.user else []), "disable", "--now", spec.unit_name])
        removed = [p for p in (unit, env_file) if p.exists()]
        for path in removed:
            path.unlink()
        self._systemctl(spec, "daemon-reload")
        return removed


def _new_dirs(path: Path) -> list[Path]:
    """The folders above `path` up to the first that exists (the ones install would create)."""
    return [folder for folder in path.parents if not folder.exists()]


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
