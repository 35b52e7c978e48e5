"""systemd: a unit per watcher, secrets in an environment file only the service user reads."""

from __future__ import annotations

import os
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


def render_unit(spec: ServiceSpec, env_file: Path) -> str:
    return f"""\
[Unit]
Description=labstream watcher {spec.name} (streams new files to Kafka)
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
ExecStart={spec.command_line()}
EnvironmentFile=-{env_file}
Environment=PYTHONUNBUFFERED=1
# SIGTERM is the watcher's graceful stop: finish or checkpoint, flush, exit 0.
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
        env_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.writelines(f"{k}={_quote(v)}\n" for k, v in env.items())
        os.chmod(env_file, 0o600)
        unit.parent.mkdir(parents=True, exist_ok=True)
        unit.write_text(render_unit(spec, env_file))
        self._systemctl(spec, "daemon-reload")
        self._systemctl(spec, "enable", spec.unit_name)
        return [unit, env_file]

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


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
