"""The process Windows' service manager runs (via pywin32's pythonservice.exe).

It starts `python -m labstream watch --config C` as a child with a console pipe, and on
SvcStop types `q` into it: the watcher's graceful stop. Output goes to the state folder.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import servicemanager
import win32event
import win32service
import win32serviceutil

from labstream.service.base import STOP_TIMEOUT_SECONDS


class LabstreamService(win32serviceutil.ServiceFramework):  # type: ignore[misc]
    _svc_name_ = "labstream"
    _svc_display_name_ = "labstream watcher"

    def __init__(self, args: list[str]) -> None:
        super().__init__(args)
        self.name = args[0]
        self.stop_event = win32event.CreateEvent(None, 0, 0, None)
        self.child: subprocess.Popen[bytes] | None = None

    def SvcDoRun(self) -> None:
        option = win32serviceutil.GetServiceCustomOption
        config = option(self.name, "config")
        python = option(self.name, "python")
        state = option(self.name, "state", None)
        command = [python, "-m", "labstream", "watch", "--config", config]
        if state:
            command += ["--state", state]
        log_dir = Path(state or Path(config).parent)
        with open(log_dir / f"{self.name}-service.log", "ab") as log:
            self.child = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
            )
            servicemanager.LogInfoMsg(f"{self.name}: watcher started (pid {self.child.pid})")
            self.child.wait()
        servicemanager.LogInfoMsg(f"{self.name}: watcher exited ({self.child.returncode})")

    def SvcStop(self) -> None:
        self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING, waitHint=STOP_TIMEOUT_SECONDS * 1000)
        if self.child is not None and self.child.poll() is None and self.child.stdin is not None:
            self.child.stdin.write(b"q\n")
            self.child.stdin.flush()
            try:
                self.child.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.child.kill()
        win32event.SetEvent(self.stop_event)


if __name__ == "__main__":
    win32serviceutil.HandleCommandLine(LabstreamService)
