"""macOS launchd: a LaunchAgent plist per service (secrets in it, readable only by the user)."""

from __future__ import annotations

import os
import plistlib
from pathlib import Path

from labstream.service.base import STOP_TIMEOUT_SECONDS, ServiceManager, ServiceSpec, referenced_env

__all__ = ["LaunchdManager", "plist_path", "render_plist"]


def label(spec: ServiceSpec) -> str:
    return f"org.labstream.{spec.name}"


def plist_path(spec: ServiceSpec) -> Path:
    """A LaunchAgent of the user installing it; with --run-as a LaunchDaemon (launchd honours
    UserName only there). LABSTREAM_LAUNCHD_ROOT relocates both (for tests)."""
    if spec.run_as:
        root = Path(os.environ.get("LABSTREAM_LAUNCHD_ROOT") or "/")
        return root / "Library" / "LaunchDaemons" / f"{label(spec)}.plist"
    home = Path(os.environ.get("LABSTREAM_LAUNCHD_ROOT") or Path.home())
    return home / "Library" / "LaunchAgents" / f"{label(spec)}.plist"


def render_plist(spec: ServiceSpec, env: dict[str, str], log: Path) -> bytes:
    account = {"UserName": spec.run_as} if spec.run_as else {}
    return plistlib.dumps(
        {
            "Label": label(spec),
            **account,
            "ProgramArguments": spec.command(),
            "EnvironmentVariables": {"PYTHONUNBUFFERED": "1", **env},
            "RunAtLoad": True,
            "KeepAlive": {"SuccessfulExit": False},  # restart after a crash, not after a clean stop
            "ExitTimeOut": STOP_TIMEOUT_SECONDS,  # SIGTERM first: the role's graceful stop
            "StandardOutPath": str(log),
            "StandardErrorPath": str(log),
        }
    )


class LaunchdManager(ServiceManager):
    def install(self, spec: ServiceSpec) -> list[Path]:
        path = plist_path(spec)
        log = path.parents[2] / "Logs" / "labstream" / f"{spec.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(render_plist(spec, referenced_env(spec.config), log))
        self._check(["launchctl", "load", "-w", str(path)])
        return [path]

    def installed_python(self, spec: ServiceSpec) -> str | None:
        path = plist_path(spec)
        if not path.is_file():
            return None
        arguments = plistlib.loads(path.read_bytes()).get("ProgramArguments") or [None]
        return str(arguments[0]) if arguments[0] else None

    def start(self, spec: ServiceSpec) -> None:
        self._check(["launchctl", "start", label(spec)])

    def stop(self, spec: ServiceSpec) -> None:
        self._check(["launchctl", "stop", label(spec)])

    def status(self, spec: ServiceSpec) -> dict[str, str]:
        code, output = self._run(["launchctl", "list", label(spec)])
        return {"ActiveState": "active" if code == 0 and '"PID"' in output else "inactive", "detail": output}

    def remove(self, spec: ServiceSpec) -> list[Path]:
        path = plist_path(spec)
        self._run(["launchctl", "unload", "-w", str(path)])
        if path.exists():
            path.unlink()
            return [path]
        return []
