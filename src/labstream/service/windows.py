"""Windows: a real service (pywin32's service framework) that runs a role in-process.

`install` registers `labstream.service.windows_host.LabstreamService` under the name
`labstream-NAME` with pywin32, storing the config path, role and interpreter as service
options; start, stop, status and remove go through `sc.exe`. The host stops the role
gracefully through its stop Event (the same path as Ctrl+C), then waits for it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from labstream.errors import LabstreamError
from labstream.service.base import ServiceManager, ServiceSpec, referenced_env

__all__ = ["HOST_CLASS", "SERVICE_PASSWORD_ENV", "WindowsManager", "install_arguments"]

HOST_CLASS = "labstream.service.windows_host.LabstreamService"
SERVICE_PASSWORD_ENV = "LABSTREAM_SERVICE_PASSWORD"  # the --run-as account's, if it has one


def _win32() -> tuple[Any, Any]:
    try:
        import win32service
        import win32serviceutil
    except ImportError as exc:
        raise LabstreamError("the Windows service needs pywin32: pip install pywin32") from exc
    return win32service, win32serviceutil


def install_arguments(spec: ServiceSpec, auto_start: int) -> dict[str, Any]:
    """pywin32's InstallService keyword arguments. With --run-as the service logs on as that
    account (a virtual account such as `NT SERVICE\\labstream-xrd`, or a local one whose
    password is in LABSTREAM_SERVICE_PASSWORD); without it, as LocalSystem."""
    arguments: dict[str, Any] = {
        "startType": auto_start,
        "description": f"labstream {spec.role} with {spec.config.resolve()}",
    }
    if spec.run_as:
        arguments["userName"] = spec.run_as
        arguments["password"] = os.environ.get(SERVICE_PASSWORD_ENV)
    return arguments


class WindowsManager(ServiceManager):
    def install(self, spec: ServiceSpec) -> list[Path]:
        referenced_env(spec.config)  # fail now, not at boot, if a secret is missing
        win32service, util = _win32()
        util.InstallService(
            HOST_CLASS,
            spec.unit_name,
            f"labstream {spec.role} {spec.name}",
            **install_arguments(spec, win32service.SERVICE_AUTO_START),
        )
        util.SetServiceCustomOption(spec.unit_name, "config", str(spec.config.resolve()))
        util.SetServiceCustomOption(spec.unit_name, "role", spec.role)
        util.SetServiceCustomOption(spec.unit_name, "python", spec.python)
        if spec.state is not None:
            util.SetServiceCustomOption(spec.unit_name, "state", str(spec.state.resolve()))
        if spec.bootstrap:
            util.SetServiceCustomOption(spec.unit_name, "bootstrap", spec.bootstrap)
        return []

    def installed_python(self, spec: ServiceSpec) -> str | None:
        _, util = _win32()
        python = util.GetServiceCustomOption(spec.unit_name, "python", None)
        return str(python) if python else None

    def start(self, spec: ServiceSpec) -> None:
        self._check(["sc.exe", "start", spec.unit_name])

    def stop(self, spec: ServiceSpec) -> None:
        self._check(["sc.exe", "stop", spec.unit_name])

    def status(self, spec: ServiceSpec) -> dict[str, str]:
        output = self._check(["sc.exe", "query", spec.unit_name])
        state = "active" if "RUNNING" in output else "inactive"
        return {"ActiveState": state, "detail": output}

    def remove(self, spec: ServiceSpec) -> list[Path]:
        self._run(["sc.exe", "stop", spec.unit_name])
        self._check(["sc.exe", "delete", spec.unit_name])
        return []
